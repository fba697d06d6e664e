"""TensorFlow front end: log-mel spectrograms, deltas, segments, and the ``FrontEnd`` layer.

Every function takes batched tensors and uses TensorFlow ops only, so it runs in
a ``tf.data`` map, inside a Keras model and inside an exported SavedModel.
Filterbank and window constants are computed once in NumPy.

Front-end settings of the papers
--------------------------------
All papers: power STFT with a Hamming window of 25 ms and a hop of 10 ms
(zhao2019 Sec. III-A eq. 1; zhang2021_multicnn Sec. 2.2 (2); zhang2021_dcnn Sec. 2.2). The papers give no FFT
size; the FFT length here equals the window (400 points at 16 kHz, the "frame
length of 25 ms"), a parameter (``n_fft``). Frames are centred and the signal
zero-padded by ``n_fft // 2`` on both sides, as ``librosa.stft`` does (the
papers used librosa: zhao2019 Sec. III-A, zhang2021_dcnn Sec. 3.2).

* zhao2019 (``"zhao2019"``): 40 mel bands on the HTK scale of eq. 2, 0 Hz to Nyquist,
  "log-amplitude mel-spectrogram" (Sec. III-C) computed as
  ``librosa.power_to_db`` (10 log10 of the mel power, ref 1, amin 1e-10,
  top_db 80: librosa's defaults). Input 40 x 500: see "pad/crop policy".
* zhang2021_multicnn (``"zhang2021_2d"``, ``"zhang2021_3d"``): 64 mel bands from 20 to 8000 Hz,
  log mel in dB as above, 64-frame segments; the paper gives no segment hop,
  64 (no overlap) is used. Deltas are computed per segment ("of the produced
  static segment along the time axis"). The filterbank is librosa's default
  Slaney scale with Slaney area normalisation: zhang2021_multicnn names no mel formula.
* zhang2021_dcnn (``"zhang2021_dcnn"``): as zhang2021_multicnn but 3 s utterances, pre-emphasis, per-
  utterance standardisation and a segment hop of 32 frames (Sec. 2.2, 3.2).
  Eq. 1 writes ``m = log(P)``; librosa's ``power_to_db`` (10 log10, a constant
  multiple of ln) is used, ``log="ln"`` gives the natural logarithm.
* zhao2018 (``"zhao2018"``): the paper used YAAFE's 743 frame features (1024-sample
  frames, PCA-whitened), which cannot be computed here. The preset is a
  documented SUBSTITUTE: 40 log-mel bands plus deltas and delta-deltas
  (120 values per frame) with YAAFE's default frame of 1024 samples (64 ms at
  16 kHz), hop 512 and Hann window.

Pad/crop policy of the 40 x 500 input of zhao2019
--------------------------------------------
The waveform is zero-padded at the end (or cropped) to ``(500 - 1) * hop``
samples, which gives exactly 500 centred frames. Padded frames are therefore
digital silence, whose mel power is zero and whose dB value is the floor
``max - top_db`` of that utterance (the same value librosa gives a silent
stretch). No mask or length is carried: zhao2019 feeds a fixed 40 x 500 input.
EMO-DB-2s utterances (2.0 s, 201 frames) thus end with 299 floor frames;
:func:`num_frames` gives the number of frames that hold signal.

Length cap (``max_seconds``)
----------------------------
A variable-length front end (``num_frames=None``: ``"zhao2018"``, the segment
presets) gives a long utterance many frames, and a training batch is padded to its
longest member, so one 10-minute file raises a run's memory for every batch.
``max_seconds`` keeps the first ``max_seconds`` of each waveform and drops the rest,
before any other step. Keeping the start (rather than a centred crop) matches the
crop of ``num_frames`` and ``duration`` above, and needs no knowledge of the full
length, so a streamed or padded input is cut the same way. Being a ``FrontEnd``
setting, it is stored in a MODEL DIR's ``frontend.json`` and the exported SavedModel,
so training, ``predict`` and serving see the same input. The default, ``None``, keeps
everything: no paper caps the length, and a default cap would change the recipes
(and so the configuration of runs that resume) and the saved models of earlier
versions; a recipe for a corpus with long files sets ``frontend.max_seconds``.
"""

import math

