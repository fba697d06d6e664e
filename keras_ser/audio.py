"""Waveform loading and waveform-level preprocessing (NumPy).

Everything here works on one mono utterance as a float32 NumPy array. The
TensorFlow front end (:mod:`keras_ser.frontend`) starts from the output of
:func:`load`.

Bad input handling of :func:`load`:

============================  ===============================================
input                         handling
============================  ===============================================
missing file                  ``DataError`` naming the file
a directory                   ``DataError`` naming it
truncated / corrupt header    ``DataError`` naming the file
zero-length file              ``DataError`` naming the file
file with no samples          ``DataError`` naming the file
NaN or infinite samples       ``DataError`` naming the file
float samples outside [-1, 1] peak-normalised (divided by the largest
                              absolute sample) with an
                              :class:`OutOfRangeWarning` naming the file
silent or near-silent file    ``DataError`` naming the file: the RMS of the
                              whole (mono) file is below
                              :data:`SILENCE_FLOOR_DBFS` (-70 dBFS); an
                              all-zero file is the extreme case
shorter than ``min_duration`` ``DataError`` naming the file (default 25 ms,
                              one analysis window of every paper)
more than one channel         downmixed to mono by averaging the channels
other sample rate (8, 48 kHz) resampled to ``sr`` exactly as
                              ``librosa.resample`` does by default (soxr "HQ")
============================  ===============================================

The silence floor is one number for the whole library: :func:`load` (and so
training, extraction and ``predict`` on files), :meth:`keras_ser.predict.Predictor.predict_waveforms`
and the exported SavedModel (:mod:`keras_ser.export`) all refuse input whose RMS
is below it, so a silent input never gets a confident emotion. -70 dBFS is about
ten steps of 16-bit quantisation, 38 dB below the quietest EMO-DB file
(-31.6 dBFS) and far below any usable recording; at 1e-9 amplitude, the case that
first exposed the gap, the front ends see exactly what they see for all zeros.
"""

import pathlib
import warnings

import numpy as np
import soundfile
import soxr

from keras_ser.errors import DataError, ParameterError

#: Speed-perturbation factors of zhang2021_dcnn, Sec. 3.2 (Table 2, five times the data).
SPEED_FACTORS = (0.8, 0.9, 1.0, 1.1, 1.2)

#: Shortest accepted utterance in seconds: one 25 ms analysis window (all papers).
MIN_DURATION = 0.025

#: RMS level (dB re full scale 1.0) below which a waveform counts as silent (module docstring).
SILENCE_FLOOR_DBFS = -70.0

#: Peak above which a waveform handed to ``Predictor.predict_waveforms`` or the SavedModel is
#: divided by its peak. ``load`` checks a file's own samples against 1.0; the waveform it returns
#: may still peak slightly above 1.0 after band-limited resampling (EMO-DB's 13a05Nb.wav: 1.0013
#: at 16 kHz), and that overshoot is signal, not a scaling error, so it passes unchanged.
WAVEFORM_PEAK_LIMIT = 1.1


class OutOfRangeWarning(UserWarning):
    """A float audio file had samples outside [-1, 1] and was peak-normalised on loading."""


def rms_dbfs(x):
    """RMS level of a waveform in dB relative to full scale (1.0); ``-inf`` for all zeros.

    Examples
    --------
    >>> round(rms_dbfs(np.full(100, 0.1, np.float32)), 3)
    -20.0
    """
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return -np.inf
    rms = float(np.sqrt(np.mean(np.square(x))))
    return float(20.0 * np.log10(rms)) if rms > 0 else -np.inf


def is_silent(x):
    """True if the RMS level of ``x`` is below :data:`SILENCE_FLOOR_DBFS` (or ``x`` is empty).

    Examples
    --------
    >>> is_silent(np.full(100, 1e-9, np.float32)), is_silent(np.full(100, 0.01, np.float32))
    (True, False)
    """
    return bool(rms_dbfs(x) < SILENCE_FLOOR_DBFS)


