"""Functional front-end operations: NumPy constants and batched TensorFlow ops.

Every TensorFlow function takes batched tensors and uses TensorFlow ops only, so it
runs in a ``tf.data`` map, inside a Keras model and inside an exported SavedModel.
Filterbank and window constants are computed once in NumPy.

The STFT of all papers: power STFT with a Hamming window of 25 ms and a hop of
10 ms (zhao2019 Sec. III-A eq. 1; zhang2021_multicnn Sec. 2.2 (2); zhang2021_dcnn
Sec. 2.2). The papers give no FFT size; the FFT length here equals the window (400
points at 16 kHz, the "frame length of 25 ms"), a parameter (``n_fft``). Frames are
centred and the signal zero-padded by ``n_fft // 2`` on both sides, as
``librosa.stft`` does (the papers used librosa: zhao2019 Sec. III-A, zhang2021_dcnn
Sec. 3.2). The per-paper settings are in :mod:`keras_ser.frontend.presets`.

Imports NumPy, TensorFlow and :mod:`keras_ser.errors` only (no Keras).
"""


import math

import numpy as np
import tensorflow as tf

from keras_ser.errors import ParameterError

# --------------------------------------------------------------------------- #
# NumPy constants
# --------------------------------------------------------------------------- #


def hz_to_mel(frequencies, htk=False):
    """Hertz to mel: HTK ``2595 log10(1 + f / 700)`` (zhao2019 eq. 2) or Slaney's scale.

    Examples
    --------
    >>> float(hz_to_mel(700.0, htk=True))  # doctest: +ELLIPSIS
    781.17...
    """
    f = np.asanyarray(frequencies, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + f / 700.0)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    linear = f / f_sp
    log_part = min_log_mel + np.log(np.maximum(f, min_log_hz) / min_log_hz) / logstep
    return np.where(f >= min_log_hz, log_part, linear)


