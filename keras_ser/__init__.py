"""keras_ser: speech emotion recognition in Keras 3 on TensorFlow.

Reimplementations of five published SER systems (see README.md). Submodules are
imported lazily so that ``import keras_ser`` does not pay for TensorFlow. Its Keras
custom objects (layers, the front end, the CCC metric and loss) are registered the
moment Keras is imported, before or after ``import keras_ser``
(:mod:`keras_ser._custom_objects`), so that ``keras.models.load_model`` reads any
keras_ser ``.keras`` file once ``keras_ser`` is imported.
"""

__version__ = "0.1.0"

from keras_ser import _custom_objects  # noqa: E402  (after __version__, which setup.cfg reads)

_custom_objects.install()
