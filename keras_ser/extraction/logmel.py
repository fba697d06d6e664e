"""Log-Mel statistics or frames of zhao2019's front end as an extractor (``--features logmel``).

Imports NumPy, :mod:`keras_ser.audio` and :mod:`keras_ser.errors`; TensorFlow and
:mod:`keras_ser.frontend` are imported on the first waveform.
"""

import numpy as np

from keras_ser.audio import MIN_DURATION
from keras_ser.errors import DataError, ParameterError


class LogMelExtractor:
    """Log-Mel features of zhao2019's front end (40 bands, 25 ms / 10 ms, Sec. IV-B).

    Parameters
    ----------
    pooling : {"mean_std", "none"}
        ``"mean_std"``: per-band mean and standard deviation over time (2 x n_mels
        values per utterance); ``"none"``: one row per 10 ms frame.
    sample_rate : int
    **log_mel_options
        Passed to :func:`keras_ser.frontend.log_mel` (``n_mels``, ``fmin``, ...).

    Examples
    --------
    >>> ex = LogMelExtractor()                                   # doctest: +SKIP
    >>> ex.extract_batch([np.random.randn(32000)]).shape          # doctest: +SKIP
    (1, 80)
    """

    def __init__(self, pooling="mean_std", sample_rate=16000, **log_mel_options):
        if pooling not in ("mean_std", "none"):
            raise ParameterError(f"logmel pooling must be 'mean_std' or 'none', got {pooling!r}")
        self.pooling = pooling
        self.framewise = pooling == "none"
        self.sample_rate = sample_rate
        self.options = dict(log_mel_options)
        self.n_mels = int(self.options.get("n_mels", 40))
        self.options["n_mels"] = self.n_mels
        self.hop_seconds = float(self.options.get("hop_length", 0.010))
        self.min_duration = max(float(self.options.get("win_length", 0.025)), MIN_DURATION)
        bands = [f"logmel_{i}" for i in range(self.n_mels)]
        self.feature_names = bands if self.framewise else [f"{b}_mean" for b in bands] + [f"{b}_std" for b in bands]
        self.dimension = len(self.feature_names)
        self.description = f"log-Mel {self.n_mels} bands ({'framewise' if self.framewise else 'mean, std'})"

    def __getstate__(self):
        # The traced graph is a cache rebuilt on the next call, and tf.function objects do not pickle.
        state = dict(self.__dict__)
        state.pop("_graph", None)
        return state

    def frames(self, waveform):
        """Log-Mel matrix ``[frames, n_mels]`` of one waveform (at least one analysis window long)."""
        shortest = int(np.ceil(self.min_duration * self.sample_rate))
        if len(waveform) < shortest:
            raise DataError(f"waveform of {len(waveform)} samples is shorter than one "
                            f"{1000 * self.min_duration:.1f} ms analysis window ({shortest} samples at "
                            f"{self.sample_rate} Hz)")
        if getattr(self, "_graph", None) is None:
            import tensorflow as tf

            from keras_ser.frontend import log_mel

            # One traced graph for every length: eager calls per file cost more than the maths.
            self._graph = tf.function(
                lambda signal: log_mel(signal, sample_rate=self.sample_rate, **self.options),
                input_signature=[tf.TensorSpec([1, None], tf.float32)],
            )
        return self._graph(np.asarray(waveform, np.float32)[None]).numpy()[0]

    def extract_frames(self, waveform):
        """``(times in s, matrix [frames, n_mels])`` of one waveform (``pooling="none"``)."""
        matrix = self.frames(waveform)
        return np.arange(len(matrix)) * self.hop_seconds, matrix

    def extract_batch(self, waveforms):
        """Pooled statistics ``[n, 2 * n_mels]`` (``pooling="mean_std"``)."""
        rows = []
        for wave in waveforms:
            matrix = self.frames(wave)
            rows.append(np.concatenate([matrix.mean(axis=0), matrix.std(axis=0)]))
        return np.asarray(rows, np.float32).reshape(len(rows), self.dimension)
