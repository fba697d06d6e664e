"""Folding a batch of segment sequences into one batch of segments, and back.

A model that runs one network on every segment (or frame) of an utterance folds
``[batch, segments, ...]`` into ``[batch * segments, ...]``, applies the network once
and unfolds the result to ``[batch, segments, ...]`` (zhang2021_multicnn's
utterance-level models, tzirakis2021's per-frame CNN).
"""

import keras
from keras import ops

__all__ = ["FoldSegments", "UnfoldSegments"]


@keras.saving.register_keras_serializable(package="keras_ser")
class FoldSegments(keras.layers.Layer):
    """``[batch, segments, *shape] -> [batch * segments, *shape]``, to run a segment model once.

    Examples
    --------
    >>> import numpy as np
    >>> FoldSegments()(np.zeros((2, 3, 5, 1), "float32")).shape
    TensorShape([6, 5, 1])
    """

    def call(self, inputs):
        return ops.reshape(inputs, (-1,) + tuple(inputs.shape[2:]))

    def compute_output_spec(self, inputs):
        batch = None if inputs.shape[0] is None or inputs.shape[1] is None else inputs.shape[0] * inputs.shape[1]
        return keras.KerasTensor((batch,) + tuple(inputs.shape[2:]), dtype=inputs.dtype)


@keras.saving.register_keras_serializable(package="keras_ser")
class UnfoldSegments(keras.layers.Layer):
    """``[folded [batch * segments, *out], original [batch, segments, ...]] -> [batch, segments, *out]``.

    Examples
    --------
    >>> import numpy as np
    >>> UnfoldSegments()([np.zeros((6, 4), "float32"), np.zeros((2, 3, 5), "float32")]).shape
    TensorShape([2, 3, 4])
    """

    def call(self, inputs):
        folded, original = inputs
        shape = ops.shape(original)
        return ops.reshape(folded, (shape[0], shape[1]) + tuple(folded.shape[1:]))

    def compute_output_spec(self, inputs):
        folded, original = inputs
        return keras.KerasTensor(tuple(original.shape[:2]) + tuple(folded.shape[1:]), dtype=folded.dtype)
