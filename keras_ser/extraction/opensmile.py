"""openSMILE features (eGeMAPS, ComParE) through the ``opensmile`` package.

zhao2019 (Sec. IV-B, Table 7) compares its deep-spectrum representation with the
*extended Geneva Minimalistic Acoustic Parameter Set* (eGeMAPS) and the *ComParE*
2016 set, both extracted with the openSMILE toolkit. This module wraps
``opensmile.Smile`` at two levels, so that the values are exactly those openSMILE
computes:

* :class:`OpenSmileExtractor`: openSMILE's own utterance-level ``Functionals``
  (eGeMAPS 88, ComParE 6373), the standard use of both sets;
* :class:`OpenSmileLLDExtractor`: the frame-level ``LowLevelDescriptors``
  (eGeMAPS 25, ComParE 65 per 10 ms frame), what zhao2019 extracted ("low level
  features") before its own PCA and functionals (:mod:`keras_ser.svm`,
  ``egemaps_lld_stats`` / ``compare_lld_stats``).

Sampling rate: the corpora of this project are resampled to 16 kHz before any
front end (the EMO-DB copy here is stored at 22.05 kHz; its original is 16 kHz), so
by default the waveform is loaded at 16 kHz with :func:`keras_ser.audio.load` and
handed to ``Smile.process_signal``. ``sample_rate=None`` instead processes the file
at its native rate (the values of ``Smile.process_file``, the call openSMILE users
know, on a mono file inside [-1, 1]).

Minimum duration: both sets need 60 ms of audio (eGeMAPS's pitch window; shorter
input makes openSMILE fill every functional with NaN and only warn). Input
shorter than :data:`MIN_DURATION` (61 ms: openSMILE rounds frame sizes, and
1323 samples at 22.05 kHz still give NaN) is refused with a ``DataError``, at
both levels, and a result that is not finite (or, for LLDs, has no frame)
raises instead of being returned.

Imports NumPy and :mod:`keras_ser.errors`; ``opensmile`` and :mod:`keras_ser.audio` when used.
"""

import pathlib

import numpy as np

from keras_ser.errors import DataError, ParameterError

#: Short names accepted everywhere in keras_ser -> (openSMILE feature set, dimension of its functionals).
FEATURE_SETS = {
    "egemaps": ("eGeMAPSv02", 88),
    "compare": ("ComParE_2016", 6373),
}

#: Low-level descriptors per frame of each set (``FeatureLevel.LowLevelDescriptors``).
LLD_DIMENSIONS = {"egemaps": 25, "compare": 65}

#: Shortest waveform (seconds) for which both feature sets give finite functionals (measured at
#: 8, 16, 22.05 and 48 kHz: 60 ms, and one sample more at 22.05 kHz).
MIN_DURATION = 0.061


def _preload_smileapi():
    """Load openSMILE's C library with ``RTLD_DEEPBIND`` before ``opensmile`` does.

    When TensorFlow is loaded first, libSMILEapi.so otherwise binds some of its
    symbols to TensorFlow's copies and ``Smile.process_*`` segfaults; binding the
    library to its own symbols first avoids that (a later ``dlopen`` of the same
    path returns this handle).
    """
    import ctypes
    import importlib.util
    import os
    import sys

    if "opensmile" in sys.modules or not hasattr(os, "RTLD_DEEPBIND"):
        return
    spec = importlib.util.find_spec("opensmile")
    if spec is None or spec.origin is None:
        return
    for library in sorted(pathlib.Path(spec.origin).parent.glob("core/bin/*/libSMILEapi.so")):
        try:
            ctypes.CDLL(str(library), mode=os.RTLD_LOCAL | os.RTLD_DEEPBIND)
            return
        except OSError:  # a build for another platform in the same wheel
            continue


