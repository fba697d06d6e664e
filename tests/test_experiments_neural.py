"""keras_ser.experiments.neural: per-fold standardisation, padding with the model's mask value, the length cap."""

import keras
import numpy as np
import pytest
import soundfile

from keras_ser.data import Fold, Utterance
from keras_ser.errors import DataError, ParameterError
from keras_ser.experiments.neural import FoldStandardizer, mask_value, pad_stack
from keras_ser.models import registry


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


TINY_MASKED = "test_tiny_masked_gap"

if TINY_MASKED not in registry._REGISTRY:
    @registry.register(TINY_MASKED, paper="test", table="-", input="frames x 120 (zhao2018)")
    def _tiny_masked(num_classes=7, mask_value=0.0, name=TINY_MASKED):
        # A stand-in for zhao2018's masked network, small enough for a CPU test.
        return keras.Sequential([
            keras.Input((None, 120)), keras.layers.Masking(mask_value),
            keras.layers.GlobalAveragePooling1D(name="embedding"),
            keras.layers.Dense(num_classes, activation="softmax", name="predictions"),
        ], name=name)


def test_max_seconds_caps_the_padded_length_in_training_and_in_the_saved_front_end(tmp_path, emodb_dir,
                                                                                     monkeypatch):
    from keras_ser import audio
    from keras_ser.experiments import neural
    from keras_ser.experiments.runner import run_experiment
    from keras_ser.frontend import FrontEnd
    from keras_ser.predict import Predictor

    wavs = sorted((emodb_dir / "wav").glob("*.wav"))
    # One 60 s file, made of EMO-DB utterances end to end, among 2 s ones.
    long_wave = np.concatenate([audio.load(p, sr=16000) for p in wavs[:40]])[:60 * 16000]
    assert long_wave.shape[0] == 60 * 16000
    long_path = tmp_path / "long.wav"
    soundfile.write(long_path, long_wave, 16000)
    rows = ["path,label,speaker", f"{long_path},anger,08"]
    for speaker in ("03", "08", "09"):
        for code, label in (("W", "anger"), ("N", "neutral")):
            rows += [f"{p},{label},{speaker}" for p in [p for p in wavs if p.name[:2] == speaker
                                                         and p.name[5] == code][:2]]
    manifest = tmp_path / "long.csv"
    manifest.write_text("\n".join(rows) + "\n")

    padded = []
    real_pad_stack = neural.pad_stack

    def recording_pad_stack(features, pad_value=0.0):
        out = real_pad_stack(features, pad_value)
        padded.append(out.shape[1])
        return out

    monkeypatch.setattr(neural, "pad_stack", recording_pad_stack)
    run_experiment("zhao2018_attention_blstm_fcn", corpus=f"manifest:{manifest}", out=tmp_path / "run",
                   folds=["speaker_03"], progress=False,
                   overrides=[f"model.name={TINY_MASKED}", "train.epochs=1", "train.verbose=0",
                              "train.batch_size=64", "experiment.save_features=false",
                              "frontend.standardize=utterance", "frontend.max_seconds=3"])
    capped = FrontEnd("zhao2018")(long_wave[None, :3 * 16000]).shape[1]
    assert padded and max(padded) == capped  # the 60 s file is in training, cut to 3 s
    assert capped < FrontEnd("zhao2018")(long_wave[None]).shape[1] / 10

    # predict / export load the same cap from the fold's frontend.json.
    predictor = Predictor(tmp_path / "run" / "folds" / "speaker_03" / "model")
    assert predictor.frontend.settings["max_seconds"] == 3.0
    assert predictor.frontend(long_wave[None]).shape[1] == capped


def test_max_seconds_must_be_positive():
    from keras_ser.frontend import FrontEnd

    for bad in (0, -1.0, float("nan"), "10", True, 1e-6):
        with pytest.raises(ParameterError, match="max_seconds(=| must be positive)"):
            FrontEnd("zhao2018", max_seconds=bad)
