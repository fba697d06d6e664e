import json

import keras
import librosa
import matplotlib
import numpy as np
import pytest
import tensorflow as tf

from keras_ser.extraction import deep_spectrum
from keras_ser.errors import DataError, ParameterError
from keras_ser.extraction import extract, get_extractor
from keras_ser.recipe import load_recipe


@pytest.fixture(scope="module")
def waveform(emodb_wavs):
    signal, _ = librosa.load(emodb_wavs[5], sr=16000)
    return signal.astype(np.float32)


def tiny_cnn(size=32, seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(inputs / 255.0)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(6, activation="relu")(x), name="tiny")


def test_mel_power_equals_librosa(waveform):
    image = deep_spectrum.SpectrogramImage(n_mels=40)
    ours = image.mel_power(tf.constant(waveform)).numpy()
    reference = librosa.feature.melspectrogram(y=waveform, sr=16000, n_fft=512, win_length=400, hop_length=160,
                                               n_mels=40, center=True, pad_mode="constant").T
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours, reference, rtol=1e-3, atol=1e-6 * reference.max())


def test_zhao2019_front_end_is_hamming_and_the_mel_scale_of_eq2(waveform):
    image = deep_spectrum.SpectrogramImage(n_mels=40, frontend="zhao2019")
    ours = image.mel_power(tf.constant(waveform)).numpy()
    # zhao2019 Sec. III-A with librosa: Hamming window of 25 ms (the FFT of its 400 points), eq. 2 Mel scale.
    reference = librosa.feature.melspectrogram(y=waveform, sr=16000, n_fft=400, win_length=400, hop_length=160,
                                               window="hamming", n_mels=40, htk=True, center=True,
                                               pad_mode="constant").T
    assert (image.window, image.n_fft) == ("hamming", 400)
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours, reference, rtol=1e-3, atol=1e-6 * reference.max())
    deepspectrum = deep_spectrum.SpectrogramImage(n_mels=40).mel_power(tf.constant(waveform)).numpy()
    assert np.abs(deepspectrum - reference).max() > 0.1 * reference.max()  # Hann / Slaney differ
    for name in ("zhao2019_features_alexnet_fc7", "zhao2019_features_vgg16_fc7", "zhao2019_features_vgg19_fc7"):
        assert load_recipe(name)["features"]["frontend"] == "zhao2019"
    with pytest.raises(ParameterError, match="frontend"):
        deep_spectrum.SpectrogramImage(frontend="htk")


def test_image_equals_matplotlib_colormapped_power_to_db(waveform):
    image = deep_spectrum.SpectrogramImage(n_mels=64, colormap="magma", image_size=96)
    ours = image(waveform).numpy()
    mel = librosa.feature.melspectrogram(y=waveform, sr=16000, n_fft=512, win_length=400, hop_length=160,
                                         n_mels=64, center=True, pad_mode="constant")
    db = librosa.power_to_db(mel, ref=np.max, top_db=80.0)
    rgba = matplotlib.colormaps["magma"](matplotlib.colors.Normalize()(db))  # what specshow paints
    picture = np.flipud(rgba[..., :3]).astype(np.float32)  # highest Mel band at the top
    expected = tf.image.resize(picture, [96, 96]).numpy() * 255.0
    assert ours.shape == (96, 96, 3) and ours.min() >= 0 and ours.max() <= 255
    # float32 vs float64 dB can move a value across a colour-table step in rare pixels
    assert np.mean(np.abs(ours - expected) > 2.0) < 0.01
    assert np.mean(np.abs(ours - expected)) < 0.2


def test_colormap_table_and_errors():
    np.testing.assert_allclose(deep_spectrum.colormap_table("viridis")[10],
                               matplotlib.colormaps["viridis"](10)[:3], rtol=1e-6)
    with pytest.raises(ParameterError, match="colour map"):
        deep_spectrum.colormap_table("no_such_map")
    with pytest.raises(ParameterError):
        deep_spectrum.SpectrogramImage(n_mels=0)
    with pytest.raises(ParameterError):
        deep_spectrum.SpectrogramImage()(np.zeros(10, np.float32))