def import_opensmile():
    """Import the ``opensmile`` package safely next to TensorFlow.

    ``import opensmile`` loads libSMILEapi.so at once; after TensorFlow it then
    crashes in ``Smile.process_*`` (see :func:`_preload_smileapi`). Import it
    through this function whenever TensorFlow may already be loaded.

    Returns
    -------
    module
        The ``opensmile`` package.

    Examples
    --------
    >>> opensmile = import_opensmile()
    >>> opensmile.FeatureSet.eGeMAPSv02.name
    'eGeMAPSv02'
    """
    _preload_smileapi()
    try:
        import opensmile
    except ImportError as exc:  # the package is an optional extra (setup.cfg)
        raise ParameterError(
            "openSMILE features need the 'opensmile' package: pip install keras_ser[opensmile]"
        ) from exc
    return opensmile


class _SmileExtractor:
    """What both openSMILE levels share: the checks on the input and on openSMILE's answer."""

    min_duration = MIN_DURATION
    level = None

    def __init__(self, feature_set, sample_rate):
        if feature_set not in FEATURE_SETS:
            raise ParameterError(
                f"unknown openSMILE feature set {feature_set!r}; expected one of {sorted(FEATURE_SETS)}"
            )
        if sample_rate is not None and (isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer))
                                        or sample_rate <= 0):
            raise ParameterError(f"sample_rate must be a positive int or None, got {sample_rate!r}")
        opensmile = import_opensmile()
        self.feature_set = feature_set
        self.sample_rate = sample_rate
        self.set_name = FEATURE_SETS[feature_set][0]
        self._smile = opensmile.Smile(
            feature_set=getattr(opensmile.FeatureSet, self.set_name),
            feature_level=getattr(opensmile.FeatureLevel, self.level),
        )
        self.feature_names = list(self._smile.feature_names)
        self.dimension = len(self.feature_names)

    def _process(self, waveform, sample_rate):
        """openSMILE's frame of ``waveform`` (a ``pandas.DataFrame``), after the input checks."""
        rate = sample_rate or self.sample_rate
        if rate is None:
            raise ParameterError("extract_waveform needs a sample_rate when the extractor has none")
        signal = np.asarray(waveform, dtype=np.float32)
        if signal.ndim != 1 or signal.size == 0:
            raise ParameterError(f"waveform must be a non-empty 1-D array, got shape {signal.shape}")
        if signal.size < int(np.ceil(self.min_duration * rate)):
            raise DataError(
                f"waveform of {signal.size} samples ({1000 * signal.size / rate:.1f} ms) is shorter than the "
                f"{1000 * self.min_duration:.1f} ms that openSMILE {self.feature_set} needs")
        return self._smile.process_signal(signal, int(rate)), signal.size

    def _checked(self, values, samples):
        if values.size == 0:
            raise DataError(f"openSMILE {self.feature_set} {self.level} gave no frame for a waveform of "
                            f"{samples} samples")
        if not np.all(np.isfinite(values)):
            raise DataError(f"openSMILE {self.feature_set} gave {int(np.sum(~np.isfinite(values)))} non-finite "
                            f"values of {values.size} for a waveform of {samples} samples")
        return values

    def extract_file(self, path):
        """Features of the audio file ``path`` (loaded per ``sample_rate``).

        The file is read with :func:`keras_ser.audio.load` (at its own rate when
        ``sample_rate`` is None), so it gets that function's bad-input handling
        (peak normalisation of out-of-range floats included) and this extractor's
        minimum duration; the message of any error names the file.
        """
        import soundfile

        from keras_ser.audio import load

        path = pathlib.Path(path)
        waveform = load(path, sr=self.sample_rate, min_duration=self.min_duration)
        rate = self.sample_rate or soundfile.info(str(path)).samplerate
        try:
            return self.extract_waveform(waveform, rate)
        except DataError as error:
            raise DataError(f"audio file {path}: {error}") from None


