"""The semantic feature extractor of tzirakis2021 (Sec. 3.1), outside the network.

- :mod:`keras_ser.semantic.word2vec`: skip-gram Word2Vec on the training speakers'
  transcripts (gensim).
- :mod:`keras_ser.semantic.speech2vec`: skip-gram Speech2Vec (Chung and Glass,
  Interspeech 2018, tzirakis2021's reference [14]) in Keras: word vectors learned from
  the MFCCs of word segments.
- :mod:`keras_ser.semantic.alignment`: the unsupervised map of a speech embedding
  space onto the text space (eqs. 1-3): adversarial training, then Procrustes
  refinement with CSLS, and the retrieval precision that checks it.
- :mod:`keras_ser.semantic.frames`: at inference, from speech alone, the aligned
  Speech2Vec vectors of the words spread over tzirakis2021's 0.1 s frames.
- :mod:`keras_ser.semantic.pipeline`: all of it per fold: :func:`fit_semantic` on the
  training speakers, then per-utterance frames from speech and word times
  (``pipeline.semantic_frames``, or :meth:`SemanticFeatures.frames`; the package-level
  ``semantic_frames`` is the per-waveform one of ``frames``), saved and loaded per fold.

The network that consumes the aligned vectors is :mod:`keras_ser.models.semantic`.
Importing this package needs neither gensim nor TensorFlow; the functions that use
them import them when called, and the Speech2Vec
and pipeline names (which need Keras) are imported on first access.
"""

from keras_ser.semantic.alignment import align, evaluate_alignment, map_vectors, normalize
from keras_ser.semantic.frames import frame_words, num_frames_for, semantic_frames, spread_vectors
from keras_ser.semantic.word2vec import (
    DEFAULT_DIM,
    load_word2vec,
    read_sentences,
    tokenize,
    train_word2vec,
    training_sentences,
)

#: Names of :mod:`keras_ser.semantic.speech2vec`, imported (with Keras and TensorFlow) on first use.
_SPEECH2VEC = ("Speech2Vec", "WordSegment", "mfcc", "segment_waveform", "speech2vec_model", "skipgram_loss",
               "train_speech2vec", "word_segments")


#: Names of :mod:`keras_ser.semantic.pipeline`, imported (with Keras and TensorFlow) on first use.
_PIPELINE = ("SemanticFeatures", "fit_semantic", "fold_semantic_frames", "load_semantic")


def __getattr__(name):
    if name in _SPEECH2VEC:
        from keras_ser.semantic import speech2vec

        return getattr(speech2vec, name)
    if name in _PIPELINE:
        from keras_ser.semantic import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'keras_ser.semantic' has no attribute {name!r}")


__all__ = [
    "DEFAULT_DIM",
    "align",
    "evaluate_alignment",
    "frame_words",
    "load_word2vec",
    "map_vectors",
    "normalize",
    "num_frames_for",
    "read_sentences",
    "semantic_frames",
    "spread_vectors",
    "tokenize",
    "train_word2vec",
    "training_sentences",
    *_SPEECH2VEC,
    *_PIPELINE,
]
