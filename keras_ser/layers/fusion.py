"""Fusion of semantic and paralinguistic feature vectors (tzirakis2021 Sec. 3.3, eqs. 4-7).

Plain concatenation (``x_fusion = [x_s, x_p]``) is ``keras.layers.Concatenate``; this
module holds the attention fusions:

* :class:`ScaledDotAttentionFusion`: eq. 5, ``Attention(x_1, ..., x_n) = sum_i alpha_i x_i``
  with ``alpha = softmax_i(x_i . q / sqrt(d_u))`` and a learnable ``q``;
* :class:`DisentangledAttentionFusion`: eqs. 4-7, projections to ``d_u`` (eq. 4), a first
  attention (eq. 5), three linear FC projections ``a``, ``v``, ``l`` (eq. 6), then
  ``z = Attention(a, l)`` and ``x_fusion = Attention(z, v)`` (eq. 7).

Both work per time step on ``[batch, T, d]`` (or ``[batch, d]``) inputs and pass the
Keras mask of their inputs on, so an LSTM after them skips padded frames.
"""

import math

import keras
from keras import ops

from keras_ser.errors import ParameterError

__all__ = ["DisentangledAttentionFusion", "ScaledDotAttentionFusion"]


def _combined_mask(mask):
    if mask is None:
        return None
    if not isinstance(mask, (list, tuple)):
        return mask
    masks = [m for m in mask if m is not None]
    if not masks:
        return None
    combined = masks[0]
    for m in masks[1:]:
        combined = ops.logical_and(combined, m)
    return combined


@keras.saving.register_keras_serializable(package="keras_ser")
class ScaledDotAttentionFusion(keras.layers.Layer):
    """Attention over a list of same-size feature vectors (tzirakis2021 eq. 5).

    ``alpha_i = softmax_i(x_i . q / sqrt(d))`` over the inputs ``i`` and the output is
    ``sum_i alpha_i x_i``. One learnable ``q`` (``q in R^{d_u}``, Sec. 3.3) scores all
    inputs, as in the authors' public code (a 1 x d convolution over the stacked inputs);
    its bias there cancels in the softmax and is omitted.

    Parameters
    ----------
    return_attention_weights : bool, default False
        Also return the weights ``[..., n_inputs]``.
    query_initializer : initializer, default "glorot_uniform"
    **kwargs
        Standard layer arguments.

    Examples
    --------
    >>> import numpy as np
    >>> a, b = np.ones((2, 5, 8), "float32"), np.zeros((2, 5, 8), "float32")
    >>> ScaledDotAttentionFusion()([a, b]).shape
    TensorShape([2, 5, 8])
    """

    def __init__(self, return_attention_weights=False, query_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.return_attention_weights = bool(return_attention_weights)
        self.query_initializer = keras.initializers.get(query_initializer)
        self.supports_masking = True

    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) < 2 or not isinstance(
            input_shape[0], (list, tuple)
        ):
            raise ParameterError(f"{self.name}: needs a list of at least two inputs, got {input_shape}")
        dims = {tuple(shape)[-1] for shape in input_shape}
        if len(dims) != 1 or None in dims:
            raise ParameterError(f"{self.name}: inputs must share a known last dimension, got {input_shape}")
        self.units = dims.pop()
        self.query = self.add_weight(name="query", shape=(self.units,), initializer=self.query_initializer)

    def call(self, inputs):
        stacked = ops.stack(list(inputs), axis=-2)  # [..., n, d]
        scores = ops.tensordot(stacked, self.query, axes=[[len(stacked.shape) - 1], [0]])
        weights = ops.softmax(scores / math.sqrt(self.units), axis=-1)
        fused = ops.sum(stacked * ops.expand_dims(weights, -1), axis=-2)
        if self.return_attention_weights:
            return fused, weights
        return fused

    def compute_mask(self, inputs, mask=None):
        combined = _combined_mask(mask)
        return (combined, combined) if self.return_attention_weights else combined

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape[0])
        if self.return_attention_weights:
            return shape, shape[:-1] + (len(input_shape),)
        return shape

    def get_config(self):
        config = super().get_config()
        config.update(
            return_attention_weights=self.return_attention_weights,
            query_initializer=keras.initializers.serialize(self.query_initializer),
        )
        return config


