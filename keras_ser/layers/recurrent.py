"""Bidirectional LSTM whose output is built from hidden or cell states (zhao2019 eqs. 3-4).

zhao2019 Sec. III-B-1 defines the output of a BLSTM layer from the forward and
backward hidden states::

    y_t = W_fy h_fwd_t + W_by h_bwd_t + b_y                 (eq. 3)

and notes that the cell states may be used instead::

    y_t = W_fy c_fwd_t + W_by c_bwd_t + b_y                 (eq. 4)

:class:`BLSTM` implements both (``states="hidden" | "cell"``); the linear map
``W, b`` is a :class:`keras.layers.Dense` on ``[fwd; bwd]`` (the same thing
written with one matrix).  :class:`CellStateLSTMCell` is the LSTM cell whose
per-step output is the cell state ``c_t`` instead of ``h_t``.
"""

import keras
from keras import ops

from keras_ser.errors import ParameterError

__all__ = ["BLSTM", "CellStateLSTMCell"]

_STATES = ("hidden", "cell")


@keras.saving.register_keras_serializable(package="keras_ser")
class CellStateLSTMCell(keras.layers.LSTMCell):
    """``keras.layers.LSTMCell`` that emits the cell state ``c_t`` as its output.

    The recurrence (weights, gates, state ``[h, c]``) is exactly Keras'; only
    the per-step output changes from ``h_t`` to ``c_t`` (zhao2019 eq. 4).

    Examples
    --------
    >>> import numpy as np, keras
    >>> rnn = keras.layers.RNN(CellStateLSTMCell(4), return_sequences=True)
    >>> rnn(np.ones((1, 3, 2), "float32")).shape
    TensorShape([1, 3, 4])
    """

    def call(self, inputs, states, training=False):
        _, (h, c) = super().call(inputs, states, training=training)
        return c, [h, c]


@keras.saving.register_keras_serializable(package="keras_ser")
class BLSTM(keras.layers.Layer):
    """One BLSTM layer with the output of zhao2019 eq. 3 (hidden states) or eq. 4 (cell states).

    Parameters
    ----------
    units : int
        Cells per direction (zhao2019: 128, i.e. "128 x 2").
    states : {"hidden", "cell"}, default "hidden"
        Which states form the output: ``"hidden"`` is eq. 3, ``"cell"`` eq. 4.
    output_units : int, optional
        Size of ``y_t``.  An int adds the learned linear map ``W, b`` of eqs. 3-4;
        ``None`` returns the concatenation ``[fwd_t; bwd_t]`` (``2 * units``),
        i.e. the usual Keras ``Bidirectional(..., merge_mode="concat")``.
    dropout, recurrent_dropout : float, default 0.0
        Passed to both LSTM cells (zhao2019 does not use them on the BLSTM).
    seed : int, optional
        Seed of the cells' dropout masks.
    **kwargs
        Standard ``keras.layers.Layer`` arguments.

    Notes
    -----
    Input ``[batch, T, d]`` -> output ``[batch, T, output_units or 2 * units]``.
    Mask-aware: the backward LSTM starts at each sequence's last real step, the
    outputs at padded steps are zero, and the mask is passed on, so the output
    at real steps does not depend on the padding.  Weights, in order: forward
    ``kernel, recurrent_kernel, bias``; backward the same; then the projection
    ``kernel, bias`` (gate order i, f, c, o as in Keras).

    Examples
    --------
    >>> import numpy as np
    >>> layer = BLSTM(8, states="cell", output_units=16)
    >>> layer(np.ones((2, 5, 3), "float32")).shape
    TensorShape([2, 5, 16])
    """

    def __init__(self, units, states="hidden", output_units=None, dropout=0.0, recurrent_dropout=0.0,
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, int) or isinstance(units, bool) or units < 1:
            raise ParameterError(f"BLSTM units must be a positive int, got {units!r}")
        if states not in _STATES:
            raise ParameterError(f"BLSTM states must be one of {_STATES}, got {states!r}")
        if output_units is not None and (
            not isinstance(output_units, int) or isinstance(output_units, bool) or output_units < 1
        ):
            raise ParameterError(f"BLSTM output_units must be a positive int or None, got {output_units!r}")
        self.units = units
        self.states = states
        self.output_units = output_units
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        self.seed = seed

        def rnn(direction, go_backwards):
            # Sub-layers take this layer's dtype policy, not the global one at construction
            # time, so that a mixed-precision BLSTM reloads as mixed precision.
            options = dict(dropout=self.dropout, recurrent_dropout=self.recurrent_dropout, seed=seed,
                           dtype=self.dtype_policy)
            if states == "hidden":
                # keras.layers.LSTM (not RNN(LSTMCell)) keeps the fused cuDNN kernel on GPUs.
                return keras.layers.LSTM(units, return_sequences=True, go_backwards=go_backwards, name=direction,
                                         **options)
            return keras.layers.RNN(CellStateLSTMCell(units, **options), return_sequences=True,
                                    go_backwards=go_backwards, name=direction, dtype=self.dtype_policy)

        self.forward_rnn = rnn("forward", False)
        self.backward_rnn = rnn("backward", True)
        self.projection = None if output_units is None else keras.layers.Dense(
            output_units, name="projection", dtype=self.dtype_policy)
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ParameterError(
                f"{self.name}: BLSTM expects [batch, time, features] with a known feature size, "
                f"got shape {tuple(input_shape)}"
            )
        self.forward_rnn.build(input_shape)
        self.backward_rnn.build(input_shape)
        if self.projection is not None:
            self.projection.build(tuple(input_shape[:-1]) + (2 * self.units,))

    def call(self, inputs, mask=None, training=None):
        forward = self.forward_rnn(inputs, mask=mask, training=training)
        # go_backwards returns the steps in reversed order; flip them back so
        # that step t of both directions lines up.
        backward = ops.flip(self.backward_rnn(inputs, mask=mask, training=training), axis=1)
        outputs = ops.concatenate([forward, backward], axis=-1)
        if self.projection is not None:
            outputs = self.projection(outputs)
        if mask is not None:
            outputs = outputs * ops.expand_dims(ops.cast(mask, outputs.dtype), -1)
        return outputs

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.output_units or 2 * self.units,)

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            states=self.states,
            output_units=self.output_units,
            dropout=self.dropout,
            recurrent_dropout=self.recurrent_dropout,
            seed=self.seed,
        )
        return config