def mel_to_hz(mels, htk=False):
    """Inverse of :func:`hz_to_mel`."""
    m = np.asanyarray(mels, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(sample_rate, n_fft, n_mels=40, fmin=0.0, fmax=None, htk=True, norm="slaney"):
    """Triangular mel filterbank ``[n_fft // 2 + 1, n_mels]`` (float64).

    The construction is that of ``librosa.filters.mel`` (triangles between
    ``n_mels + 2`` points equally spaced on the mel scale; ``norm="slaney"``
    divides each triangle by its width in Hz so all have equal area), here
    transposed so that ``power @ filterbank`` maps ``[..., bins]`` to mels.

    Examples
    --------
    >>> mel_filterbank(16000, 400, n_mels=40).shape
    (201, 40)
    """
    if fmax is None:
        fmax = sample_rate / 2.0
    if not 0.0 <= fmin < fmax <= sample_rate / 2.0:
        raise ParameterError(
            f"need 0 <= fmin < fmax <= sample_rate / 2, got fmin={fmin}, fmax={fmax}, "
            f"sample_rate={sample_rate}"
        )
    if norm not in ("slaney", None):
        raise ParameterError(f"mel norm must be 'slaney' or None, got {norm!r}")
    fft_freqs = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
    mel_points = mel_to_hz(np.linspace(hz_to_mel(fmin, htk), hz_to_mel(fmax, htk), n_mels + 2), htk)
    widths = np.diff(mel_points)
    ramps = mel_points[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    if norm == "slaney":
        weights *= (2.0 / (mel_points[2:] - mel_points[:-2]))[:, None]
    return weights.T


def _window(name, win_length, n_fft):
    """Periodic window of ``win_length`` centred in ``n_fft`` zeros (librosa.stft's convention)."""
    n = np.arange(win_length)
    if name == "hamming":
        w = 0.54 - 0.46 * np.cos(2.0 * np.pi * n / win_length)
    elif name == "hann":
        w = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / win_length)
    else:
        raise ParameterError(f"window must be 'hamming' or 'hann', got {name!r}")
    left = (n_fft - win_length) // 2
    return np.pad(w, (left, n_fft - win_length - left))


def _delta_matrices(width, order):
    """Savitzky-Golay derivative weights as ``scipy.signal.savgol_filter(mode="interp")`` uses them.

    Returns ``(interior, left, right)``: the correlation weights ``[width]`` for
    frames with a full window, and ``[width // 2, width]`` matrices that map the
    first / last ``width`` frames to the first / last ``width // 2`` outputs
    (derivative of a least-squares polynomial of degree ``order`` fitted to the
    edge window, librosa's default ``mode="interp"``).
    """
    half = width // 2
    t = np.arange(width, dtype=np.float64)
    vander = t[:, None] ** np.arange(order + 1)[None, :]
    fit = np.linalg.pinv(vander)
    # librosa fits a polynomial of degree ``order`` and takes its ``order``-th
    # derivative, which is the constant ``order! * a_order`` over the window.
    derivative = np.zeros((width, order + 1))
    derivative[:, order] = math.factorial(order)
    full = derivative @ fit
    return full[half], full[:half], full[width - half :]


# --------------------------------------------------------------------------- #
# TensorFlow functions
# --------------------------------------------------------------------------- #


def frame_settings(sample_rate, win_ms, hop_ms, n_fft):
    """``(win_length, hop_length, n_fft)`` in samples of a window and hop in milliseconds.

    ``n_fft=None`` is the window length. Raises ``ParameterError`` for an empty window or
    hop, or an ``n_fft`` shorter than the window.

    Examples
    --------
    >>> frame_settings(16000, 25.0, 10.0, None)
    (400, 160, 400)
    """
    win_length = int(round(sample_rate * win_ms / 1000.0))
    hop_length = int(round(sample_rate * hop_ms / 1000.0))
    if win_length <= 0 or hop_length <= 0:
        raise ParameterError(f"win_ms={win_ms} and hop_ms={hop_ms} give an empty window or hop")
    n_fft = win_length if n_fft is None else int(n_fft)
    if n_fft < win_length:
        raise ParameterError(f"n_fft={n_fft} is shorter than the window ({win_length} samples)")
    return win_length, hop_length, n_fft


def num_frames(num_samples, hop_length):
    """Number of centred STFT frames of a signal: ``1 + num_samples // hop_length``.

    Examples
    --------
    >>> num_frames(32000, 160)
    201
    """
    return 1 + num_samples // hop_length


def power_spectrogram(waveform, sample_rate=16000, win_ms=25.0, hop_ms=10.0, n_fft=None, window="hamming"):
    """Power STFT ``|STFT{x}|^2`` (zhao2019 eq. 1) of ``[batch, samples]`` -> ``[batch, frames, bins]``.

    Centred frames with zero padding of ``n_fft // 2`` at both ends, periodic
    window: identical to ``np.abs(librosa.stft(x, n_fft, hop, win, window,
    center=True, pad_mode="constant")) ** 2`` transposed.
    """
    win_length, hop_length, n_fft = frame_settings(sample_rate, win_ms, hop_ms, n_fft)
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    padded = tf.pad(waveform, [[0, 0], [n_fft // 2, n_fft // 2]])
    frames = tf.signal.frame(padded, n_fft, hop_length, axis=-1)
    frames = frames * tf.constant(_window(window, win_length, n_fft), tf.float32)
    spectrum = tf.signal.rfft(frames, fft_length=[n_fft])
    return tf.math.square(tf.math.real(spectrum)) + tf.math.square(tf.math.imag(spectrum))


def power_to_db(power, amin=1e-10, top_db=80.0):
    """``librosa.power_to_db`` with ``ref=1`` per batch element: ``10 log10(max(amin, S))``,
    clipped from below at ``max - top_db`` where the max runs over one example."""
    log_spec = 10.0 * tf.math.log(tf.maximum(power, amin)) / math.log(10.0)
    if top_db is None:
        return log_spec
    if top_db < 0:
        raise ParameterError(f"top_db must be non-negative, got {top_db}")
    axes = list(range(1, len(power.shape)))
    peak = tf.reduce_max(log_spec, axis=axes, keepdims=True)
    return tf.maximum(log_spec, peak - top_db)


def log_mel(
    waveform,
    sample_rate=16000,
    n_mels=40,
    fmin=0.0,
    fmax=None,
    htk=True,
    win_ms=25.0,
    hop_ms=10.0,
    n_fft=None,
    window="hamming",
    mel_norm="slaney",
    log="db",
    top_db=80.0,
    amin=1e-10,
):
    """Log mel spectrogram ``[batch, samples] -> [batch, frames, n_mels]`` float32.

    Power STFT (:func:`power_spectrogram`), mel filterbank
    (:func:`mel_filterbank`), then ``log="db"``: ``librosa.power_to_db`` with
    ``ref=1.0`` and per-example ``top_db``; ``log="ln"``: ``ln(max(amin, S))``
    (eq. 1 of zhang2021_dcnn taken literally). Defaults are the setting of zhao2019
    (40 HTK bands, Hamming 25 ms / 10 ms at 16 kHz).

    Examples
    --------
    >>> x = tf.random.normal([2, 32000])
    >>> log_mel(x).shape
    TensorShape([2, 201, 40])
    """
    if log not in ("db", "ln"):
        raise ParameterError(f"log must be 'db' or 'ln', got {log!r}")
    if n_mels <= 0:
        raise ParameterError(f"n_mels must be positive, got {n_mels}")
    _, _, fft_size = frame_settings(sample_rate, win_ms, hop_ms, n_fft)
    power = power_spectrogram(waveform, sample_rate, win_ms, hop_ms, n_fft, window)
    bank = mel_filterbank(sample_rate, fft_size, n_mels, fmin, fmax, htk, mel_norm)
    mel = tf.tensordot(power, tf.constant(bank, tf.float32), axes=[[2], [0]])
    if log == "db":
        return power_to_db(mel, amin=amin, top_db=top_db)
    return tf.math.log(tf.maximum(mel, amin))


def deltas(features, order=1, width=5, nested=True):
    """Regression (delta) coefficients along the time axis ``-2``.

    ``order=1`` is eq. 2 of zhang2021_dcnn with ``N = width // 2`` (``N = 2`` by default),
    ``d_i = sum_n n (m_{i+n} - m_{i-n}) / (2 sum_n n^2)``, with librosa's edge
    handling (``librosa.feature.delta(mode="interp")``: the first and last
    ``N`` frames get the slope of a straight line fitted to the first / last
    ``width`` frames). It equals ``librosa.feature.delta(x, width=width)``.

    ``order=2`` with ``nested=True`` (default) is eq. 3 of zhang2021_dcnn, the delta of
    the deltas, i.e. ``librosa.feature.delta`` applied twice. ``nested=False``
    gives ``librosa.feature.delta(x, order=order, width=width)`` instead (a
    Savitzky-Golay second derivative over one window; not the paper's eq. 3).

    Parameters
    ----------
    features : tf.Tensor
        ``[..., frames, bands]`` with at least ``width`` frames.

    Examples
    --------
    >>> x = tf.reshape(tf.range(10, dtype=tf.float32), [1, 10, 1])
    >>> deltas(x)[0, :, 0].numpy()
    array([1., 1., 1., 1., 1., 1., 1., 1., 1., 1.], dtype=float32)
    """
    if not isinstance(width, int) or width < 3 or width % 2 == 0:
        raise ParameterError(f"delta width must be an odd integer >= 3, got {width!r}")
    if not isinstance(order, int) or order < 1:
        raise ParameterError(f"delta order must be a positive integer, got {order!r}")
    features = tf.convert_to_tensor(features, tf.float32)
    if features.shape.rank is not None and features.shape.rank < 2:
        raise ParameterError(f"features must have rank >= 2 ([..., frames, bands]), got {features.shape}")
    static_frames = features.shape[-2]
    if static_frames is not None and static_frames < width:
        raise ParameterError(f"deltas need at least width={width} frames, got {static_frames}")
    if nested:
        out = features
        for _ in range(order):
            out = _savgol(out, width, 1)
        return out
    if order >= width:
        raise ParameterError(f"delta order {order} must be smaller than width {width}")
    return _savgol(features, width, order)


def _savgol(x, width, order):
    interior, left, right = _delta_matrices(width, order)
    # Each row of these derivative filters sums to zero, so filtering x less its first frame
    # gives the same deltas, and exact zeros where x is constant: the float32 round-off
    # (~1e-7) of filtering the constant itself would be stretched by minmax_scale over the
    # whole image range, turning a silent segment's delta channels into noise.
    x = x - x[..., :1, :]
    frames = tf.shape(x)[-2]
    body = 0.0
    for k in range(width):
        if interior[k] != 0.0:
            body = body + float(interior[k]) * x[..., k : frames - width + 1 + k, :]
    left_part = tf.einsum("hw,...wf->...hf", tf.constant(left, tf.float32), x[..., :width, :])
    right_part = tf.einsum("hw,...wf->...hf", tf.constant(right, tf.float32), x[..., frames - width :, :])
    return tf.concat([left_part, body, right_part], axis=-2)


def segment(features, length=64, hop=32):
    """Cut ``[batch, frames, bands]`` into ``[batch, segments, length, bands]``.

    Segments start every ``hop`` frames; an incomplete last segment is dropped
    (pad the waveform beforehand to keep it: :class:`FrontEnd` does so via
    ``min_segments``).
    """
    if length <= 0 or hop <= 0:
        raise ParameterError(f"segment length and hop must be positive, got {length}, {hop}")
    return tf.signal.frame(features, length, hop, axis=-2)


def stack_segments(segments, depth=4, hop=None):
    """Stack ``depth`` consecutive segments into 3D "videos" (zhang2021_multicnn Sec. 2.2 (3), Table 6).

    ``[batch, segments, F, T, C] -> [batch, stacks, F, T, depth, C]``; stacks
    start every ``hop`` segments (default ``depth``: non-overlapping, as zhang2021_multicnn gives
    no stack hop and says longer videos leave fewer of them).
    """
    hop = depth if hop is None else hop
    if depth <= 0 or hop <= 0:
        raise ParameterError(f"stack depth and hop must be positive, got {depth}, {hop}")
    stacks = tf.signal.frame(segments, depth, hop, axis=1)  # [b, stacks, depth, F, T, C]
    return tf.transpose(stacks, [0, 1, 3, 4, 2, 5])


def minmax_scale(images, low=0.0, high=255.0):
    """Scale each image channel linearly onto ``[low, high]`` over its own spatial min/max.

    ``images`` is ``[..., H, W, C]``; a constant channel maps to ``low``.
    """
    lo = tf.reduce_min(images, axis=[-3, -2], keepdims=True)
    hi = tf.reduce_max(images, axis=[-3, -2], keepdims=True)
    scale = tf.math.divide_no_nan(tf.constant(high - low, tf.float32), hi - lo)
    return low + (images - lo) * scale


def resize_images(images, size):
    """Bilinear resize of ``[..., H, W, C]`` images to ``[..., size, size, C]`` (no antialiasing).

    Every image is interpolated on its own, so resizing a batch gives the same values as
    resizing its images one at a time: :class:`keras_ser.frontend.ResizeImages` relies on it
    to resize per training batch what the front end would have resized per utterance.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    shape = tf.shape(images)
    flat = tf.reshape(images, tf.concat([[-1], shape[-3:]], axis=0))
    flat = tf.image.resize(flat, [size, size], method="bilinear")
    out = tf.reshape(flat, tf.concat([shape[:-3], [size, size], shape[-1:]], axis=0))
    out.set_shape(images.shape[:-3].concatenate([size, size]).concatenate(images.shape[-1:]))
    return out


def fix_length(waveform, length):
    """Crop or zero-pad ``[batch, samples]`` at the end to ``length`` samples (graph-safe)."""
    waveform = waveform[:, :length]
    pad = tf.maximum(length - tf.shape(waveform)[1], 0)
    out = tf.pad(waveform, [[0, 0], [0, pad]])
    return tf.ensure_shape(out, [None, length])


def pad_to_min(waveform, min_length):
    """Zero-pad ``[batch, samples]`` at the end to at least ``min_length`` samples."""
    pad = tf.maximum(min_length - tf.shape(waveform)[1], 0)
    return tf.pad(waveform, [[0, 0], [0, pad]])


def preemphasis(waveform, coef=0.97):
    """Batched :func:`keras_ser.audio.preemphasis`: ``y[n] = x[n] - coef x[n-1]``, ``y[0] = x[0]``."""
    return tf.concat([waveform[:, :1], waveform[:, 1:] - coef * waveform[:, :-1]], axis=1)


def normalize(waveform):
    """Batched per-row zero mean / unit variance (zhang2021_dcnn Sec. 2.1); a constant row maps to zeros."""
    mean, variance = tf.nn.moments(waveform, axes=[1], keepdims=True)
    return tf.math.divide_no_nan(waveform - mean, tf.sqrt(variance))


def stack_deltas(features, orders, width, nested):
    """Static features (order 0) and their :func:`deltas` of ``orders`` stacked on a new last axis."""
    channels = [features if order == 0 else deltas(features, order, width, nested) for order in orders]
    return tf.stack(channels, axis=-1)
