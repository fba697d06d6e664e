"""openSMILE functionals (eGeMAPS, ComParE) through the ``opensmile`` package.

Paper 000 (Zhao et al. 2019, Sec. IV-B, Table 7) compares its deep-spectrum
representation with the *extended Geneva Minimalistic Acoustic Parameter Set*
(eGeMAPS, 88 functionals) and the *ComParE* 2016 set (6373 functionals), both
extracted with the openSMILE toolkit. This module wraps ``opensmile.Smile`` with the
``Functionals`` level so that the values are exactly those openSMILE computes.

Sampling rate: the corpora of this project are resampled to 16 kHz before any
front end (the EMO-DB copy here is stored at 22.05 kHz; its original is 16 kHz), so
by default the waveform is loaded at 16 kHz with :func:`keras_ser.audio.load` and
handed to ``Smile.process_signal``. ``sample_rate=None`` instead calls
``Smile.process_file`` on the file at its native rate, the call openSMILE users know.
"""

import pathlib

import numpy as np

from keras_ser.errors import DataError, ParameterError

#: Short names accepted everywhere in keras_ser -> (openSMILE feature set, dimension).
FEATURE_SETS = {
    "egemaps": ("eGeMAPSv02", 88),
    "compare": ("ComParE_2016", 6373),
}


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


class OpenSmileExtractor:
    """Utterance-level openSMILE functionals.

    Parameters
    ----------
    feature_set : {"egemaps", "compare"}
        ``"egemaps"``: eGeMAPSv02 (88 functionals); ``"compare"``: ComParE_2016
        (6373 functionals). Paper 000, Sec. IV-B.
    sample_rate : int or None
        Rate the audio is resampled to before openSMILE sees it (default 16000, the
        rate of every paper in this project). ``None`` processes files at their
        native rate via ``Smile.process_file``.

    Examples
    --------
    >>> ex = OpenSmileExtractor("egemaps")                     # doctest: +SKIP
    >>> ex.extract_file("03a01Fa.wav").shape                   # doctest: +SKIP
    (88,)
    """

    framewise = False

    def __init__(self, feature_set="egemaps", sample_rate=16000):
        if feature_set not in FEATURE_SETS:
            raise ParameterError(
                f"unknown openSMILE feature set {feature_set!r}; expected one of {sorted(FEATURE_SETS)}"
            )
        if sample_rate is not None and (not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0):
            raise ParameterError(f"sample_rate must be a positive int or None, got {sample_rate!r}")
        opensmile = import_opensmile()
        self.feature_set = feature_set
        self.sample_rate = sample_rate
        set_name, self.dimension = FEATURE_SETS[feature_set]
        self._smile = opensmile.Smile(
            feature_set=getattr(opensmile.FeatureSet, set_name),
            feature_level=opensmile.FeatureLevel.Functionals,
        )
        self.feature_names = list(self._smile.feature_names)
        self.description = f"openSMILE {set_name} functionals ({self.dimension})"

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
        """
        rate = sample_rate or self.sample_rate
        if rate is None:
            raise ParameterError("extract_waveform needs a sample_rate when the extractor has none")
        signal = np.asarray(waveform, dtype=np.float32)
        if signal.ndim != 1 or signal.size == 0:
            raise ParameterError(f"waveform must be a non-empty 1-D array, got shape {signal.shape}")
        frame = self._smile.process_signal(signal, int(rate))
        return frame.to_numpy(dtype=np.float32)[0]

    def extract_file(self, path):
        """Functionals of the audio file ``path`` (loaded per ``sample_rate``)."""
        path = pathlib.Path(path)
        if self.sample_rate is None:
            if not path.is_file():
                raise DataError(f"audio file not found: {path}")
            try:
                frame = self._smile.process_file(str(path))
            except Exception as exc:  # openSMILE/audiofile raise several unrelated types
                raise DataError(f"openSMILE could not read {path}: {exc}") from exc
            return frame.to_numpy(dtype=np.float32)[0]
        from keras_ser.audio import load

        return self.extract_waveform(load(path, sr=self.sample_rate), self.sample_rate)

    def extract_batch(self, waveforms):
        """Stack :meth:`extract_waveform` over a list of waveforms at ``sample_rate``."""
        return np.stack([self.extract_waveform(w) for w in waveforms]) if waveforms else np.zeros(
            (0, self.dimension), np.float32
        )
