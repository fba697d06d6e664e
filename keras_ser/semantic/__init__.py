"""The semantic feature extractor of tzirakis2021 (Sec. 3.1), outside the network.

- :mod:`keras_ser.semantic.word2vec`: skip-gram Word2Vec on the training speakers'
  transcripts (gensim).
- :mod:`keras_ser.semantic.alignment`: the unsupervised map of a speech embedding
  space onto the text space (eqs. 1-3): adversarial training, then Procrustes
  refinement with CSLS, and the retrieval precision that checks it.

The network that consumes the aligned vectors is :mod:`keras_ser.models.semantic`.
Importing this package needs neither gensim nor TensorFlow; the functions that use
them import them when called.
"""

from keras_ser.semantic.alignment import align, evaluate_alignment, map_vectors, normalize
from keras_ser.semantic.word2vec import (
    DEFAULT_DIM,
    load_word2vec,
    read_sentences,
    tokenize,
    train_word2vec,
    training_sentences,
)

__all__ = [
    "DEFAULT_DIM",
    "align",
    "evaluate_alignment",
    "load_word2vec",
    "map_vectors",
    "normalize",
    "read_sentences",
    "tokenize",
    "train_word2vec",
    "training_sentences",
]
