import numpy as np
import pytest
import scipy.signal
import soundfile

from keras_ser import audio
from keras_ser.errors import DataError, ParameterError


def _sine(freq, sr, seconds=0.5, channels=1):
    t = np.arange(int(sr * seconds)) / sr
    x = 0.5 * np.sin(2 * np.pi * freq * t)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def _peak_hz(y, sr):
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return np.fft.rfftfreq(len(y), 1 / sr)[np.argmax(spectrum)]


@pytest.fixture
def broken_corpus(tmp_path):
    """The bad-input corpus, written fresh for every test."""
    files = {}
    good = tmp_path / "good.wav"
    soundfile.write(good, _sine(440, 16000), 16000, subtype="PCM_16")
    truncated = tmp_path / "truncated_header.wav"
    truncated.write_bytes(good.read_bytes()[:20])
    files["truncated"] = truncated
    empty = tmp_path / "zero_length.wav"
    empty.write_bytes(b"")
    files["zero_length"] = empty
    no_samples = tmp_path / "no_samples.wav"
    soundfile.write(no_samples, np.zeros(0), 16000)
    files["no_samples"] = no_samples
    silent = tmp_path / "all_zero.wav"
    soundfile.write(silent, np.zeros(16000), 16000, subtype="PCM_16")
    files["all_zero"] = silent
    nan = tmp_path / "nan_float.wav"
    data = _sine(440, 16000).astype(np.float32)
    data[100] = np.nan
    soundfile.write(nan, data, 16000, subtype="FLOAT")
    files["nan"] = nan
    short = tmp_path / "one_ms.wav"
    soundfile.write(short, _sine(440, 16000, seconds=0.001), 16000, subtype="PCM_16")
    files["one_ms"] = short
    return tmp_path, files


@pytest.mark.parametrize("kind,message", [
    ("truncated", "cannot decode"), ("zero_length", "cannot decode"), ("no_samples", "no samples"),
    ("all_zero", "silent"), ("nan", "NaN"), ("one_ms", "too short"),
])
def test_broken_files_raise_data_error_naming_the_file(broken_corpus, kind, message):
    _, files = broken_corpus
    with pytest.raises(DataError, match=message) as info:
        audio.load(files[kind])
    assert str(files[kind]) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found") as info:
        audio.load(tmp_path / "nope.wav")
    assert "nope.wav" in str(info.value)


def test_stereo_is_downmixed_by_channel_mean(tmp_path):
    left = _sine(440, 16000)
    right = _sine(1000, 16000)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    y = audio.load(path)
    np.testing.assert_allclose(y, (left + right) / 2, atol=1e-6)


@pytest.mark.parametrize("rate", [8000, 48000])
def test_other_rates_are_resampled(tmp_path, rate):
    path = tmp_path / f"sine_{rate}.wav"
    soundfile.write(path, _sine(440, rate), rate, subtype="FLOAT")
    y = audio.load(path, sr=16000)
    assert y.dtype == np.float32 and y.shape == (8000,)
    assert abs(_peak_hz(y, 16000) - 440) < 3
    # away from the edges the resampled signal is the 440 Hz sine sampled at 16 kHz
    np.testing.assert_allclose(y[1000:-1000], _sine(440, 16000)[1000:-1000], atol=2e-3)


def test_load_matches_librosa_on_emodb(emodb_wavs):
    import librosa

    for path in emodb_wavs[:2]:
        ours = audio.load(path, sr=16000)
        ref, _ = librosa.load(path, sr=16000)
        assert ours.shape == ref.shape
        np.testing.assert_allclose(ours, ref, atol=1e-6)


def test_preemphasis_matches_lfilter():
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    ref = scipy.signal.lfilter([1.0, -0.97], [1.0], x)
    np.testing.assert_allclose(audio.preemphasis(x), ref, rtol=1e-5, atol=1e-6)
    with pytest.raises(ParameterError):
        audio.preemphasis(x, coef=1.5)


def test_normalize_scale_fix_length():
    x = np.random.default_rng(1).normal(3.0, 2.0, 5000).astype(np.float32)
    y = audio.normalize(x)
    assert abs(y.mean()) < 1e-5 and abs(y.std() - 1) < 1e-5
    with pytest.raises(DataError):
        audio.normalize(np.ones(10, np.float32))
    z = np.array([0.25, -0.5], np.float32)
    np.testing.assert_array_equal(audio.scale_raw(z), [64.0, -128.0])
    np.testing.assert_array_equal(audio.scale_raw(z, peak_normalize=True), [128.0, -256.0])
    np.testing.assert_array_equal(audio.fix_length(z, 4), [0.25, -0.5, 0, 0])
    np.testing.assert_array_equal(audio.fix_length(x, 3), x[:3])
    with pytest.raises(ParameterError):
        audio.fix_length(z, 0)


@pytest.mark.parametrize("factor", audio.SPEED_FACTORS)
def test_speed_perturb_scales_duration_and_frequency(factor):
    x = _sine(500, 16000, seconds=1.0).astype(np.float32)
    y = audio.speed_perturb(x, factor, 16000)
    assert y.shape[0] == int(np.ceil(16000 / factor))
    assert abs(_peak_hz(y, 16000) - 500 * factor) < 3
    with pytest.raises(ParameterError):
        audio.speed_perturb(x, 0.0, 16000)


def _noise(sr=16000, seconds=0.5, rms=0.1, seed=0):
    return (rms * np.random.default_rng(seed).standard_normal(int(sr * seconds))).astype(np.float32)


@pytest.mark.parametrize("amplitude", [1e-9, 1e-5, 10 ** (audio.SILENCE_FLOOR_DBFS / 20) * 0.9])
def test_near_silent_file_is_rejected_below_the_energy_floor(tmp_path, amplitude):
    # 1e-9 used to give the same features as an all-zero file and a confident emotion.
    path = tmp_path / "near silent.wav"
    soundfile.write(path, _noise(rms=amplitude), 16000, subtype="FLOAT")
    with pytest.raises(DataError, match=r"silent: RMS .* dBFS is below the silence floor") as info:
        audio.load(path)
    assert str(path) in str(info.value)


def test_quiet_file_just_above_the_floor_loads(tmp_path):
    path = tmp_path / "quiet.wav"
    rms = 10 ** (audio.SILENCE_FLOOR_DBFS / 20) * 1.2
    soundfile.write(path, _noise(rms=rms), 16000, subtype="FLOAT")
    y = audio.load(path)
    assert audio.rms_dbfs(y) > audio.SILENCE_FLOOR_DBFS
    assert audio.rms_dbfs(np.zeros(10, np.float32)) == -np.inf


def test_out_of_range_float_file_is_peak_normalised_with_a_warning(tmp_path):
    # Float WAVs at integer scale (about +-4e6) overflowed openSMILE's int16 cast.
    path = tmp_path / "loud_float.wav"
    clean = _noise(rms=0.2)
    clean /= np.max(np.abs(clean))
    soundfile.write(path, clean * 4e6, 16000, subtype="FLOAT")
    with pytest.warns(audio.OutOfRangeWarning, match="loud_float.wav.*peak 4e\\+06") as record:
        y = audio.load(path)
    assert len(record) == 1
    assert float(np.max(np.abs(y))) == pytest.approx(1.0)
    np.testing.assert_allclose(y, clean, rtol=1e-5, atol=1e-6)
    in_range = tmp_path / "full_scale.wav"
    soundfile.write(in_range, clean, 16000, subtype="FLOAT")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a file inside [-1, 1] loads unchanged, without a warning
        np.testing.assert_array_equal(audio.load(in_range), clean)
