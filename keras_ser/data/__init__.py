"""Corpora and speaker-independent splits.

Importable without TensorFlow: only the EMO-DB download imports Keras. One reader module
per corpus, ``records`` (the utterance record), ``splits`` (LOSO and the other protocols),
``corpora`` (the reader registry) and ``cross_corpus``. Imports: NumPy, soundfile,
:mod:`keras_ser.errors` and :mod:`keras_ser.paths` only.

Examples
--------
>>> from keras_ser.data import load_corpus, label_names, class_weights
>>> from keras_ser.data.splits import make_folds
>>> utts = load_corpus("emodb")  # doctest: +SKIP
>>> folds = make_folds("loso", utts)  # doctest: +SKIP
>>> weights = class_weights([u.label for u in folds[0].train], label_names("emodb"))  # doctest: +SKIP
"""

from keras_ser.data.fau_aibo import TABLE4_CLASS_WEIGHTS as FAU_AIBO_CLASS_WEIGHTS
from keras_ser.data.corpora import available_corpora, class_weights, label_names, load_corpus
from keras_ser.data.records import Utterance, clip_words
from keras_ser.data.splits import Fold, make_folds

__all__ = [
    "Utterance",
    "clip_words",
    "load_corpus",
    "label_names",
    "available_corpora",
    "class_weights",
    "FAU_AIBO_CLASS_WEIGHTS",
    "Fold",
    "make_folds",
]
