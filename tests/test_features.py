import json

import keras
import librosa
import numpy as np
import pytest
import tensorflow as tf

from keras_ser import audio, features
from keras_ser.errors import ParameterError
from keras_ser.features import PRESETS, FrontEnd, feature_statistics

MEL_SETTINGS = {
    "000_htk40": dict(n_mels=40, fmin=0.0, fmax=None, htk=True),
    "001_002_slaney64": dict(n_mels=64, fmin=20.0, fmax=8000.0, htk=False),
}


def _librosa_log_mel(y, n_fft=400, hop=160, **mel):
    power = librosa.feature.melspectrogram(y=y, sr=16000, n_fft=n_fft, hop_length=hop, win_length=400,
                                           window="hamming", center=True, pad_mode="constant", power=2.0, **mel)
    return librosa.power_to_db(power).T  # [frames, mels]


@pytest.fixture(scope="module")
def waves(emodb_wavs):
    return [audio.load(p, sr=16000) for p in emodb_wavs[::107][:4]]


@pytest.mark.parametrize("setting", sorted(MEL_SETTINGS))
def test_log_mel_parity_with_librosa(waves, setting):
    mel = MEL_SETTINGS[setting]
    batch = np.stack(waves)
    ours = features.log_mel(batch, sample_rate=16000, **mel).numpy()
    for k, y in enumerate(waves):
        ref = _librosa_log_mel(y, **mel)
        assert ours[k].shape == ref.shape
        assert np.abs(ours[k] - ref).max() <= 0.01


def test_mel_filterbank_matches_librosa():
    for mel in MEL_SETTINGS.values():
        for n_fft in (400, 512, 1024):
            ref = librosa.filters.mel(sr=16000, n_fft=n_fft, **mel)
            np.testing.assert_allclose(features.mel_filterbank(16000, n_fft, **mel).T, ref, atol=1e-7)


def test_n_fft_larger_than_window_matches_librosa(waves):
    y = waves[0]
    ours = features.log_mel(y[None], n_fft=512, **MEL_SETTINGS["000_htk40"]).numpy()[0]
    assert np.abs(ours - _librosa_log_mel(y, n_fft=512, **MEL_SETTINGS["000_htk40"])).max() <= 0.01


def test_deltas_match_librosa(waves):
    static = _librosa_log_mel(waves[1], **MEL_SETTINGS["001_002_slaney64"])  # [frames, mels]
    x = static[None].astype(np.float32)
    d1 = librosa.feature.delta(static.T, width=5).T
    cases = [
        (features.deltas(x, order=1), d1),
        (features.deltas(x, order=2), librosa.feature.delta(d1.T, width=5).T),  # zhang2021_dcnn eq. 3
        (features.deltas(x, order=2, nested=False), librosa.feature.delta(static.T, width=5, order=2).T),
        (features.deltas(x, order=1, width=9), librosa.feature.delta(static.T, width=9).T),
    ]
    for ours, ref in cases:
        ours = ours.numpy()[0]
        assert ours.shape == ref.shape
        assert np.abs(ours - ref).max() <= 1e-4 * np.abs(ref).max()


def test_deltas_interior_is_eq2():
    x = np.random.default_rng(0).standard_normal((1, 12, 3)).astype(np.float32)
    d = features.deltas(x).numpy()[0]
    i = 6
    ref = (1 * (x[0, i + 1] - x[0, i - 1]) + 2 * (x[0, i + 2] - x[0, i - 2])) / 10.0
    np.testing.assert_allclose(d[i], ref, rtol=1e-5)
    with pytest.raises(ParameterError):
        features.deltas(x, width=4)
    with pytest.raises(ParameterError):
        features.deltas(x[:, :3], width=5)


def test_segment_and_stack_match_numpy():
    x = np.arange(2 * 200 * 3, dtype=np.float32).reshape(2, 200, 3)
    seg = features.segment(x, 64, 32).numpy()
    assert seg.shape == (2, 5, 64, 3)
    np.testing.assert_array_equal(seg[1, 3], x[1, 96:160])
    images = np.random.default_rng(0).standard_normal((1, 9, 4, 5, 3)).astype(np.float32)
    stacks = features.stack_segments(images, depth=4).numpy()
    assert stacks.shape == (1, 2, 4, 5, 4, 3)
    np.testing.assert_array_equal(stacks[0, 1, :, :, 2], images[0, 6])


def test_minmax_scale_and_bilinear_resize_keep_a_ramp_linear():
    ramp = np.tile(np.linspace(-80.0, 0.0, 64, dtype=np.float32)[:, None, None], (1, 64, 3))[None]
    scaled = features.minmax_scale(ramp).numpy()
    np.testing.assert_allclose(scaled[0, :, 0, 0], np.linspace(0, 255, 64), rtol=1e-5, atol=1e-4)
    fe = FrontEnd("zhang2021_2d")
    assert fe.settings["image_size"] == 227
    resized = tf.image.resize(scaled, [227, 227], method="bilinear").numpy()[0, :, 0, 0]
    # bilinear interpolation reproduces an affine function away from the clamped borders
    centres = (np.arange(227) + 0.5) * 64 / 227 - 0.5
    inner = (centres > 0) & (centres < 63)
    np.testing.assert_allclose(resized[inner], centres[inner] * 255 / 63, rtol=1e-4, atol=1e-3)


def test_zhao2019_pad_crop_policy(waves):
    y = waves[0]  # 2.0 s -> 201 frames of signal
    out = FrontEnd("zhao2019")(y[None]).numpy()[0]
    assert out.shape == (500, 40)
    ref = _librosa_log_mel(y, **MEL_SETTINGS["000_htk40"])
    assert np.abs(out[:200] - ref[:200]).max() <= 0.01
    floor = ref.max() - 80.0
    np.testing.assert_allclose(out[202:], floor, atol=1e-3)
    long = np.tile(y, 3)  # 6 s is cropped to the first 500 frames
    out_long = FrontEnd("zhao2019")(long[None]).numpy()[0]
    ref_long = _librosa_log_mel(long, **MEL_SETTINGS["000_htk40"])[:498]  # frames 498-499 reach the crop
    assert np.abs(out_long[:498] - ref_long).max() <= 0.01


def test_zhang2021_dcnn_matches_librosa_reference(waves):
    y = waves[2]
    fe = FrontEnd("zhang2021_dcnn", image_size=None, image_range=None)
    out = fe(y[None]).numpy()[0]
    assert out.shape == (8, 64, 64, 3)
    z = audio.preemphasis(audio.fix_length(audio.normalize(y), 48000))
    static = _librosa_log_mel(z, **MEL_SETTINGS["001_002_slaney64"])  # 301 frames
    for k in (0, 7):
        seg = static[32 * k : 32 * k + 64].T  # [mel, time]
        d1 = librosa.feature.delta(seg, width=5)
        ref = np.stack([seg, d1, librosa.feature.delta(d1, width=5)], axis=-1)
        assert np.abs(out[k, ..., 0] - ref[..., 0]).max() <= 0.01
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
    assert np.abs(out[:, :40] - ref).max() <= 0.01


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
    np.testing.assert_allclose(features.LogMel()(x).numpy(), features.log_mel(x).numpy(), atol=1e-5)
    lm = features.log_mel(x).numpy()
    stacked = features.Deltas()(lm).numpy()
    np.testing.assert_allclose(stacked[..., 2], features.deltas(lm, order=2).numpy(), atol=1e-5)
    assert features.Deltas.from_config(features.Deltas(orders=(0, 1)).get_config()).orders == (0, 1)
