"""Explicit padding masks for variable-length inputs through convolutional branches.

keras_ser's padding convention: a batch of variable-length feature sequences
``[batch, T, ...]`` is right-padded along time with frames whose every value
equals ``pad_value`` (default ``0.0``, the value ``keras.layers.Masking`` uses).
:class:`PaddingMask` turns such a batch into a boolean ``[batch, T]`` mask.

Keras' implicit masks do not pass through convolutions, so the FCN branches
carry the mask as an explicit tensor next to the activations:

* :class:`ApplyPaddingMask` zeroes padded frames, which makes a ``"same"``
  convolution see exactly the zeros it would pad an unpadded input with;
* :class:`MaskedMaxPooling2D` pools the activations and the mask together (a
  pooled frame is real only if its whole window was real, matching what
  ``"valid"`` pooling keeps of the unpadded input);
* :class:`MaskedGlobalPooling` averages / maxes over real positions only.

With these, an FCN's output at real frames is the same whether or not the batch
was padded (in inference mode; batch normalisation's training-mode statistics
do see the padded frames).
"""

import keras
from keras import ops

from keras_ser.errors import ParameterError
from keras_ser.layers.attention import _large_negative

__all__ = ["ApplyPaddingMask", "MaskedGlobalPooling", "MaskedMaxPooling2D", "PaddingMask"]


def _time_mask(mask, like):
    """``[batch, T]`` mask as a float tensor broadcastable against ``like``."""
    mask = ops.cast(mask, like.dtype)
    while len(mask.shape) < len(like.shape):
        mask = ops.expand_dims(mask, -1)
    return mask


def _positive_int_pair(value, what):
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in pair):
        raise ParameterError(f"{what} must be a positive int or a pair of them, got {value!r}")
    return pair


@keras.saving.register_keras_serializable(package="keras_ser")
class PaddingMask(keras.layers.Layer):
    """Boolean ``[batch, T]`` mask of the real (non-padding) frames of ``[batch, T, ...]``.

    Parameters
    ----------
    pad_value : float or None, default 0.0
        A frame is padding if all its values equal ``pad_value`` (the rule of
        ``keras.layers.Masking``).  ``None`` marks every frame real.
    **kwargs
        Standard ``keras.layers.Layer`` arguments.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[1.0, 2.0], [0.0, 0.0]]], "float32")
    >>> np.asarray(PaddingMask()(x)).tolist()
    [[True, False]]
    """

    def __init__(self, pad_value=0.0, **kwargs):
        super().__init__(**kwargs)
        if pad_value is not None and not isinstance(pad_value, (int, float)):
            raise ParameterError(f"PaddingMask pad_value must be a number or None, got {pad_value!r}")
        self.pad_value = None if pad_value is None else float(pad_value)

    def call(self, inputs):
        if self.pad_value is None:
            return ops.ones(ops.shape(inputs)[:2], dtype="bool")
        differs = ops.not_equal(inputs, ops.cast(self.pad_value, inputs.dtype))
        return ops.any(differs, axis=tuple(range(2, len(inputs.shape))))

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs.shape[:2], dtype="bool")

    def get_config(self):
        config = super().get_config()
        config.update(pad_value=self.pad_value)
        return config


@keras.saving.register_keras_serializable(package="keras_ser")
class ApplyPaddingMask(keras.layers.Layer):
    """``[x, mask] -> x`` with padded frames (mask ``False`` along axis 1) set to zero.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.ones((1, 2, 3), "float32")
    >>> np.asarray(ApplyPaddingMask()([x, np.array([[True, False]])]))[0, :, 0].tolist()
    [1.0, 0.0]
    """

    def call(self, inputs):
        x, mask = inputs
        return x * _time_mask(mask, x)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs[0].shape, dtype=inputs[0].dtype)


