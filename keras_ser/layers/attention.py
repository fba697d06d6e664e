"""Attention pooling layers of zhao2019, zhang2021_dcnn and zhao2018.

Two poolings turn a variable-length set of vectors into one vector:

* :class:`AttentionPooling` -- linear score ``f(x) = W^T x``, softmax over time and
  weighted sum: zhao2019 eqs. 5-6, zhao2018 eqs. 1-2, zhang2021_dcnn eqs. 4-5 (there ``mu^T y_i``).
* :class:`ScaledAttentionPooling` -- MLP score ``e_i = u^T tanh(W a_i + b)`` over
  the ``F x T`` grid of ``C``-dimensional FCN outputs, scaled softmax
  ``softmax(lambda * e)`` and weighted sum: zhao2019 eqs. 7-10.

Both are mask-aware: a padded position (mask ``False``) gets exactly zero
weight, so the pooled vector of a padded batch equals that of the unpadded one.
The mask is either Keras' implicit mask (e.g. after ``keras.layers.Masking`` and
an RNN) or passed explicitly as ``layer(x, mask=m)``.  A row whose positions are
all masked pools to the zero vector (instead of NaN).
"""

import math

import keras
from keras import ops

from keras_ser.errors import ParameterError

__all__ = ["AttentionPooling", "ScaledAttentionPooling", "masked_softmax"]


def _large_negative(dtype):
    # A finite stand-in for -inf: -inf would give NaN (inf - inf) in rows
    # whose positions are all masked.
    return -6.0e4 if keras.backend.standardize_dtype(dtype) == "float16" else -1.0e9


def masked_softmax(scores, mask=None):
    """Softmax over the last axis that gives masked positions zero weight.

    Parameters
    ----------
    scores : tensor, shape ``[batch, L]``
        Unnormalised scores.
    mask : tensor of bool, shape ``[batch, L]``, optional
        ``True`` for real positions, ``False`` for padding.

    Returns
    -------
    tensor, shape ``[batch, L]``
        Weights summing to one over the unmasked positions of each row (all zero
        where a row is fully masked).
    """
    if mask is None:
        return ops.softmax(scores, axis=-1)
    mask = ops.cast(mask, "bool")
    filler = ops.full_like(scores, _large_negative(scores.dtype))
    weights = ops.softmax(ops.where(mask, scores, filler), axis=-1)
    return weights * ops.cast(mask, weights.dtype)


def _flatten_mask(mask, grid_inputs):
    """Broadcast a ``[batch, T]`` or ``[batch, *grid]`` mask to ``[batch, L]``."""
    mask = ops.cast(mask, "bool")
    target = ops.shape(grid_inputs)[:-1]
    while len(mask.shape) < len(target):
        mask = ops.expand_dims(mask, -1)
    return ops.reshape(ops.broadcast_to(mask, target), (target[0], -1))


@keras.saving.register_keras_serializable(package="keras_ser")
class AttentionPooling(keras.layers.Layer):
    """Attention pooling with a linear score (zhao2019 eqs. 5-6; zhao2018 eqs. 1-2; zhang2021_dcnn eqs. 4-5).

    For a sequence ``x_1 .. x_T`` of ``d``-dimensional vectors::

        alpha_i = exp(W^T x_i) / sum_j exp(W^T x_j)        (zhao2019 eq. 5)
        attentive_x = sum_i alpha_i x_i                     (zhao2019 eq. 6)

    ``W`` is a trainable ``d``-vector.  The papers' linear score has no bias (a
    bias would cancel in the softmax), so there is none.

    Parameters
    ----------
    return_attention_weights : bool, default False
        If True the layer returns ``(pooled, weights)`` with ``weights`` of shape
        ``[batch, T]``.
    kernel_initializer, kernel_regularizer
        For ``W`` (Keras initializer / regularizer identifiers).
    **kwargs
        Standard ``keras.layers.Layer`` arguments (``name``, ``dtype``...).

    Notes
    -----
    Input ``[batch, T, d]``; output ``[batch, d]``.  Masked steps get zero
    weight; a fully masked row gives a zero vector.

    Examples
    --------
    >>> import numpy as np, keras
    >>> x = keras.Input((None, 8))
    >>> h = keras.layers.LSTM(8, return_sequences=True)(keras.layers.Masking()(x))
    >>> model = keras.Model(x, AttentionPooling()(h))
    >>> model(np.ones((2, 5, 8), "float32")).shape
    TensorShape([2, 8])
    """

    def __init__(
        self,
        return_attention_weights=False,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.return_attention_weights = bool(return_attention_weights)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ParameterError(
                f"{self.name}: AttentionPooling expects [batch, time, features] with a known "
                f"feature size, got shape {tuple(input_shape)}"
            )
        self.kernel = self.add_weight(
            name="kernel",
            shape=(input_shape[-1],),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
        )

    def call(self, inputs, mask=None):
        scores = ops.tensordot(inputs, self.kernel, axes=[[2], [0]])
        weights = masked_softmax(scores, mask)
        pooled = ops.sum(inputs * ops.expand_dims(weights, -1), axis=1)
        if self.return_attention_weights:
            return pooled, weights
        return pooled

    def compute_mask(self, inputs, mask=None):
        return (None, None) if self.return_attention_weights else None

    def compute_output_shape(self, input_shape):
        pooled = (input_shape[0], input_shape[2])
        if self.return_attention_weights:
            return pooled, (input_shape[0], input_shape[1])
        return pooled

    def get_config(self):
        config = super().get_config()
        config.update(
            return_attention_weights=self.return_attention_weights,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer),
        )
        return config


