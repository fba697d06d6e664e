"""The Keras layers of keras_ser.frontend.layers: the presets against librosa, configs, saving, serving."""

import json

import keras
import librosa
import numpy as np
import pytest
import tensorflow as tf
from frontend_helper import LOG_MEL_TOLERANCE_DB, MEL_SETTINGS, librosa_log_mel, waves  # noqa: F401 (fixture)

from keras_ser import audio
from keras_ser.errors import ParameterError
from keras_ser.frontend import ops
from keras_ser.frontend.layers import Deltas, FrontEnd, LogMel, ResizeImages
from keras_ser.frontend.presets import DEFAULTS, PRESETS, TABLE, numerics_revision, resolve


def test_zhao2019_pad_crop_policy(waves):
    y = waves[0]  # 2.0 s -> 201 frames of signal
    out = FrontEnd("zhao2019")(y[None]).numpy()[0]
    assert out.shape == (500, 40)
    ref = librosa_log_mel(y, **MEL_SETTINGS["zhao2019_htk40"])
    assert np.abs(out[:200] - ref[:200]).max() <= LOG_MEL_TOLERANCE_DB
    floor = ref.max() - 80.0
    np.testing.assert_allclose(out[202:], floor, atol=1e-3)
    long = np.tile(y, 3)  # 6 s is cropped to the first 500 frames
    out_long = FrontEnd("zhao2019")(long[None]).numpy()[0]
    ref_long = librosa_log_mel(long, **MEL_SETTINGS["zhao2019_htk40"])[:498]  # frames 498-499 reach the crop
    assert np.abs(out_long[:498] - ref_long).max() <= LOG_MEL_TOLERANCE_DB


def test_zhang2021_dcnn_matches_librosa_reference(waves):
    y = waves[2]
    fe = FrontEnd("zhang2021_dcnn", image_size=None, image_range=None)
    out = fe(y[None]).numpy()[0]
    assert out.shape == (8, 64, 64, 3)
    z = audio.preemphasis(audio.fix_length(audio.normalize(y), 48000))
    static = librosa_log_mel(z, **MEL_SETTINGS["zhang2021_slaney64"])  # 301 frames
    for k in (0, 7):
        seg = static[32 * k : 32 * k + 64].T  # [mel, time]
        d1 = librosa.feature.delta(seg, width=5)
        ref = np.stack([seg, d1, librosa.feature.delta(d1, width=5)], axis=-1)
        assert np.abs(out[k, ..., 0] - ref[..., 0]).max() <= LOG_MEL_TOLERANCE_DB
        assert np.abs(out[k, ..., 1:] - ref[..., 1:]).max() <= 1e-3 * np.abs(ref[..., 1:]).max() + 1e-3
    scaled = FrontEnd("zhang2021_dcnn")(y[None]).numpy()
    assert scaled.shape == (1, 8, 227, 227, 3)
    assert scaled.min() >= 0.0 and scaled.max() <= 255.0 + 1e-3


def test_raw_presets():
    x = np.random.default_rng(0).uniform(-1, 1, (1, 22050 * 2)).astype(np.float32)
    one_d = FrontEnd("zhang2021_1d")(x).numpy()
    assert one_d.shape == (1, 44100 // 625, 625, 1)
    np.testing.assert_allclose(one_d[0, 3, :, 0], 256.0 * x[0, 1875:2500], rtol=1e-6)
    seq = FrontEnd("tzirakis2021")(x).numpy()
    assert seq.shape == (1, 1, 100, 2205)
    np.testing.assert_array_equal(seq[0, 0, 19], x[0, 19 * 2205 : 20 * 2205])
    np.testing.assert_array_equal(seq[0, 0, 20:], 0.0)  # 2 s = 20 frames, zero-padded to 10 s


def test_zhang2021_3d_stacks_consecutive_segments(waves):
    y = waves[3]
    stacks = FrontEnd("zhang2021_3d")(y[None]).numpy()
    assert stacks.shape == (1, 1, 64, 64, 4, 3)  # 2 s padded to one stack of 4 segments
    segments = FrontEnd("zhang2021_3d", stack_depth=None)(np.pad(y, (0, 41000 - y.size))[None]).numpy()
    np.testing.assert_allclose(stacks[0, 0, :, :, 1], segments[0, 1], atol=1e-4)


def test_zhao2018_substitute(waves):
    out = FrontEnd("zhao2018")(waves[0][None]).numpy()[0]
    assert out.shape == (1 + 32000 // 512, 120)
    power = np.abs(librosa.stft(waves[0], n_fft=1024, hop_length=512, window="hann", pad_mode="constant")) ** 2
    ref = librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=16000, n_mels=40, htk=True)).T
    assert np.abs(out[:, :40] - ref).max() <= LOG_MEL_TOLERANCE_DB



@pytest.mark.parametrize("name", sorted(PRESETS))
def test_front_end_config_round_trip_and_symbolic_use(name):
    fe = FrontEnd(name)
    config = json.loads(json.dumps(fe.get_config()))
    clone = FrontEnd.from_config(config)
    assert clone.get_config() == fe.get_config()
    assert config["preset"] == name
    inputs = keras.Input((None,))
    assert keras.Model(inputs, clone(inputs)).output.shape[0] is None