@keras.saving.register_keras_serializable(package="keras_ser")
class MaskedMaxPooling2D(keras.layers.Layer):
    """``[x, mask] -> [pooled x, pooled mask]``: max pooling of ``[batch, T, F, C]`` with a time mask.

    Pooling is non-overlapping (``strides = pool_size``, ``"valid"``).  A pooled
    frame is real only if all ``pool_size[0]`` frames under it were real; pooled
    padded frames are set to zero.

    Parameters
    ----------
    pool_size : int or (int, int), default (2, 2)
        Pool size along (time, frequency).
    **kwargs
        Standard ``keras.layers.Layer`` arguments.

    Examples
    --------
    >>> import numpy as np
    >>> x, mask = np.ones((1, 5, 4, 2), "float32"), np.array([[True] * 3 + [False] * 2])
    >>> pooled, pooled_mask = MaskedMaxPooling2D(2)([x, mask])
    >>> pooled.shape, np.asarray(pooled_mask).tolist()
    (TensorShape([1, 2, 2, 2]), [[True, False]])
    """

    def __init__(self, pool_size=(2, 2), **kwargs):
        super().__init__(**kwargs)
        self.pool_size = _positive_int_pair(pool_size, "MaskedMaxPooling2D pool_size")

    def call(self, inputs):
        x, mask = inputs
        pooled = ops.max_pool(x, self.pool_size, strides=self.pool_size, padding="valid")
        # Min-pooling of the mask = "every frame in the window is real".
        padding = 1.0 - ops.cast(ops.expand_dims(mask, -1), x.dtype)
        padded_frames = ops.max_pool(padding, self.pool_size[0], strides=self.pool_size[0], padding="valid")
        pooled_mask = ops.squeeze(padded_frames, -1) < 0.5
        return [pooled * _time_mask(pooled_mask, pooled), pooled_mask]

    def compute_output_spec(self, inputs):
        x, mask = inputs
        t = None if x.shape[1] is None else x.shape[1] // self.pool_size[0]
        f = None if x.shape[2] is None else x.shape[2] // self.pool_size[1]
        return [
            keras.KerasTensor((x.shape[0], t, f, x.shape[3]), dtype=x.dtype),
            keras.KerasTensor((x.shape[0], t), dtype="bool"),
        ]

    def get_config(self):
        config = super().get_config()
        config.update(pool_size=self.pool_size)
        return config


@keras.saving.register_keras_serializable(package="keras_ser")
class MaskedGlobalPooling(keras.layers.Layer):
    """``[x, mask] -> [batch, C]``: global average or max over the real positions of ``[batch, T, ..., C]``.

    Parameters
    ----------
    mode : {"average", "max"}, default "average"
        Pooling statistic.  A fully padded row pools to zeros.
    **kwargs
        Standard ``keras.layers.Layer`` arguments.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[1.0], [3.0], [100.0]]], "float32")
    >>> np.asarray(MaskedGlobalPooling("average")([x, np.array([[True, True, False]])])).tolist()
    [[2.0]]
    """

    def __init__(self, mode="average", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("average", "max"):
            raise ParameterError(f"MaskedGlobalPooling mode must be 'average' or 'max', got {mode!r}")
        self.mode = mode
        # Accepts an input carrying Keras' implicit mask (e.g. an RNN output)
        # without a warning; the explicit mask is what counts.
        self.supports_masking = True

    def call(self, inputs):
        x, mask = inputs
        weights = ops.broadcast_to(_time_mask(mask, x), ops.shape(x))
        axes = tuple(range(1, len(x.shape) - 1))
        count = ops.sum(weights, axis=axes)
        if self.mode == "average":
            return ops.sum(x * weights, axis=axes) / ops.maximum(count, 1.0)
        lowest = ops.full_like(x, _large_negative(x.dtype))
        highest = ops.max(ops.where(weights > 0, x, lowest), axis=axes)
        return ops.where(count > 0, highest, ops.zeros_like(highest))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_spec(self, inputs):
        x = inputs[0]
        return keras.KerasTensor((x.shape[0], x.shape[-1]), dtype=x.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(mode=self.mode)
        return config