@keras.saving.register_keras_serializable(package="keras_ser")
class ScaledAttentionPooling(keras.layers.Layer):
    """Scaled-softmax attention pooling over an FCN output grid (zhao2019 eqs. 7-10).

    The FCN output of shape ``[batch, d_1, ..., d_k, C]`` (in keras_ser's FCNs
    ``[batch, T, F, C]``) is read as a set of ``L = d_1 * ... * d_k`` annotation
    vectors ``a_i`` in ``R^C`` (eq. 7) and pooled as::

        e_i = u^T tanh(W a_i + b)                           (eq. 8)
        alpha_i = exp(lambda e_i) / sum_k exp(lambda e_k)   (eq. 9)
        c = sum_i alpha_i a_i                               (eq. 10)

    Parameters
    ----------
    units : int, optional
        Size of the MLP projection ``W a_i + b``.  zhao2019 does not state it; the
        default (``None``) uses the channel size ``C``, i.e. a square ``W`` as in
        the attention of its reference [6] (Zhang et al. 2018).
    scale : float, default 0.3
        ``lambda`` of eq. 9, in ``[0, 1]``; zhao2019 sets 0.3 on its validation set.
        ``scale=0`` gives uniform weights (average pooling), ``1`` the plain softmax.
    return_attention_weights : bool, default False
        If True return ``(pooled, weights)`` with ``weights`` of shape ``[batch, L]``
        (grid flattened in row-major order).
    kernel_initializer, bias_initializer, context_initializer
        Initializers of ``W``, ``b`` and ``u``.
    **kwargs
        Standard ``keras.layers.Layer`` arguments.

    Notes
    -----
    The mask may have shape ``[batch, d_1]`` (padding along the time axis,
    broadcast over the rest of the grid) or ``[batch, d_1, ..., d_k]``.

    Examples
    --------
    >>> import numpy as np
    >>> pool = ScaledAttentionPooling(scale=0.3)
    >>> pool(np.ones((2, 5, 4, 16), "float32")).shape
    TensorShape([2, 16])
    """

    def __init__(
        self,
        units=None,
        scale=0.3,
        return_attention_weights=False,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        context_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if units is not None and (not isinstance(units, int) or isinstance(units, bool) or units < 1):
            raise ParameterError(f"ScaledAttentionPooling units must be a positive int or None, got {units!r}")
        if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not 0.0 <= scale <= 1.0:
            raise ParameterError(f"ScaledAttentionPooling scale (lambda, zhao2019 eq. 9) must be in [0, 1], got {scale!r}")
        self.units = units
        self.scale = float(scale)
        self.return_attention_weights = bool(return_attention_weights)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.context_initializer = keras.initializers.get(context_initializer)
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) < 3 or input_shape[-1] is None:
            raise ParameterError(
                f"{self.name}: ScaledAttentionPooling expects [batch, *grid, channels] with a known "
                f"channel size, got shape {tuple(input_shape)}"
            )
        channels = input_shape[-1]
        units = self.units or channels
        self.kernel = self.add_weight(name="kernel", shape=(channels, units), initializer=self.kernel_initializer)
        self.bias = self.add_weight(name="bias", shape=(units,), initializer=self.bias_initializer)
        self.context = self.add_weight(name="context", shape=(units,), initializer=self.context_initializer)

    def call(self, inputs, mask=None):
        channels = inputs.shape[-1]
        annotations = ops.reshape(inputs, (ops.shape(inputs)[0], -1, channels))
        hidden = ops.tanh(ops.matmul(annotations, self.kernel) + self.bias)
        scores = ops.tensordot(hidden, self.context, axes=[[2], [0]]) * self.scale
        if mask is not None:
            mask = _flatten_mask(mask, inputs)
        weights = masked_softmax(scores, mask)
        pooled = ops.sum(annotations * ops.expand_dims(weights, -1), axis=1)
        if self.return_attention_weights:
            return pooled, weights
        return pooled

    def compute_mask(self, inputs, mask=None):
        return (None, None) if self.return_attention_weights else None

    def compute_output_shape(self, input_shape):
        pooled = (input_shape[0], input_shape[-1])
        if self.return_attention_weights:
            grid = input_shape[1:-1]
            length = None if any(d is None for d in grid) else math.prod(grid)
            return pooled, (input_shape[0], length)
        return pooled

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            scale=self.scale,
            return_attention_weights=self.return_attention_weights,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
            context_initializer=keras.initializers.serialize(self.context_initializer),
        )
        return config