class OpenSmileExtractor(_SmileExtractor):
    """Utterance-level openSMILE functionals.

    Parameters
    ----------
    feature_set : {"egemaps", "compare"}
        ``"egemaps"``: eGeMAPSv02 (88 functionals); ``"compare"``: ComParE_2016
        (6373 functionals). zhao2019, Sec. IV-B.
    sample_rate : int or None
        Rate the audio is resampled to before openSMILE sees it (default 16000, the
        rate of every paper in this project). ``None`` processes files at their
        native rate (the values of ``Smile.process_file``).

    Examples
    --------
    >>> ex = OpenSmileExtractor("egemaps")                     # doctest: +SKIP
    >>> ex.extract_file("03a01Fa.wav").shape                   # doctest: +SKIP
    (88,)
    """

    framewise = False
    level = "Functionals"

    def __init__(self, feature_set="egemaps", sample_rate=16000):
        super().__init__(feature_set, sample_rate)
        self.description = f"openSMILE {self.set_name} functionals ({self.dimension})"

    def extract_waveform(self, waveform, sample_rate=None):
        """Functionals of one mono waveform.

        Parameters
        ----------
        waveform : array_like, shape (samples,)
        sample_rate : int, optional
            Rate of ``waveform``; defaults to the extractor's ``sample_rate``.

        Returns
        -------
        numpy.ndarray, shape (dimension,), float32

        Raises
        ------
        DataError
            The waveform is shorter than :data:`MIN_DURATION`, or openSMILE gave
            non-finite values.
        """
        frame, samples = self._process(waveform, sample_rate)
        return self._checked(frame.to_numpy(dtype=np.float32)[0], samples)

    def extract_batch(self, waveforms):
        """Stack :meth:`extract_waveform` over a list of waveforms at ``sample_rate``."""
        return np.stack([self.extract_waveform(w) for w in waveforms]) if waveforms else np.zeros(
            (0, self.dimension), np.float32
        )


class OpenSmileLLDExtractor(_SmileExtractor):
    """Frame-level openSMILE low-level descriptors (``FeatureLevel.LowLevelDescriptors``).

    zhao2019 (Sec. IV-B) "first extracted the eGeMAPS and ComParE low level features
    with the openSMILE toolkit", then reduced ComParE by PCA and applied its own
    functionals; :mod:`keras_ser.svm` does those steps inside each fold
    (``egemaps_lld_stats`` / ``compare_lld_stats``).

    Parameters
    ----------
    feature_set : {"egemaps", "compare"}
        ``"egemaps"``: eGeMAPSv02's 25 LLDs; ``"compare"``: ComParE_2016's 65 LLDs
        (without their deltas: the paper names the low-level features only). One
        row per 10 ms frame.
    sample_rate : int or None
        As for :class:`OpenSmileExtractor`.

    Examples
    --------
    >>> ex = OpenSmileLLDExtractor("compare")                  # doctest: +SKIP
    >>> ex.extract_file("03a01Fa.wav").shape                   # doctest: +SKIP
    (196, 65)
    """

    framewise = True
    level = "LowLevelDescriptors"

    def __init__(self, feature_set="egemaps", sample_rate=16000):
        super().__init__(feature_set, sample_rate)
        self.description = f"openSMILE {self.set_name} low-level descriptors ({self.dimension} per frame)"

    def extract_waveform(self, waveform, sample_rate=None):
        """LLD matrix ``[frames, dimension]`` (float32) of one mono waveform.

        Raises
        ------
        DataError
            The waveform is shorter than :data:`MIN_DURATION`, or openSMILE gave
            no frame or non-finite values.
        """
        frame, samples = self._process(waveform, sample_rate)
        return self._checked(frame.to_numpy(dtype=np.float32), samples)

    def extract_frames(self, waveform):
        """``(frame start times in s, matrix [frames, dimension])`` of one waveform at ``sample_rate``."""
        frame, samples = self._process(waveform, None)
        starts = frame.index.get_level_values("start").total_seconds().to_numpy()
        return starts, self._checked(frame.to_numpy(dtype=np.float32), samples)