def test_front_end_rejects_bad_settings():
    with pytest.raises(ParameterError, match="preset"):
        FrontEnd("zhao2077")
    with pytest.raises(ParameterError, match="unknown FrontEnd settings"):
        FrontEnd("zhao2019", n_mel=40)
    with pytest.raises(ParameterError):
        FrontEnd("zhang2021_2d", fmax=9000.0)
    with pytest.raises(ParameterError):
        FrontEnd(channels=4, representation="mel_segments")


def test_front_end_in_tf_data_keras_model_and_saved_model(tmp_path, waves):
    x = np.stack(waves[:2])
    fe = FrontEnd("zhao2019")
    expected = fe(x).numpy()
    mapped = next(iter(tf.data.Dataset.from_tensor_slices(x).batch(2).map(fe))).numpy()
    np.testing.assert_allclose(mapped, expected, atol=1e-3)
    inputs = keras.Input((None,))
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling1D()(fe(inputs)))
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(reloaded(x).numpy(), expected.mean(axis=1), atol=1e-3)
    model.export(str(tmp_path / "saved"), verbose=False)
    served = tf.saved_model.load(str(tmp_path / "saved"))
    np.testing.assert_allclose(served.serve(tf.constant(x)).numpy(), expected.mean(axis=1), atol=1e-3)


def test_keras_layers_match_functions(waves):
    x = np.stack(waves[:1])
    np.testing.assert_allclose(LogMel()(x).numpy(), ops.log_mel(x).numpy(), atol=1e-5)
    lm = ops.log_mel(x).numpy()
    stacked = Deltas()(lm).numpy()
    np.testing.assert_allclose(stacked[..., 2], ops.deltas(lm, order=2).numpy(), atol=1e-5)
    assert Deltas.from_config(Deltas(orders=(0, 1)).get_config()).orders == (0, 1)


@pytest.mark.parametrize("name", ["zhang2021_dcnn", "zhang2021_2d"])
def test_split_resize_gives_the_front_end_output_to_the_bit(name, waves):
    x = np.stack([w[:32000] for w in waves[:2]])
    fe = FrontEnd(name)
    small, resize = fe.split_resize()
    before = small(x)
    assert before.shape[-3:] == (64, 64, 3) and small.settings["image_size"] is None
    expected = fe(x).numpy()
    np.testing.assert_array_equal(resize(before).numpy(), expected)
    # A batch of segments from different utterances resizes as the utterances do one by one.
    segments = tf.reshape(before, [-1, 64, 64, 3])
    np.testing.assert_array_equal(resize(segments).numpy(), expected.reshape((-1,) + expected.shape[2:]))
    inputs = keras.Input(before.shape[1:])
    assert keras.Model(inputs, resize(inputs)).output.shape[1:] == expected.shape[1:]


@pytest.mark.parametrize("name", ["zhang2021_3d", "zhao2019", "zhang2021_1d"])
def test_split_resize_leaves_stacks_and_unresized_front_ends_whole(name):
    fe = FrontEnd(name)
    assert fe.split_resize() == (fe, None)


def test_resize_images_layer_config_and_validation():
    layer = ResizeImages.from_config(json.loads(json.dumps(ResizeImages(33).get_config())))
    assert layer.size == 33
    ramp = np.broadcast_to(np.arange(4, dtype=np.float32)[None, :, None, None], (1, 4, 4, 1))
    out = layer(ramp).numpy()
    assert out.shape == (1, 33, 33, 1)
    np.testing.assert_allclose(out[0, :, 0, 0], tf.image.resize(ramp, [33, 33]).numpy()[0, :, 0, 0])
    for bad in (0, -3, 2.5, True, "227"):
        with pytest.raises(ParameterError, match="size must be a positive integer"):
            ResizeImages(bad)


@pytest.mark.parametrize("preset, settings", [(name, {}) for name in PRESETS] + [
    ("zhao2018", {"delta_orders": 0}), ("zhang2021_2d", {"channels": 1}), ("zhang2021_2d", {"channels": 2}),
    ("zhao2019", {"delta_orders": 1})])
def test_numerics_revision_follows_the_code_each_revision_changed(preset, settings, monkeypatch):
    # Revision 2 changed the delta filter (ops._savgol): a front end is at revision 2 exactly when
    # computing its output runs that filter.
    filtered = []
    savgol = ops._savgol
    monkeypatch.setattr(ops, "_savgol", lambda *args: filtered.append(1) or savgol(*args))
    frontend = FrontEnd(preset, **settings)
    frontend(tf.random.normal([1, frontend.sample_rate * 2], seed=1))
    assert frontend.numerics_revision == (2 if filtered else 1)
    assert numerics_revision(resolve(preset, **settings)) == frontend.numerics_revision


def test_preset_table_is_the_presets_with_citations():
    assert list(PRESETS) == [preset.name for preset in TABLE]
    for preset in TABLE:
        assert preset.citation.split()[0].startswith(preset.name.split("_")[0]), preset
        assert set(preset.settings) <= set(DEFAULTS), preset.name
        assert FrontEnd(preset.name).settings == {**DEFAULTS, **preset.settings}