def _check_signal(x, name="x"):
    x = np.asarray(x)
    if x.ndim != 1:
        raise ParameterError(f"{name} must be a 1-D mono waveform, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ParameterError(f"{name} must be floating point, got dtype {x.dtype}")
    return x


def load(path, sr=16000, min_duration=MIN_DURATION):
    """Read an audio file as a float32 mono waveform at ``sr`` Hz.

    The file is decoded with ``soundfile`` (wav, flac, ogg and the other
    formats of libsndfile) into [-1, 1] floats, multi-channel audio is
    downmixed by averaging the channels, and audio at another rate is
    resampled as ``librosa.resample`` does by default (:func:`resample`), so
    the result equals ``librosa.load(path, sr=sr)``. A float file with samples
    outside [-1, 1] is divided by its peak (:class:`OutOfRangeWarning`).
    See the module docstring for the handling of broken files.

    Parameters
    ----------
    path : str or path-like
        Audio file.
    sr : int or None
        Target sample rate; ``None`` keeps the file's own rate.
    min_duration : float
        Shortest accepted duration in seconds (measured before resampling).

    Returns
    -------
    np.ndarray
        float32 array of shape ``[samples]``.

    Raises
    ------
    DataError
        The file is missing, unreadable, empty, non-finite, silent (below
        :data:`SILENCE_FLOOR_DBFS`) or too short; the message names the file.
    ParameterError
        ``sr`` or ``min_duration`` is invalid.

    Examples
    --------
    >>> y = load("03a01Fa.wav", sr=16000)  # doctest: +SKIP
    >>> y.dtype, y.ndim  # doctest: +SKIP
    (dtype('float32'), 1)
    """
    if sr is not None and (not isinstance(sr, (int, np.integer)) or sr <= 0):
        raise ParameterError(f"sr must be a positive integer or None, got {sr!r}")
    if min_duration < 0:
        raise ParameterError(f"min_duration must be >= 0, got {min_duration!r}")
    path = pathlib.Path(path)
    if path.is_dir():
        raise DataError(f"audio file {path} is a directory, not a file")
    if not path.is_file():
        raise DataError(f"audio file not found: {path}")
    try:
        data, native_sr = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # libsndfile raises several error types for broken files
        raise DataError(f"cannot decode audio file {path}: {err}") from err
    if data.shape[0] == 0:
        raise DataError(f"audio file {path} contains no samples")
    if not np.all(np.isfinite(data)):
        raise DataError(f"audio file {path} contains NaN or infinite samples")
    peak = float(np.max(np.abs(data)))
    if peak > 1.0:
        # Only float files can exceed full scale; at integer scale (e.g. +-32768 or +-4e6)
        # every later stage (openSMILE's int16 cast, the dB front ends) would see garbage.
        warnings.warn(
            f"audio file {path} has samples outside [-1, 1] (peak {peak:.3g}); "
            "peak-normalised to 1.0", OutOfRangeWarning, stacklevel=2)
        data = data / np.float32(peak)
    y = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if not np.any(y):
        raise DataError(f"audio file {path} is silent (all samples are zero)")
    level = rms_dbfs(y)
    if level < SILENCE_FLOOR_DBFS:
        raise DataError(
            f"audio file {path} is silent: RMS {level:.1f} dBFS is below the silence floor "
            f"{SILENCE_FLOOR_DBFS:.0f} dBFS (keras_ser.audio.SILENCE_FLOOR_DBFS)")
    duration = y.shape[0] / native_sr
    if duration < min_duration:
        raise DataError(
            f"audio file {path} is too short: {duration * 1000:.1f} ms < "
            f"min_duration {min_duration * 1000:.1f} ms"
        )
    if sr is not None and native_sr != sr:
        y = resample(y, native_sr, sr)
    return np.ascontiguousarray(y, dtype=np.float32)


def resample(x, orig_sr, target_sr):
    """Resample like ``librosa.resample(x, orig_sr=..., target_sr=...)`` with its default soxr "HQ".

    soxr is called directly (librosa's first call pays several seconds of lazy
    imports, which would stall every tf.data worker); the output is cropped or
    zero-padded to ``ceil(len(x) * target_sr / orig_sr)`` samples as librosa does.

    Examples
    --------
    >>> resample(np.ones(441, np.float32), 22050, 16000).shape
    (320,)
    """
    x = _check_signal(x)
    if orig_sr <= 0 or target_sr <= 0:
        raise ParameterError(f"sample rates must be positive, got {orig_sr} -> {target_sr}")
    n_samples = int(np.ceil(x.shape[0] * float(target_sr) / orig_sr))
    y = soxr.resample(x, orig_sr, target_sr, quality="soxr_hq")
    if y.shape[0] >= n_samples:
        return np.ascontiguousarray(y[:n_samples], dtype=x.dtype)
    return np.pad(y, (0, n_samples - y.shape[0])).astype(x.dtype)


def preemphasis(x, coef=0.97):
    """First-order pre-emphasis ``y[n] = x[n] - coef * x[n-1]``, ``y[0] = x[0]``.

    zhang2021_dcnn (Sec. 2.2) pre-emphasises before the STFT "to amplify the high
    frequency part"; it gives no coefficient, 0.97 is the customary value.

    Examples
    --------
    >>> preemphasis(np.array([1.0, 1.0, 1.0], np.float32), 0.5)
    array([1. , 0.5, 0.5], dtype=float32)
    """
    x = _check_signal(x)
    if not 0.0 <= coef < 1.0:
        raise ParameterError(f"preemphasis coef must lie in [0, 1), got {coef!r}")
    y = np.empty_like(x)
    y[:1] = x[:1]
    y[1:] = x[1:] - coef * x[:-1]
    return y


def normalize(x):
    """Per-utterance standardisation to zero mean and unit variance (zhang2021_dcnn, Sec. 2.1).

    Raises ``DataError`` for a constant signal, whose variance is zero.

    Examples
    --------
    >>> y = normalize(np.array([1.0, 2.0, 3.0], np.float32))
    >>> float(y.mean()), round(float(y.std()), 6)
    (0.0, 1.0)
    """
    x = _check_signal(x)
    std = float(np.std(x, dtype=np.float64))
    if std == 0.0:
        raise DataError("cannot normalise a constant waveform (zero variance)")
    return ((x - np.mean(x, dtype=np.float64)) / std).astype(x.dtype)


def scale_raw(x, bound=256.0, peak_normalize=False):
    """Scale a [-1, 1] waveform into ``[-bound, bound]`` (zhang2021_multicnn, Sec. 2.2 (1)).

    zhang2021_multicnn only says that the raw waveforms "are scaled into [-256, 256]" and
    are "naturally near zero". By default the full-scale range [-1, 1] of the
    decoded audio is mapped linearly onto [-bound, bound] (``x * bound``), which
    keeps loudness differences between utterances; ``peak_normalize=True``
    instead maps each utterance's own peak onto ``bound``.

    Examples
    --------
    >>> scale_raw(np.array([0.5, -1.0], np.float32))
    array([ 128., -256.], dtype=float32)
    """
    x = _check_signal(x)
    if bound <= 0:
        raise ParameterError(f"bound must be positive, got {bound!r}")
    if peak_normalize:
        peak = float(np.max(np.abs(x)))
        if peak == 0.0:
            raise DataError("cannot peak-normalise a silent waveform")
        return (x * (bound / peak)).astype(x.dtype)
    return (x * bound).astype(x.dtype)


def fix_length(x, length):
    """Crop the end of ``x`` or zero-pad it at the end to exactly ``length`` samples.

    zhang2021_dcnn (Sec. 3.2) cuts utterances longer than 3 s and zero-pads shorter
    ones (``length = 3 * sr``).

    Examples
    --------
    >>> fix_length(np.ones(3, np.float32), 5)
    array([1., 1., 1., 0., 0.], dtype=float32)
    """
    x = _check_signal(x)
    if not isinstance(length, (int, np.integer)) or length <= 0:
        raise ParameterError(f"length must be a positive integer, got {length!r}")
    if x.shape[0] >= length:
        return x[:length].copy()
    return np.pad(x, (0, length - x.shape[0]))


def speed_perturb(x, factor, sr):
    """Change the playing speed by ``factor`` through resampling (zhang2021_dcnn, Sec. 3.2).

    The waveform is resampled from ``sr`` to ``sr / factor`` and then read at
    ``sr``: duration is divided by ``factor`` and every frequency multiplied by
    it (tempo and pitch change together, as when a recording is played faster).
    zhang2021_dcnn uses the factors :data:`SPEED_FACTORS`.

    Examples
    --------
    >>> y = speed_perturb(np.random.default_rng(0).standard_normal(16000).astype("float32"), 1.25, 16000)
    >>> y.shape
    (12800,)
    """
    x = _check_signal(x)
    if not np.isfinite(factor) or factor <= 0:
        raise ParameterError(f"speed factor must be positive, got {factor!r}")
    if not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise ParameterError(f"sr must be a positive integer, got {sr!r}")
    if factor == 1.0:
        return x.copy()
    return resample(x, float(sr), float(sr) / factor)
