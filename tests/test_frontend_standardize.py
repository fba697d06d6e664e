"""Standardisation of keras_ser.frontend.standardize: per utterance, with training-set statistics."""

import json

import numpy as np
import pytest
from frontend_helper import waves  # noqa: F401 (fixture)

from keras_ser.errors import ParameterError
from keras_ser.frontend import FrontEnd, feature_statistics


def test_standardize_utterance_matches_numpy_cmvn(waves):
    fe = FrontEnd("zhao2018", standardize="utterance")
    out = fe(np.stack(waves[:2])).numpy()
    raw = FrontEnd("zhao2018")(np.stack(waves[:2])).numpy().astype(np.float64)
    ref = (raw - raw.mean(axis=1, keepdims=True)) / np.sqrt(raw.var(axis=1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(out, ref, atol=1e-4)
    assert FrontEnd.from_config(fe.get_config()).settings["standardize"] == "utterance"


def test_standardize_global_uses_training_statistics_and_keeps_level(waves):
    raw = FrontEnd("zhao2018")(np.stack(waves[:3])).numpy().astype(np.float64)
    mean, std = feature_statistics(list(raw[:2]))
    frames = raw[:2].reshape(-1, 120)
    np.testing.assert_allclose(mean, frames.mean(0), rtol=1e-9)
    np.testing.assert_allclose(std, np.sqrt(frames.var(0) + 1e-5), rtol=1e-9)
    fe = FrontEnd("zhao2018", standardize="global", feature_mean=mean, feature_std=std)
    out = FrontEnd.from_config(json.loads(json.dumps(fe.get_config())))(np.stack(waves[:3])).numpy()
    np.testing.assert_allclose(out, (raw - mean) / std, atol=1e-4)
    # Unlike per-utterance CMVN, a 20 dB quieter copy keeps its lower level (sadness vs anger).
    quiet = fe(np.stack([waves[0], 0.1 * waves[0]])).numpy()[:, :, :40].mean(axis=(1, 2))
    assert quiet[0] - quiet[1] > 1.0
    cmvn = FrontEnd("zhao2018", standardize="utterance")(np.stack([waves[0], 0.1 * waves[0]])).numpy()
    assert abs(cmvn[0, :, :40].mean() - cmvn[1, :, :40].mean()) < 1e-3


@pytest.mark.parametrize("settings, message", [
    (dict(standardize="global"), "needs feature_mean"),
    (dict(standardize="global", feature_mean=[0.0] * 40, feature_std=[1.0] * 39), "feature_std must hold 40"),
    (dict(standardize="global", feature_mean=[0.0] * 40, feature_std=[0.0] * 40), "positive"),
    (dict(standardize="global", feature_mean=[float("nan")] * 40, feature_std=[1.0] * 40), "finite"),
    (dict(standardize="speaker"), "needs feature_mean"),
    (dict(feature_mean=[0.0] * 40, feature_std=[1.0] * 40), "only with standardize='global'"),
    (dict(standardize="gender"), "standardize must be"),
])
def test_standardize_settings_are_validated(settings, message):
    with pytest.raises(ParameterError, match=message):
        FrontEnd("zhao2019", **settings)
    with pytest.raises(ParameterError, match="log_mel"):
        FrontEnd("zhang2021_2d", standardize="utterance")
    with pytest.raises(ParameterError, match="non-finite"):
        feature_statistics([np.array([[np.nan]])])

