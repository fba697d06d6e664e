"""Dimension shuffle of zhao2018 Sec. 3.4 (from LSTM-FCN, Karim et al. 2018, zhao2018 ref. [27]).

zhao2018 feeds the same input to both branches "from two different perspectives":
the FCN branch convolves along time, while the BLSTM branch first swaps the time
and feature axes, so that the recurrence runs along the feature axis and each
step sees the whole time series of one feature (Karim et al.'s "dimension
shuffle", ``Permute((2, 1))`` in their code, where every series is padded to
one fixed length).
"""

import keras
from keras import ops

from keras_ser.errors import ParameterError

__all__ = ["DimensionShuffle"]


@keras.saving.register_keras_serializable(package="keras_ser")
class DimensionShuffle(keras.layers.Layer):
    """Swap the time and feature axes: ``[batch, T, D] -> [batch, D, T]`` (zhao2018 Sec. 3.4).

    After the shuffle the time axis is the feature size of each step, which a
    recurrent layer needs to be fixed.  ``num_frames`` makes it fixed for
    variable-length input: the sequence is cropped to its first ``num_frames``
    frames or zero-padded at the end to ``num_frames`` before the swap (as
    LSTM-FCN pads every series to one length).

    Parameters
    ----------
    num_frames : int, optional
        Fixed number of frames; ``None`` keeps the input's own time size.
    **kwargs
        Standard ``keras.layers.Layer`` arguments.

    Notes
    -----
    The shuffled tensor's sequence axis is the feature axis, so a time mask no
    longer applies to it: the layer drops any incoming mask.  Zero the padded
    frames first (:class:`~keras_ser.layers.ApplyPaddingMask`) so that padded
    and unpadded batches give the same output.

    Examples
    --------
    >>> import numpy as np
    >>> DimensionShuffle()(np.zeros((2, 5, 3), "float32")).shape
    TensorShape([2, 3, 5])
    >>> DimensionShuffle(num_frames=8)(np.zeros((2, 5, 3), "float32")).shape
    TensorShape([2, 3, 8])
    """

    def __init__(self, num_frames=None, **kwargs):
        super().__init__(**kwargs)
        if num_frames is not None and (
            not isinstance(num_frames, int) or isinstance(num_frames, bool) or num_frames < 1
        ):
            raise ParameterError(f"DimensionShuffle num_frames must be a positive int or None, got {num_frames!r}")
        self.num_frames = num_frames

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ParameterError(
                f"{self.name}: DimensionShuffle expects [batch, time, features], got shape {tuple(input_shape)}"
            )

    def call(self, inputs):
        if self.num_frames is not None:
            cropped = inputs[:, : self.num_frames]
            missing = self.num_frames - ops.shape(cropped)[1]
            padded = ops.pad(cropped, [[0, 0], [0, missing], [0, 0]])
            inputs = ops.reshape(padded, (-1, self.num_frames, inputs.shape[-1]))
        return ops.transpose(inputs, (0, 2, 1))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        frames = input_shape[1] if self.num_frames is None else self.num_frames
        return (input_shape[0], input_shape[2], frames)

    def get_config(self):
        config = super().get_config()
        config.update(num_frames=self.num_frames)
        return config
