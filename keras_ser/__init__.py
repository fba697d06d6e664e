"""keras_ser: speech emotion recognition in Keras 3 on TensorFlow.

Reimplementations of five published SER systems (see README.md). Submodules are
imported lazily so that ``import keras_ser`` does not pay for TensorFlow.
"""

__version__ = "0.1.0"
