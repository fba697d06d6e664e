"""Channel adaptation for backbones pre-trained on 3-channel images."""

import keras
from keras import ops

from keras_ser.errors import ParameterError

__all__ = ["CycleChannels"]


@keras.saving.register_keras_serializable(package="keras_ser")
class CycleChannels(keras.layers.Layer):
    """Repeat the channels of ``[..., C]`` cyclically up to ``channels`` (e.g. 1 -> 3, 2 -> 3).

    Lets a 1- or 2-channel log-mel image (zhang2021_dcnn Table 1) enter a backbone whose conv1 was
    pre-trained on 3 channels: channel ``i`` of the output is input channel ``i % C``.

    Parameters
    ----------
    channels : int, default 3
        Output channels.

    Examples
    --------
    >>> import numpy as np
    >>> CycleChannels(3)(np.zeros((1, 2, 2, 2), "float32")).shape
    TensorShape([1, 2, 2, 3])
    """

    def __init__(self, channels=3, **kwargs):
        super().__init__(**kwargs)
        if int(channels) != channels or channels < 1:
            raise ParameterError(f"CycleChannels channels must be a positive integer, got {channels!r}")
        self.channels = int(channels)

    def call(self, inputs):
        have = inputs.shape[-1]
        return ops.take(inputs, [i % have for i in range(self.channels)], axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.channels,)

    def get_config(self):
        config = super().get_config()
        config.update(channels=self.channels)
        return config
