"""Fixed feature representations of utterances: openSMILE, log-Mel, deep spectrum, embeddings.

The features zhao2019 (Sec. IV-B, Table 7, Figs. 3-4) feeds to its linear SVM and
zhang2021_multicnn fuses (Table 7). What lives here:

- extractors, one per feature family, each with ``sample_rate``, ``feature_names``,
  ``dimension``, ``description`` and ``extract_batch(waveforms) -> [n, d]``:
  :mod:`~keras_ser.extraction.opensmile` (eGeMAPS / ComParE functionals and LLDs),
  :mod:`~keras_ser.extraction.logmel` (log-Mel statistics or frames),
  :mod:`~keras_ser.extraction.deep_spectrum` (ImageNet-CNN fc7 of spectrogram images),
  :mod:`~keras_ser.extraction.embeddings` (the ``"embedding"`` layer of a trained model);
- :mod:`~keras_ser.extraction.registry`: extractors by name (:func:`get_extractor`);
- :mod:`~keras_ser.extraction.inputs`: the files to extract from (:func:`resolve_inputs`);
- :mod:`~keras_ser.extraction.run`: an extractor over files, windows or frames (:func:`extract`);
- :mod:`~keras_ser.extraction.table`: the result and its CSV / ARFF / NPZ files (:class:`FeatureTable`);
- :mod:`~keras_ser.extraction.cache`: features cached on disk per audio file (:class:`FeatureCache`);
- :mod:`~keras_ser.extraction.lld_statistics`: zhao2019's LLD functionals with a PCA
  fitted per fold (:func:`lld_feature_matrix`);
- :mod:`~keras_ser.extraction.sklearn`: every extractor as a scikit-learn transformer
  (imported on its own: ``from keras_ser.extraction.sklearn import DeepSpectrum``).

``python -m keras_ser.extract`` (:mod:`keras_ser.extract`) is the command line over it, and
:mod:`keras_ser.svm` classifies its features.

Imports: the package may import :mod:`keras_ser.errors`, :mod:`keras_ser.audio`,
:mod:`keras_ser.data`, :mod:`keras_ser.frontend`, :mod:`keras_ser.models` (backbones,
saved models) and :mod:`keras_ser.experiments.run_dir` (model directories, atomic
writes); not the rest of :mod:`keras_ser.experiments`. Importing it loads neither
TensorFlow nor openSMILE: the extractors load them when built.
"""

from keras_ser.extraction.inputs import AUDIO_SUFFIXES, Item, resolve_inputs
from keras_ser.extraction.logmel import LogMelExtractor
from keras_ser.extraction.registry import FEATURES, get_extractor, minimum_duration
from keras_ser.extraction.run import extract, extract_utterance_features, segment_starts
from keras_ser.extraction.table import OUTPUT_FORMATS, FeatureTable

__all__ = [
    "AUDIO_SUFFIXES", "FEATURES", "OUTPUT_FORMATS", "FeatureTable", "Item", "LogMelExtractor", "extract",
    "extract_utterance_features", "get_extractor", "minimum_duration", "resolve_inputs", "segment_starts",
]
