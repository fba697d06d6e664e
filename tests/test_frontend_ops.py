"""The functional ops of keras_ser.frontend.ops against librosa and NumPy."""

import librosa
import numpy as np
import pytest
import tensorflow as tf
from frontend_helper import LOG_MEL_TOLERANCE_DB, MEL_SETTINGS, librosa_log_mel, waves  # noqa: F401 (fixture)

from keras_ser.errors import ParameterError
from keras_ser.frontend import FrontEnd, ops


@pytest.mark.parametrize("setting", sorted(MEL_SETTINGS))
def test_log_mel_parity_with_librosa(waves, setting):
    mel = MEL_SETTINGS[setting]
    batch = np.stack(waves)
    ours = ops.log_mel(batch, sample_rate=16000, **mel).numpy()
    for k, y in enumerate(waves):
        ref = librosa_log_mel(y, **mel)
        assert ours[k].shape == ref.shape
        assert np.abs(ours[k] - ref).max() <= LOG_MEL_TOLERANCE_DB


def test_mel_filterbank_matches_librosa():
    for mel in MEL_SETTINGS.values():
        for n_fft in (400, 512, 1024):
            ref = librosa.filters.mel(sr=16000, n_fft=n_fft, **mel)
            np.testing.assert_allclose(ops.mel_filterbank(16000, n_fft, **mel).T, ref, atol=1e-7)


def test_n_fft_larger_than_window_matches_librosa(waves):
    y = waves[0]
    ours = ops.log_mel(y[None], n_fft=512, **MEL_SETTINGS["zhao2019_htk40"]).numpy()[0]
    assert np.abs(ours - librosa_log_mel(y, n_fft=512, **MEL_SETTINGS["zhao2019_htk40"])).max() <= LOG_MEL_TOLERANCE_DB


def test_deltas_match_librosa(waves):
    static = librosa_log_mel(waves[1], **MEL_SETTINGS["zhang2021_slaney64"])  # [frames, mels]
    x = static[None].astype(np.float32)
    d1 = librosa.feature.delta(static.T, width=5).T
    cases = [
        (ops.deltas(x, order=1), d1),
        (ops.deltas(x, order=2), librosa.feature.delta(d1.T, width=5).T),  # zhang2021_dcnn eq. 3
        (ops.deltas(x, order=2, nested=False), librosa.feature.delta(static.T, width=5, order=2).T),
        (ops.deltas(x, order=1, width=9), librosa.feature.delta(static.T, width=9).T),
    ]
    for ours, ref in cases:
        ours = ours.numpy()[0]
        assert ours.shape == ref.shape
        assert np.abs(ours - ref).max() <= 1e-4 * np.abs(ref).max()


def test_deltas_interior_is_eq2():
    x = np.random.default_rng(0).standard_normal((1, 12, 3)).astype(np.float32)
    d = ops.deltas(x).numpy()[0]
    i = 6
    ref = (1 * (x[0, i + 1] - x[0, i - 1]) + 2 * (x[0, i + 2] - x[0, i - 2])) / 10.0
    np.testing.assert_allclose(d[i], ref, rtol=1e-5)
    with pytest.raises(ParameterError):
        ops.deltas(x, width=4)
    with pytest.raises(ParameterError):
        ops.deltas(x[:, :3], width=5)


def test_deltas_of_a_constant_are_exactly_zero_so_a_silent_segment_image_is_blank():
    # A silent stretch has a constant log-mel (its floor); filtering it directly leaves ~1e-7 of
    # round-off in the delta channels, which minmax_scale stretched to 0-255 noise.
    floor = np.full((1, 64, 64), -57.245293, np.float32)
    for order, nested in ((1, True), (2, True), (2, False)):
        assert not np.any(ops.deltas(floor, order=order, nested=nested).numpy())
    images = ops.minmax_scale(ops.stack_deltas(floor, (0, 1, 2), 5, True)[:, None]).numpy()
    assert not np.any(images)
    # The 2-second copy padded to zhang2021_dcnn's 3 s: the last of the 8 segments is all padding.
    wave = np.random.default_rng(0).standard_normal(32000).astype(np.float32)
    segments = FrontEnd("zhang2021_dcnn", image_size=None)(wave[None]).numpy()[0]
    assert segments.shape[0] == 8 and not np.any(segments[-1]) and segments[0].std() > 10


