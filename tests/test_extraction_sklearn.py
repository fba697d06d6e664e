import functools
import pickle

import keras
import librosa
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from keras_ser.errors import ParameterError
from keras_ser.extraction.opensmile import OpenSmileExtractor
from keras_ser.extraction.sklearn import DeepSpectrum, Embedding, LogMelStats, OpenSmile


def tiny_cnn(size=32):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(inputs / 255.0)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x), name="tiny")


def _tones_and_noise(n_each=4, seconds=0.5, rate=16000):
    """Class 0: a pure tone (energy in one Mel band); class 1: white noise (all bands)."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    tones = [np.sin(2 * np.pi * f * t).astype(np.float32) for f in rng.uniform(300, 3000, n_each)]
    noise = [rng.normal(scale=0.3, size=t.size).astype(np.float32) for _ in range(n_each)]
    return tones + noise, np.array([0] * n_each + [1] * n_each)


def test_deep_spectrum_in_a_pipeline_with_linear_svc():
    waves, labels = _tones_and_noise()
    pipe = Pipeline([
        ("features", DeepSpectrum("vgg16_fc7", backbone=functools.partial(tiny_cnn, 32), image_size=32,
                                  n_mels=32, batch_size=3)),
        ("svm", LinearSVC()),
    ])
    pipe.fit(waves[::2], labels[::2])
    assert pipe.predict(waves[1::2]).tolist() == labels[1::2].tolist()
    assert pipe.named_steps["features"].n_features_out_ == 4
    assert "random-init" not in pipe.named_steps["features"].extractor_.description  # custom model
    cloned = clone(pipe)
    assert cloned.get_params()["features__image_size"] == 32 and not hasattr(cloned.named_steps["features"],
                                                                             "extractor_")


def test_batches_do_not_change_features():
    waves, _ = _tones_and_noise(n_each=2)
    small = DeepSpectrum(backbone=functools.partial(tiny_cnn, 32), image_size=32, n_mels=32, batch_size=1)
    large = DeepSpectrum(backbone=functools.partial(tiny_cnn, 32), image_size=32, n_mels=32, batch_size=8)
    np.testing.assert_allclose(small.fit_transform(waves), large.fit_transform(waves), rtol=1e-5, atol=1e-6)


def test_opensmile_transformer_on_paths_and_waveforms(emodb_wavs):
    paths = emodb_wavs[:2]
    transformer = OpenSmile("egemaps")
    from_paths = transformer.fit_transform(paths)
    waves = [librosa.load(p, sr=16000)[0] for p in paths]
    np.testing.assert_allclose(transformer.transform(waves), from_paths, rtol=1e-4, atol=1e-5)
    direct = OpenSmileExtractor("egemaps").extract_waveform(waves[0])
    np.testing.assert_allclose(from_paths[0], direct, rtol=1e-4, atol=1e-5)
    assert transformer.get_feature_names_out()[0].startswith("F0semitone")
    pipe = Pipeline([("features", LogMelStats()), ("scale", StandardScaler())])
    assert pipe.fit_transform(paths).shape == (2, 80)


def test_bad_inputs():
    with pytest.raises(ParameterError, match="list of inputs"):
        OpenSmile().fit_transform("one.wav")
    with pytest.raises(ParameterError, match="1-D waveform"):
        LogMelStats().fit_transform([np.zeros((2, 100))])
    with pytest.raises(ParameterError, match="unknown openSMILE"):
        OpenSmile("gemaps_v9").fit([])


def _save_embedding_model(path):
    """A MODEL DIR whose model has a 3-d ``embedding`` layer."""
    import json

    from keras_ser.frontend import FrontEnd

    keras.utils.set_random_seed(0)
    inputs = keras.Input((500, 40))
    embedding = keras.layers.Dense(3, activation="tanh", name="embedding")(
        keras.layers.GlobalAveragePooling1D()(inputs))
    path.mkdir(parents=True)
    keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(embedding)).save(path / "model.keras")
    (path / "frontend.json").write_text(json.dumps(FrontEnd("zhao2019").get_config()))
    return path


def test_fitted_transformers_pickle_and_clone(tmp_path):
    waves, labels = _tones_and_noise(n_each=3, seconds=0.3)
    transformers = [
        LogMelStats(n_mels=20),
        OpenSmile("egemaps"),
        DeepSpectrum(backbone=functools.partial(tiny_cnn, 32), image_size=32, n_mels=32, batch_size=4),
        Embedding(_save_embedding_model(tmp_path / "model")),
    ]
    for transformer in transformers:
        pipe = Pipeline([("features", transformer), ("scale", StandardScaler()), ("svm", LinearSVC())])
        pipe.fit(waves, labels)
        restored = pickle.loads(pickle.dumps(pipe))
        name = type(transformer).__name__
        np.testing.assert_array_equal(restored[:-1].transform(waves), pipe[:-1].transform(waves), err_msg=name)
        assert restored.predict(waves).tolist() == pipe.predict(waves).tolist(), name
        # Pickling leaves the original fitted transformer whole.
        assert pipe.named_steps["features"].extractor_ is not None, name
        cloned = clone(pipe)
        # repr: a cloned functools.partial is an equal copy, not the same object.
        assert repr(cloned.named_steps["features"].get_params()) == repr(transformer.get_params()), name
        assert not hasattr(cloned.named_steps["features"], "extractor_"), name


def test_log_mel_extractor_pickles_after_use():
    from keras_ser.extraction import LogMelExtractor

    wave = _tones_and_noise(n_each=1, seconds=0.3)[0][1]
    extractor = LogMelExtractor(n_mels=20)
    frames = extractor.frames(wave)
    restored = pickle.loads(pickle.dumps(extractor))
    np.testing.assert_array_equal(restored.frames(wave), frames)