@keras.saving.register_keras_serializable(package="keras_ser")
class DisentangledAttentionFusion(keras.layers.Layer):
    """'Disentangled' attention fusion of semantic and paralinguistic features (tzirakis2021 eqs. 4-7).

    For inputs ``[x_s, x_p]``::

        x~_s = W_s x_s + b_s,  x~_p = W_p x_p + b_p                (eq. 4, to d_u)
        x~_sp = Attention(x~_s, x~_p)                              (eq. 5)
        a = W_a x~_sp + b_a,  v = W_v x~_sp + b_v,  l = W_l x~_sp + b_l   (eq. 6)
        z = Attention(a, l),  x_fusion = Attention(z, v)           (eq. 7)

    Each ``Attention`` is a :class:`ScaledDotAttentionFusion` with its own ``q``.

    Parameters
    ----------
    units : int, default 1024
        ``d_u``. The paper does not give it; the authors' code uses 1024.
    branch_units : int, optional
        Width of ``a``, ``v``, ``l``; ``d_u`` by default (eq. 6: ``W in R^{d_u x d_u}``).
        The authors' code uses 512.
    projection_activation, branch_activation : activation, optional
        Activation of eq. 4 and eq. 6. The paper says the FC layers of eq. 6 are linear
        (default ``None``); the authors' code uses ReLU for both (``fully_connected``'s
        default), which ``"relu"`` reproduces.
    **kwargs
        Standard layer arguments.

    Examples
    --------
    >>> import numpy as np
    >>> fusion = DisentangledAttentionFusion(units=16)
    >>> fusion([np.ones((2, 7, 30), "float32"), np.ones((2, 7, 50), "float32")]).shape
    TensorShape([2, 7, 16])
    """

    def __init__(self, units=1024, branch_units=None, projection_activation=None, branch_activation=None, **kwargs):
        super().__init__(**kwargs)
        if int(units) != units or units < 1:
            raise ParameterError(f"{self.name}: units (d_u) must be a positive integer, got {units!r}")
        if branch_units is not None and (int(branch_units) != branch_units or branch_units < 1):
            raise ParameterError(f"{self.name}: branch_units must be a positive integer, got {branch_units!r}")
        self.units = int(units)
        self.branch_units = self.units if branch_units is None else int(branch_units)
        self.projection_activation = keras.activations.get(projection_activation)
        self.branch_activation = keras.activations.get(branch_activation)
        self.supports_masking = True
        # Sub-layers take this layer's dtype policy (float32 under a mixed policy, see
        # keras_ser.experiments.precision), not the global one at construction time.
        policy = self.dtype_policy
        self.semantic_projection = keras.layers.Dense(self.units, self.projection_activation,
                                                      name="semantic_projection", dtype=policy)
        self.paralinguistic_projection = keras.layers.Dense(
            self.units, self.projection_activation, name="paralinguistic_projection", dtype=policy
        )
        self.modality_attention = ScaledDotAttentionFusion(name="modality_attention", dtype=policy)
        self.arousal_branch = keras.layers.Dense(self.branch_units, self.branch_activation, name="arousal_branch",
                                                 dtype=policy)
        self.valence_branch = keras.layers.Dense(self.branch_units, self.branch_activation, name="valence_branch",
                                                 dtype=policy)
        self.liking_branch = keras.layers.Dense(self.branch_units, self.branch_activation, name="liking_branch",
                                                dtype=policy)
        self.arousal_liking_attention = ScaledDotAttentionFusion(name="arousal_liking_attention", dtype=policy)
        self.valence_attention = ScaledDotAttentionFusion(name="valence_attention", dtype=policy)

    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2:
            raise ParameterError(f"{self.name}: expects [semantic, paralinguistic] inputs, got {input_shape}")
        semantic_shape, paralinguistic_shape = (tuple(s) for s in input_shape)
        self.semantic_projection.build(semantic_shape)
        self.paralinguistic_projection.build(paralinguistic_shape)
        projected = semantic_shape[:-1] + (self.units,)
        self.modality_attention.build([projected, projected])
        for branch in (self.arousal_branch, self.valence_branch, self.liking_branch):
            branch.build(projected)
        branched = semantic_shape[:-1] + (self.branch_units,)
        self.arousal_liking_attention.build([branched, branched])
        self.valence_attention.build([branched, branched])

    def call(self, inputs):
        semantic, paralinguistic = inputs
        fused = self.modality_attention(
            [self.semantic_projection(semantic), self.paralinguistic_projection(paralinguistic)]
        )
        arousal = self.arousal_branch(fused)
        valence = self.valence_branch(fused)
        liking = self.liking_branch(fused)
        z = self.arousal_liking_attention([arousal, liking])
        return self.valence_attention([z, valence])

    def compute_mask(self, inputs, mask=None):
        return _combined_mask(mask)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])[:-1] + (self.branch_units,)

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            branch_units=self.branch_units,
            projection_activation=keras.activations.serialize(self.projection_activation),
            branch_activation=keras.activations.serialize(self.branch_activation),
        )
        return config