def test_custom_model_features_are_the_model_on_the_images(waveform):
    model = tiny_cnn()
    ex = deep_spectrum.DeepSpectrumExtractor("vgg16_fc7", model=model, image_size=32, n_mels=40)
    waves = [waveform, waveform[:12000], waveform[4000:]]
    features = ex.extract_batch(waves)
    expected = model(np.stack([ex.image(w).numpy() for w in waves])).numpy()
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ex.extract_batch(waves[1:2])[0], features[1], rtol=1e-5, atol=1e-6)
    assert ex.dimension == 6 and "custom model tiny" in ex.description


def test_fc7_backbone_random_init_is_labelled_and_seeded(waveform):
    first = get_extractor("alexnet_fc7", n_mels=40, seed=3)
    assert first.dimension == 4096 and first.image.image_size == 227
    assert "random-init, NOT pretrained" in first.description
    second = get_extractor("alexnet_fc7", n_mels=40, seed=3)
    np.testing.assert_allclose(first.extract_batch([waveform]), second.extract_batch([waveform]), rtol=1e-5)
    with pytest.raises(DataError, match="weight file"):
        get_extractor("vgg16_fc7", weights="/nonexistent/vgg16.h5")
    assert deep_spectrum.weights_description("imagenet").startswith("ImageNet")


def _save_model_dir(path, pooling="none"):
    from keras_ser.frontend import FrontEnd

    frontend = FrontEnd("zhao2019")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((500, 40))
    hidden = keras.layers.GlobalAveragePooling1D()(inputs)
    embedding = keras.layers.Dense(5, activation="tanh", name="embedding")(hidden)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(embedding))
    path.mkdir(parents=True)
    model.save(path / "model.keras")
    (path / "frontend.json").write_text(json.dumps(frontend.get_config()))
    (path / "meta.json").write_text(json.dumps({"recipe": "toy", "pooling": pooling}))
    return frontend, model


def test_embedding_extractor_reads_the_fold_model(tmp_path, waveform, emodb_wavs):
    from keras_ser.frontend import FrontEnd

    run = tmp_path / "run"
    frontend, model = _save_model_dir(run / "folds" / "speaker_03" / "model")
    _save_model_dir(run / "folds" / "speaker_08" / "model")
    with pytest.raises(ParameterError, match="speaker_03"):
        get_extractor(f"embedding:{run}")
    ex = get_extractor(f"embedding:{run}", fold="speaker_03")
    reference = keras.Model(model.input, model.get_layer("embedding").output)(frontend(waveform[None])).numpy()
    np.testing.assert_allclose(ex.extract_batch([waveform])[0], reference[0], rtol=1e-5, atol=1e-6)
    table = extract(ex, emodb_wavs[:2], progress=False)
    assert table.features.shape == (2, 5) and table.feature_names[0] == "embedding_0"
    with pytest.raises(ParameterError, match="no trained model"):
        get_extractor(f"embedding:{run}", fold="speaker_99")
    with pytest.raises(DataError):
        get_extractor(f"embedding:{tmp_path / 'nothing'}")
    speaker_normalised = run / "folds" / "speaker_08" / "model" / "frontend.json"
    speaker_normalised.write_text(json.dumps(FrontEnd(
        "zhao2019", standardize="speaker", feature_mean=[0.0] * 40, feature_std=[1.0] * 40).get_config()))
    # A per-speaker model embeds each speaker with its own statistics, so plain paths are refused.
    per_speaker = get_extractor(f"embedding:{run}", fold="speaker_08")
    assert per_speaker.speaker_standardized and not ex.speaker_standardized
    with pytest.raises(ParameterError, match="has no speaker"):
        extract(per_speaker, emodb_wavs[:2], progress=False)
    with pytest.raises(ParameterError, match="adapt_to_speaker"):  # e.g. the scikit-learn transformer
        per_speaker.extract_batch([waveform])
    per_speaker.adapt_to_speaker([waveform])
    assert per_speaker.extract_batch([waveform]).shape == (1, 5)