def test_segment_and_stack_match_numpy():
    x = np.arange(2 * 200 * 3, dtype=np.float32).reshape(2, 200, 3)
    seg = ops.segment(x, 64, 32).numpy()
    assert seg.shape == (2, 5, 64, 3)
    np.testing.assert_array_equal(seg[1, 3], x[1, 96:160])
    images = np.random.default_rng(0).standard_normal((1, 9, 4, 5, 3)).astype(np.float32)
    stacks = ops.stack_segments(images, depth=4).numpy()
    assert stacks.shape == (1, 2, 4, 5, 4, 3)
    np.testing.assert_array_equal(stacks[0, 1, :, :, 2], images[0, 6])


def test_minmax_scale_and_bilinear_resize_keep_a_ramp_linear():
    ramp = np.tile(np.linspace(-80.0, 0.0, 64, dtype=np.float32)[:, None, None], (1, 64, 3))[None]
    scaled = ops.minmax_scale(ramp).numpy()
    np.testing.assert_allclose(scaled[0, :, 0, 0], np.linspace(0, 255, 64), rtol=1e-5, atol=1e-4)
    fe = FrontEnd("zhang2021_2d")
    assert fe.settings["image_size"] == 227
    resized = tf.image.resize(scaled, [227, 227], method="bilinear").numpy()[0, :, 0, 0]
    # bilinear interpolation reproduces an affine function away from the clamped borders
    centres = (np.arange(227) + 0.5) * 64 / 227 - 0.5
    inner = (centres > 0) & (centres < 63)
    np.testing.assert_allclose(resized[inner], centres[inner] * 255 / 63, rtol=1e-4, atol=1e-3)



# --------------------------------------------------------------------------- #
# librosa compatibility over a parameter grid (synthetic signals, no corpus), in the manner of
# torchaudio's librosa-compatibility tests: every grid point the front end supports.
# --------------------------------------------------------------------------- #

GRID_RATES = (8000, 16000, 22050)
GRID_BANDS = ((0.0, None), (20.0, 4000.0), (300.0, 3400.0))  # full band, zhang2021's low edge, telephone band
GRID = [
    dict(sample_rate=rate, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, mel_norm=norm, n_fft=n_fft)
    for rate in GRID_RATES
    for n_mels in (40, 128)
    for fmin, fmax in GRID_BANDS
    for htk in (True, False)
    for norm in ("slaney", None)
    for n_fft in (None, 1024)
]


def _grid_id(point):
    scale = "htk" if point["htk"] else "slaney"
    top = "nyquist" if point["fmax"] is None else f"{point['fmax']:g}"
    return (f"{point['sample_rate']}Hz-{point['n_mels']}mels-{point['fmin']:g}-{top}-{scale}-"
            f"norm_{point['mel_norm']}-nfft_{point['n_fft'] or 'window'}")


def _synthetic(sample_rate, seconds=0.5):
    """A deterministic test signal: a 100 Hz - Nyquist chirp, two tones and low noise, in [-1, 1]."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    rng = np.random.default_rng(sample_rate)
    chirp = np.sin(2 * np.pi * (100.0 * t + 0.5 * (sample_rate / 2 - 100.0) / seconds * t ** 2))
    tones = 0.3 * np.sin(2 * np.pi * 440.0 * t) + 0.1 * np.sin(2 * np.pi * 2500.0 * t)
    return (0.5 * chirp + tones + 0.01 * rng.standard_normal(t.size)).astype(np.float32) / 1.5


@pytest.mark.filterwarnings("ignore:Empty filters detected")
@pytest.mark.parametrize("point", GRID, ids=[_grid_id(p) for p in GRID])
def test_log_mel_matches_librosa_over_a_parameter_grid(point):
    rate = point["sample_rate"]
    win_length, hop_length, n_fft = ops.frame_settings(rate, 25.0, 10.0, point["n_fft"])
    mel = dict(n_mels=point["n_mels"], fmin=point["fmin"], fmax=point["fmax"], htk=point["htk"])
    reference_bank = librosa.filters.mel(sr=rate, n_fft=n_fft, norm=point["mel_norm"], **mel)
    np.testing.assert_allclose(ops.mel_filterbank(rate, n_fft, norm=point["mel_norm"], **mel).T, reference_bank,
                               atol=1e-7)
    y = _synthetic(rate)
    power = librosa.feature.melspectrogram(y=y, sr=rate, n_fft=n_fft, hop_length=hop_length, win_length=win_length,
                                           window="hamming", center=True, pad_mode="constant", power=2.0,
                                           norm=point["mel_norm"], **mel)
    reference = librosa.power_to_db(power).T  # ref 1, amin 1e-10, top_db 80: the front end's defaults
    ours = ops.log_mel(y[None], **point).numpy()[0]
    assert ours.shape == reference.shape == (ops.num_frames(y.size, hop_length), point["n_mels"])
    assert np.abs(ours - reference).max() <= LOG_MEL_TOLERANCE_DB
