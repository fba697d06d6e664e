"""Dimension shuffle of 004 Sec. 3.4 (from LSTM-FCN, Karim et al. 2018, 004 ref. [27]).

004 feeds the same input to both branches "from two different perspectives":
the FCN branch convolves along time, while the BLSTM branch first swaps the time
and feature axes, so that the recurrence runs along the feature axis and each
step sees the whole time series of one feature (Karim et al.'s "dimension
shuffle", ``Permute((2, 1))`` in their code).
"""

import keras
from keras import ops

from keras_ser.errors import ParameterError

__all__ = ["DimensionShuffle"]


@keras.saving.register_keras_serializable(package="keras_ser")
class DimensionShuffle(keras.layers.Layer):
    """Swap the time and feature axes: ``[batch, T, D] -> [batch, D, T]`` (004 Sec. 3.4).

    The shuffled tensor's sequence axis is the feature axis, so a time mask no
    longer applies to it: the layer drops any incoming mask.  The time size must
    be known for a layer after it (e.g. an LSTM, whose input size becomes ``T``).

    Examples
    --------
    >>> import numpy as np
    >>> DimensionShuffle()(np.zeros((2, 5, 3), "float32")).shape
    TensorShape([2, 3, 5])
    """

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ParameterError(
                f"{self.name}: DimensionShuffle expects [batch, time, features], got shape {tuple(input_shape)}"
            )

    def call(self, inputs):
        return ops.transpose(inputs, (0, 2, 1))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2], input_shape[1])
