"""keras_ser.experiments.neural: per-fold standardisation and padding with the model's mask value."""

import numpy as np
import pytest

from keras_ser.data import Fold, Utterance
from keras_ser.errors import DataError, ParameterError
from keras_ser.experiments.neural import FoldStandardizer, mask_value, pad_stack


def test_speaker_standardization_normalizes_every_speaker_with_its_own_statistics():
    rng = np.random.default_rng(0)
    utts = {s: [Utterance(id=f"{s}{k}", path=f"{s}{k}.wav", label="anger", speaker=s) for k in range(3)] for s in "abcd"}
    offset = {"a": 0.0, "b": 30.0, "c": -20.0, "d": 5.0}
    feats = {u.id: offset[s] + rng.standard_normal((7, 4)) * (1 + ord(s) % 3)
             for s, us in utts.items() for u in us}

    class Store:
        def get(self, utterances):
            return [feats[u.id] for u in utterances]

    fold = Fold(name="d", train=tuple(utts["a"] + utts["b"]), validation=tuple(utts["c"]), test=tuple(utts["d"]))
    train = list(fold.train)
    standardizer = FoldStandardizer({"preset": "zhao2019", "n_mels": 4, "standardize": "speaker"},
                                    fold, Store().get(train), train, Store())
    for speaker, us in utts.items():
        out = np.concatenate(standardizer(Store().get(us), us))
        np.testing.assert_allclose(out.mean(0), 0.0, atol=1e-5)
        np.testing.assert_allclose(out.std(0), 1.0, atol=1e-3)
    np.testing.assert_allclose(standardizer.frontend.settings["feature_mean"],
                               np.concatenate(Store().get(utts["d"])).mean(0), rtol=1e-6)
    nameless = Fold(name="x", train=(Utterance(id="x", path="x.wav", label="anger", speaker=None),), validation=(),
                    test=tuple(utts["d"]))
    with pytest.raises(ParameterError, match="speaker ids"):
        FoldStandardizer({"preset": "zhao2019", "standardize": "speaker"}, nameless, [], list(nameless.train),
                         Store())


def test_pad_stack_pads_time_with_the_mask_value_only():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((5, 3)), rng.standard_normal((2, 3))
    out = pad_stack([a, b], pad_value=-1.5)
    assert out.shape == (2, 5, 3)
    np.testing.assert_array_equal(out[0], a)
    np.testing.assert_array_equal(out[1, :2], b)
    assert np.all(out[1, 2:] == -1.5)
    np.testing.assert_array_equal(pad_stack([a, a]), np.stack([a, a]))
    with pytest.raises(DataError, match="beyond the time axis"):
        pad_stack([a, rng.standard_normal((5, 4))])
    with pytest.raises(DataError, match="no mask_value"):
        pad_stack([a, b], pad_value=None)

    # The pad value is the model's own mask value; a model that masks nothing gets none.
    assert mask_value({"name": "zhao2018_attention_blstm_fcn"}) == 0.0
    assert mask_value({"name": "zhao2018_attention_blstm_fcn", "mask_value": -9.0}) == -9.0
    assert mask_value({"name": "zhang2021_multicnn_1d"}) is None