import keras
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


def _frame_settings(sample_rate, win_ms, hop_ms, n_fft):
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
    win_length, hop_length, n_fft = _frame_settings(sample_rate, win_ms, hop_ms, n_fft)
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
    _, _, fft_size = _frame_settings(sample_rate, win_ms, hop_ms, n_fft)
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


# --------------------------------------------------------------------------- #
# Keras layers
# --------------------------------------------------------------------------- #

_LOG_MEL_KEYS = ("sample_rate", "n_mels", "fmin", "fmax", "htk", "win_ms", "hop_ms", "n_fft", "window", "mel_norm", "log", "top_db")


@keras.saving.register_keras_serializable(package="keras_ser")
class LogMel(keras.layers.Layer):
    """Keras layer around :func:`log_mel`: ``[batch, samples] -> [batch, frames, n_mels]``.

    Examples
    --------
    >>> LogMel(n_mels=64, fmin=20.0, fmax=8000.0, htk=False)(tf.zeros([1, 16000])).shape
    TensorShape([1, 101, 64])
    """

    def __init__(self, sample_rate=16000, n_mels=40, fmin=0.0, fmax=None, htk=True, win_ms=25.0, hop_ms=10.0,
                 n_fft=None, window="hamming", mel_norm="slaney", log="db", top_db=80.0, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.settings = dict(sample_rate=sample_rate, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, win_ms=win_ms,
                             hop_ms=hop_ms, n_fft=n_fft, window=window, mel_norm=mel_norm, log=log, top_db=top_db)
        # Validate eagerly so that a bad setting fails at construction, not at first call.
        bins = _frame_settings(sample_rate, win_ms, hop_ms, n_fft)[2]
        mel_filterbank(sample_rate, bins, n_mels, fmin, fmax, htk, mel_norm)

    def call(self, waveform):
        return log_mel(waveform, **self.settings)

    def get_config(self):
        return {**super().get_config(), **self.settings}


@keras.saving.register_keras_serializable(package="keras_ser")
class Deltas(keras.layers.Layer):
    """Keras layer around :func:`deltas`; ``orders=(0, 1, 2)`` stacks static, delta and
    delta-delta on a new last axis (the 3-channel input of zhang2021_multicnn/002).

    Examples
    --------
    >>> Deltas()(tf.zeros([1, 64, 64])).shape
    TensorShape([1, 64, 64, 3])
    """

    def __init__(self, orders=(0, 1, 2), width=5, nested=True, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.orders = tuple(int(o) for o in orders)
        if not self.orders or min(self.orders) < 0:
            raise ParameterError(f"orders must be non-negative integers, got {orders!r}")
        self.width = width
        self.nested = nested

    def call(self, features):
        return _stack_deltas(features, self.orders, self.width, self.nested)

    def get_config(self):
        return {**super().get_config(), "orders": list(self.orders), "width": self.width, "nested": self.nested}


def _stack_deltas(features, orders, width, nested):
    channels = [features if order == 0 else deltas(features, order, width, nested) for order in orders]
    return tf.stack(channels, axis=-1)


#: One FrontEnd configuration per paper input. Output shapes (batch first):
#:
#: ==================  ==========  ================================  ==========================
#: preset              input rate  output                            paper
#: ==================  ==========  ================================  ==========================
#: ``zhao2019``        16 kHz      ``[b, 500, 40]`` log-mel (dB)     zhao2019 Sec. III-A, III-C
#: ``zhao2018``        16 kHz      ``[b, frames, 120]`` SUBSTITUTE   zhao2018 Sec. 4.2 (see module)
#: ``zhang2021_1d``    22.05 kHz   ``[b, segments, 625, 1]``         zhang2021_multicnn Sec. 2.2 (1), Table 4
#: ``zhang2021_2d``    16 kHz      ``[b, segments, 227, 227, 3]``    zhang2021_multicnn Sec. 2.2 (2)
#: ``zhang2021_3d``    16 kHz      ``[b, stacks, 64, 64, 4, 3]``     zhang2021_multicnn Sec. 2.2 (3), Table 3
#: ``zhang2021_dcnn``  16 kHz      ``[b, 8, 227, 227, 3]``           zhang2021_dcnn Sec. 2.1-2.2, 3.2
#: ``tzirakis2021``    22.05 kHz   ``[b, sequences, 100, 2205]``     tzirakis2021 Sec. 4.2
#: ==================  ==========  ================================  ==========================
#:
#: Image axes are (mel, time, channel); channels are static, delta, delta-delta.
#: The 227 x 227 images are scaled to [0, 255] per segment and channel (the
#: range the ImageNet backbones expect; zhang2021_multicnn/002 do not state a scaling).
#: zhang2021_multicnn does not give the sample rate of its spectrogram input; 16 kHz (the rate
#: all other papers resample to, and >= 2 x its 8 kHz upper band edge) is used.
PRESETS = {
    "zhao2019": dict(representation="log_mel", sample_rate=16000, n_mels=40, fmin=0.0, fmax=None, htk=True,
                     num_frames=500),
    "zhao2018": dict(representation="log_mel", sample_rate=16000, n_mels=40, fmin=0.0, fmax=None, htk=True,
                     n_fft=1024, win_ms=64.0, hop_ms=32.0, window="hann", delta_orders=2),
    "zhang2021_1d": dict(representation="raw_segments", sample_rate=22050, raw_scale=256.0, segment_samples=625),
    "zhang2021_2d": dict(representation="mel_segments", sample_rate=16000, n_mels=64, fmin=20.0, fmax=8000.0,
                         htk=False, segment_frames=64, segment_hop=64, image_size=227, image_range=[0.0, 255.0]),
    "zhang2021_3d": dict(representation="mel_segments", sample_rate=16000, n_mels=64, fmin=20.0, fmax=8000.0,
                         htk=False, segment_frames=64, segment_hop=64, stack_depth=4),
    "zhang2021_dcnn": dict(representation="mel_segments", sample_rate=16000, n_mels=64, fmin=20.0, fmax=8000.0,
                           htk=False, normalize=True, duration=3.0, preemphasis=0.97, segment_frames=64,
                           segment_hop=32, image_size=227, image_range=[0.0, 255.0]),
    "tzirakis2021": dict(representation="raw_segments", sample_rate=22050, segment_samples=2205,
                         sequence_frames=100, pad_end=True),
}

_DEFAULTS = dict(
    representation="log_mel", sample_rate=16000, normalize=False, preemphasis=0.0, duration=None,
    n_mels=40, fmin=0.0, fmax=None, htk=True, win_ms=25.0, hop_ms=10.0, n_fft=None, window="hamming",
    mel_norm="slaney", log="db", top_db=80.0, num_frames=None, delta_orders=0, delta_width=5, nested_deltas=True,
    segment_frames=64, segment_hop=64, channels=3, delta_scope="segment", image_size=None, image_range=None,
    stack_depth=None, stack_hop=None, raw_scale=None, segment_samples=625, segment_hop_samples=None,
    sequence_frames=None, pad_end=False, standardize=None, feature_mean=None, feature_std=None,
    max_seconds=None,
)


def standardize_utterance(features, epsilon=1e-5):
    """Per-utterance, per-dimension standardisation over time (CMVN).

    None of the papers states a feature normalisation. Raw dB log-mels (band
    means of -10 to -45 dB and standard deviations near 15-20 dB on EMO-DB)
    saturate the LSTM gates of the BLSTM branches, which have no BatchNorm.
    This per-utterance map fixes that, at the price of removing each
    utterance's level per band (an arousal cue; ``standardize="global"`` and
    ``"speaker"`` keep it, and the ``zhao2019`` / ``zhao2018`` recipes use
    ``"speaker"``). It is computed in the graph, so exported models carry it.

    Parameters
    ----------
    features : tf.Tensor
        ``[batch, frames, dims]``.
    epsilon : float
        Added to the variance.

    Returns
    -------
    tf.Tensor
        ``(features - mean_t) / sqrt(var_t + epsilon)``, statistics over axis -2.

    Examples
    --------
    >>> x = tf.constant([[[1.0], [3.0]]])
    >>> standardize_utterance(x).numpy().ravel().round(3).tolist()
    [-1.0, 1.0]
    """
    mean, variance = tf.nn.moments(features, axes=[-2], keepdims=True)
    return (features - mean) * tf.math.rsqrt(variance + epsilon)


def feature_statistics(features, epsilon=1e-5):
    """Per-dimension mean and standard deviation over every frame of a training set.

    The statistics of ``FrontEnd(..., standardize="global")``: the experiment
    runner computes them on each fold's training utterances (after speed
    perturbation) and stores them in the fold's front end, so that predict and
    export apply the same affine map in the graph.

    Parameters
    ----------
    features : sequence of np.ndarray
        ``[frames, dims]`` arrays (frame counts may differ).
    epsilon : float
        Added to the variance, so that a constant dimension gets std ``sqrt(epsilon)``.

    Returns
    -------
    (list of float, list of float)
        Mean and standard deviation per dimension, accumulated in float64.

    Examples
    --------
    >>> mean, std = feature_statistics([np.array([[1.0], [3.0]]), np.array([[5.0]])])
    >>> [round(v, 3) for v in mean + std]
    [3.0, 1.633]
    """
    rows = [np.asarray(f, np.float64).reshape(-1, np.shape(f)[-1]) for f in features]
    if not rows or not sum(len(r) for r in rows):
        raise ParameterError("feature_statistics needs at least one frame")
    if len({r.shape[1] for r in rows}) != 1:
        raise ParameterError(f"feature_statistics got frames of different widths {sorted({r.shape[1] for r in rows})}")
    frames = np.concatenate(rows)
    if not np.all(np.isfinite(frames)):
        raise ParameterError("feature_statistics got non-finite feature values")
    mean = frames.mean(axis=0)
    std = np.sqrt(frames.var(axis=0) + epsilon)
    return mean.tolist(), std.tolist()


@keras.saving.register_keras_serializable(package="keras_ser")
class FrontEnd(keras.layers.Layer):
    """Waveforms ``[batch, samples]`` (float32 in [-1, 1] at ``sample_rate``) to a paper's model input.

    ``FrontEnd("zhao2019")`` builds the input of one paper (see :data:`PRESETS`);
    keyword arguments override single settings. The waveform must already be
    at ``sample_rate`` (16 kHz for all presets except the raw-wave inputs of zhang2021_multicnn
    and tzirakis2021, which expect 22.05 kHz): load it with
    ``keras_ser.audio.load(path, sr=front_end.sample_rate)``. Each row is one
    utterance; rows of a padded batch are processed as if the zero padding were
    part of the utterance, so feed utterances one at a time (or at equal
    length) when ``normalize=True``.

    Processing order: ``max_seconds`` (keep at most the first ``max_seconds``
    seconds, see the module docstring) -> ``normalize`` (zhang2021_dcnn Sec. 2.1) -> fixed ``duration`` in
    seconds (crop / zero-pad, zhang2021_dcnn Sec. 3.2) -> ``preemphasis`` (zhang2021_dcnn Sec. 2.2) ->
    representation:

    * ``"log_mel"``: :func:`log_mel` ``[b, frames, n_mels]``; ``num_frames``
      fixes the number of frames (module docstring: pad/crop policy);
      ``delta_orders=k`` appends deltas of orders 1..k on the last axis.
    * ``"mel_segments"``: log-mel cut into ``segment_frames``-frame segments
      every ``segment_hop`` frames; ``channels`` (1-3, zhang2021_dcnn Table 1) of static /
      delta / delta-delta computed per segment (``delta_scope="segment"``, zhang2021_multicnn)
      or on the whole utterance before cutting (``"utterance"``); optional
      ``image_range`` min-max scaling per segment and channel, bilinear resize
      to ``image_size`` (zhang2021_multicnn, zhang2021_dcnn: 227 for AlexNet) and 3D stacks of
      ``stack_depth`` consecutive segments (zhang2021_multicnn: 4; Table 6: 6, 8, 10). The
      waveform is zero-padded so that at least one segment (stack) exists.
    * ``"raw_segments"``: waveform times ``raw_scale`` (zhang2021_multicnn: 256) cut into
      ``segment_samples``-sample segments every ``segment_hop_samples``
      (``[b, n, segment_samples, 1]``), or with ``sequence_frames`` into
      sequences of that many frames (tzirakis2021: 100 frames of 0.1 s = 10 s,
      ``[b, n, sequence_frames, segment_samples]``). ``pad_end`` keeps a
      partial last segment / sequence by zero padding.

    ``standardize="utterance"`` standardises ``"log_mel"`` features per
    utterance and dimension over time (:func:`standardize_utterance`);
    ``standardize="global"`` maps them with fixed per-dimension statistics
    ``(x - feature_mean) / feature_std`` (:func:`feature_statistics` of a
    training set), which keeps level differences between utterances (loud
    anger, soft sadness) that per-utterance CMVN removes. ``"speaker"`` is the
    same map with one speaker's statistics (per-speaker normalisation: the
    experiment runner standardises every speaker with its own). Off in every
    preset because no paper states a normalisation.

    Examples
    --------
    >>> fe = FrontEnd("zhang2021_dcnn")
    >>> fe(tf.zeros([2, 32000]) + 0.1 * tf.random.normal([2, 32000])).shape
    TensorShape([2, 8, 227, 227, 3])
    >>> FrontEnd.from_config(fe.get_config()).get_config() == fe.get_config()
    True
    """

    def __init__(self, preset=None, **kwargs):
        base = {k: kwargs.pop(k) for k in list(kwargs) if k in ("name", "dtype", "trainable")}
        base.setdefault("dtype", "float32")
        base.setdefault("trainable", False)
        super().__init__(**base)
        unknown = sorted(set(kwargs) - set(_DEFAULTS))
        if unknown:
            raise ParameterError(f"unknown FrontEnd settings {unknown}; known: {sorted(_DEFAULTS)}")
        if preset is not None and preset not in PRESETS:
            raise ParameterError(f"unknown FrontEnd preset {preset!r}; available: {sorted(PRESETS)}")
        self.preset = preset
        settings = dict(_DEFAULTS)
        settings.update(PRESETS.get(preset, {}))
        settings.update(kwargs)
        if settings["image_range"] is not None:
            settings["image_range"] = [float(v) for v in settings["image_range"]]
        self.settings = settings
        self._validate()

    # -- settings ---------------------------------------------------------- #
    @property
    def sample_rate(self):
        """Rate in Hz the input waveform must have."""
        return self.settings["sample_rate"]

    @property
    def max_samples(self):
        """Samples kept of each waveform (``max_seconds`` at ``sample_rate``), or None."""
        seconds = self.settings["max_seconds"]
        return None if seconds is None else int(round(seconds * self.sample_rate))

    @property
    def segmented(self):
        """True when the output has a segment axis 1 (scores are pooled per utterance)."""
        return self.settings["representation"] != "log_mel"

    @property
    def hop_length(self):
        """STFT hop in samples."""
        s = self.settings
        return _frame_settings(s["sample_rate"], s["win_ms"], s["hop_ms"], s["n_fft"])[1]

    def _log_mel_kwargs(self):
        return {k: self.settings[k] for k in _LOG_MEL_KEYS}

    def _validate(self):
        s = self.settings
        if s["representation"] not in ("log_mel", "mel_segments", "raw_segments"):
            raise ParameterError(f"representation must be log_mel, mel_segments or raw_segments, got {s['representation']!r}")
        if not isinstance(s["sample_rate"], int) or s["sample_rate"] <= 0:
            raise ParameterError(f"sample_rate must be a positive integer, got {s['sample_rate']!r}")
        if not 0.0 <= s["preemphasis"] < 1.0:
            raise ParameterError(f"preemphasis must lie in [0, 1), got {s['preemphasis']!r}")
        for key in ("duration", "max_seconds"):
            value = s[key]
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value) or value <= 0):
                raise ParameterError(f"{key} must be positive seconds or None, got {value!r}")
        if s["max_seconds"] is not None:
            s["max_seconds"] = float(s["max_seconds"])
            if self.max_samples < 1:
                raise ParameterError(f"max_seconds={s['max_seconds']!r} keeps no sample at {s['sample_rate']} Hz")
        if s["standardize"] not in (None, "utterance", "global", "speaker"):
            raise ParameterError(
                f"standardize must be None, 'utterance', 'global' or 'speaker', got {s['standardize']!r}")
        if s["standardize"] is not None and s["representation"] != "log_mel":
            raise ParameterError(f"standardize applies to representation='log_mel' only, not {s['representation']!r}")
        stats = (s["feature_mean"], s["feature_std"])
        if s["standardize"] in ("global", "speaker"):
            if stats[0] is None or stats[1] is None:
                raise ParameterError(
                    f"standardize={s['standardize']!r} needs feature_mean and feature_std "
                    "(keras_ser.features.feature_statistics; the experiment runner computes them per fold)")
            width = s["n_mels"] * (s["delta_orders"] + 1)
            for key, values in zip(("feature_mean", "feature_std"), stats):
                if len(values) != width or not all(np.isfinite(v) for v in values):
                    raise ParameterError(f"{key} must hold {width} finite values (one per feature), got {len(values)}")
            if min(stats[1]) <= 0:
                raise ParameterError("feature_std must be positive")
            s["feature_mean"], s["feature_std"] = [float(v) for v in stats[0]], [float(v) for v in stats[1]]
        elif stats != (None, None):
            raise ParameterError("feature_mean / feature_std are used only with standardize='global' or 'speaker'")
        if s["log"] not in ("db", "ln"):
            raise ParameterError(f"log must be 'db' or 'ln', got {s['log']!r}")
        if s["channels"] not in (1, 2, 3):
            raise ParameterError(f"channels must be 1, 2 or 3, got {s['channels']!r}")
        if s["delta_scope"] not in ("segment", "utterance"):
            raise ParameterError(f"delta_scope must be 'segment' or 'utterance', got {s['delta_scope']!r}")
        if s["image_range"] is not None and (len(s["image_range"]) != 2 or s["image_range"][0] >= s["image_range"][1]):
            raise ParameterError(f"image_range must be [low, high] with low < high, got {s['image_range']!r}")
        for key in ("num_frames", "segment_frames", "segment_hop", "image_size", "stack_depth", "stack_hop",
                    "segment_samples", "segment_hop_samples", "sequence_frames"):
            value = s[key]
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise ParameterError(f"{key} must be a positive integer or None, got {value!r}")
        if not isinstance(s["delta_orders"], int) or s["delta_orders"] < 0:
            raise ParameterError(f"delta_orders must be a non-negative integer, got {s['delta_orders']!r}")
        bins = _frame_settings(s["sample_rate"], s["win_ms"], s["hop_ms"], s["n_fft"])[2]
        if s["representation"] != "raw_segments":
            mel_filterbank(s["sample_rate"], bins, s["n_mels"], s["fmin"], s["fmax"], s["htk"], s["mel_norm"])
        if s["representation"] == "mel_segments" and s["channels"] > 1 and s["segment_frames"] < s["delta_width"]:
            raise ParameterError(f"segment_frames={s['segment_frames']} is shorter than delta_width={s['delta_width']}")

    # -- computation ------------------------------------------------------- #
    def call(self, waveform):
        s = self.settings
        x = tf.convert_to_tensor(waveform, tf.float32)
        if s["max_seconds"] is not None:
            x = x[:, :self.max_samples]
        if s["normalize"]:
            x = normalize(x)
        if s["duration"] is not None:
            x = fix_length(x, int(round(s["duration"] * s["sample_rate"])))
        if s["preemphasis"]:
            x = preemphasis(x, s["preemphasis"])
        if s["representation"] == "log_mel":
            return self._log_mel(x)
        if s["representation"] == "mel_segments":
            return self._mel_segments(x)
        return self._raw_segments(x)

    def _log_mel(self, x):
        s = self.settings
        if s["num_frames"] is not None:
            x = fix_length(x, (s["num_frames"] - 1) * self.hop_length)
        elif s["delta_orders"]:
            x = pad_to_min(x, (s["delta_width"] - 1) * self.hop_length)
        feats = log_mel(x, **self._log_mel_kwargs())
        if s["delta_orders"]:
            orders = range(s["delta_orders"] + 1)
            feats = tf.concat([feats if o == 0 else deltas(feats, o, s["delta_width"], s["nested_deltas"])
                               for o in orders], axis=-1)
        if s["standardize"] == "utterance":
            feats = standardize_utterance(feats)
        elif s["standardize"] in ("global", "speaker"):
            feats = (feats - tf.constant(s["feature_mean"], tf.float32)) / tf.constant(s["feature_std"], tf.float32)
        return feats

    def _mel_segments(self, x):
        s = self.settings
        min_segments = s["stack_depth"] or 1
        min_frames = s["segment_frames"] + (min_segments - 1) * s["segment_hop"]
        x = pad_to_min(x, (min_frames - 1) * self.hop_length)
        feats = log_mel(x, **self._log_mel_kwargs())
        orders = tuple(range(s["channels"]))
        if s["delta_scope"] == "utterance":
            images = segment(_stack_deltas(feats, orders, s["delta_width"], s["nested_deltas"]),
                             s["segment_frames"], s["segment_hop"])
        else:
            images = _stack_deltas(segment(feats, s["segment_frames"], s["segment_hop"]), orders,
                                   s["delta_width"], s["nested_deltas"])
        images = tf.transpose(images, [0, 1, 3, 2, 4])  # [b, n, time, mel, c] -> [b, n, mel, time, c]
        if s["image_range"] is not None:
            images = minmax_scale(images, *s["image_range"])
        if s["image_size"] is not None:
            batch, count = tf.shape(images)[0], tf.shape(images)[1]
            flat = tf.reshape(images, [-1, s["n_mels"], s["segment_frames"], s["channels"]])
            flat = tf.image.resize(flat, [s["image_size"], s["image_size"]], method="bilinear")
            images = tf.reshape(flat, [batch, count, s["image_size"], s["image_size"], s["channels"]])
        if s["stack_depth"] is not None:
            images = stack_segments(images, s["stack_depth"], s["stack_hop"])
        return images

    def _raw_segments(self, x):
        s = self.settings
        if s["raw_scale"] is not None:
            x = x * s["raw_scale"]
        length = s["segment_samples"]
        hop = s["segment_hop_samples"] or length
        x = pad_to_min(x, length)
        frames = tf.signal.frame(x, length, hop, axis=-1, pad_end=s["pad_end"])
        if s["sequence_frames"] is None:
            return frames[..., None]
        return tf.signal.frame(frames, s["sequence_frames"], s["sequence_frames"], axis=1, pad_end=s["pad_end"])

    def get_config(self):
        config = super().get_config()
        config.update({"preset": self.preset, **self.settings})
        return config


