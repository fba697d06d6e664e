"""The TensorFlow front end: waveforms to the model inputs of the papers.

What lives here:

- :mod:`~keras_ser.frontend.ops`: functional NumPy / TensorFlow ops (mel filterbank,
  power STFT, log-mel, deltas, segments, padding, pre-emphasis), librosa-checked;
- :mod:`~keras_ser.frontend.presets`: the per-paper settings as data (:data:`PRESETS`,
  :data:`~keras_ser.frontend.presets.TABLE`: name, output, settings, citation);
- :mod:`~keras_ser.frontend.standardize`: per-utterance, training-set and per-speaker
  standardisation (:func:`feature_statistics`, :func:`with_speaker_statistics`);
- :mod:`~keras_ser.frontend.layers`: the Keras layers :class:`FrontEnd`, :class:`LogMel`,
  :class:`Deltas`, :class:`ResizeImages` (registered custom objects ``keras_ser>FrontEnd`` ...);
- :mod:`~keras_ser.frontend.dataset`: the tf.data pipeline (:func:`make_dataset` from audio,
  :func:`array_dataset` from front-end outputs held in memory, which training uses).

Imports: ``presets`` <- ``layers``; ``ops``, ``standardize`` <- ``layers`` <- ``dataset``.
The package may import :mod:`keras_ser.errors` and :mod:`keras_ser.audio`, NumPy,
TensorFlow, Keras and soundfile; never :mod:`keras_ser.data`, ``experiments``,
``extraction`` or ``models``, which build on it (a test checks this).

Examples
--------
>>> from keras_ser.frontend import FrontEnd
>>> FrontEnd("zhao2019")(tf.zeros([1, 32000])).shape  # doctest: +SKIP
TensorShape([1, 500, 40])
"""

from keras_ser.frontend.dataset import array_dataset, label_indices, make_dataset, pool_by_id
from keras_ser.frontend.layers import Deltas, FrontEnd, LogMel, ResizeImages
from keras_ser.frontend.ops import (deltas, fix_length, hz_to_mel, log_mel, mel_filterbank, mel_to_hz, num_frames,
                                    pad_to_min, power_spectrogram, power_to_db, resize_images, segment, stack_segments)
from keras_ser.frontend.presets import PRESETS
from keras_ser.frontend.standardize import feature_statistics, standardize_utterance, with_speaker_statistics

__all__ = [
    "Deltas", "FrontEnd", "LogMel", "PRESETS", "ResizeImages", "array_dataset", "deltas", "feature_statistics",
    "fix_length", "hz_to_mel", "label_indices", "log_mel", "make_dataset", "mel_filterbank", "mel_to_hz", "num_frames",
    "pad_to_min", "pool_by_id", "power_spectrogram", "power_to_db", "resize_images", "segment", "stack_segments",
    "standardize_utterance", "with_speaker_statistics",
]