def with_speaker_statistics(frontend, waveforms):
    """A copy of a ``standardize="speaker"`` front end holding one speaker's statistics.

    The per-speaker normalisation of the experiment runner, for a speaker it has
    not seen: :func:`feature_statistics` over every frame of the speaker's
    utterances (unstandardised front-end outputs, no labels needed) become the
    ``feature_mean`` / ``feature_std`` of the returned front end. Use several
    utterances: one utterance's statistics amount to per-utterance standardisation.

    Parameters
    ----------
    frontend : FrontEnd
        With ``standardize="speaker"``.
    waveforms : sequence of 1-D arrays
        The speaker's utterances at ``frontend.sample_rate`` (lengths may differ).

    Raises
    ------
    keras_ser.errors.ParameterError
        If ``frontend`` is not speaker-standardised or ``waveforms`` is empty.

    Examples
    --------
    >>> fe = FrontEnd("zhao2019", standardize="speaker", feature_mean=[0.0] * 40, feature_std=[1.0] * 40)
    >>> rng = np.random.default_rng(0)
    >>> adapted = with_speaker_statistics(fe, [0.1 * rng.standard_normal(16000) for _ in range(3)])
    >>> bool(np.abs(np.mean(adapted(0.1 * rng.standard_normal((1, 16000)).astype("float32")))) < 0.5)
    True
    """
    config = frontend.get_config()
    if config.get("standardize") != "speaker":
        raise ParameterError(f"the front end has standardize={config.get('standardize')!r}, not 'speaker'; "
                             "it takes no speaker statistics")
    if len(waveforms) == 0:
        raise ParameterError("speaker statistics need at least one waveform of the speaker")
    raw = FrontEnd.from_config(dict(config, standardize=None, feature_mean=None, feature_std=None))
    mean, std = feature_statistics([np.asarray(raw(np.asarray(w, np.float32)[None]))[0] for w in waveforms])
    return FrontEnd.from_config(dict(config, feature_mean=mean, feature_std=std))
