"""FLOPs of a Keras model's training step, counted per layer from the shapes it really sees.

One forward pass on arrays of the given shapes records every layer call (nested models
and the sub-layers of keras_ser's own layers included) with its input and output
shapes; the multiply-adds of the layers that carry nearly all the arithmetic are then
counted, two FLOPs each:

* convolutions (1D, 2D, 3D, grouped): ``2 * prod(kernel) * in_channels / groups * filters``
  per output position;
* ``Dense``: ``2 * in * out`` per position;
* LSTMs (``keras.layers.LSTM`` and ``keras.layers.RNN`` over an ``LSTMCell``):
  ``2 * 4 * units * (in + units)`` per sequence step.

Element-wise work (activations, batch normalisation, attention scores, pooling) is not
counted. A training step is counted as three forward passes (the backward pass of these
layers costs two: one product for the input gradient and one for the weight gradient).
``tests/test_benchmarks_flops.py`` checks the forward count against the TensorFlow
profiler's count of the graph's Conv2D and MatMul ops.
"""

import math

import keras
import numpy as np

__all__ = ["forward_flops", "layer_calls", "training_flops"]


def _shape(tensor):
    return tuple(int(d) for d in tensor.shape)


def layer_calls(model, input_shapes, seed=0):
    """Run ``model`` once in inference mode; return ``[(layer, input_shapes, output_shapes)]``."""
    rng = np.random.default_rng(seed)
    inputs = [rng.standard_normal(shape).astype("float32") for shape in input_shapes]
    calls = []
    original = keras.layers.Layer.__call__

    def recording_call(layer, *args, **kwargs):
        outputs = original(layer, *args, **kwargs)
        first = args[0] if args else next(iter(kwargs.values()))
        calls.append((layer, [_shape(t) for t in keras.tree.flatten(first) if hasattr(t, "shape")],
                      [_shape(t) for t in keras.tree.flatten(outputs) if hasattr(t, "shape")]))
        return outputs

    keras.layers.Layer.__call__ = recording_call
    try:
        model(inputs[0] if len(inputs) == 1 else inputs, training=False)
    finally:
        keras.layers.Layer.__call__ = original
    return calls


def _layer_flops(layer, in_shapes, out_shapes):
    if isinstance(layer, keras.layers.LSTMCell) or not in_shapes or not out_shapes:
        return 0
    if isinstance(layer, keras.layers.RNN) and isinstance(getattr(layer, "cell", None), keras.layers.LSTMCell):
        batch, steps, features = in_shapes[0]
        units = layer.cell.units
        return 2 * 4 * units * (features + units) * batch * steps
    kernel = getattr(layer, "kernel", None)
    if kernel is None:
        return 0
    out = out_shapes[0]
    if isinstance(layer, keras.layers.Dense):
        return 2 * int(kernel.shape[0]) * int(kernel.shape[1]) * math.prod(out[:-1])
    if hasattr(layer, "kernel_size") and hasattr(layer, "filters") and len(kernel.shape) >= 3:
        # kernel: [*kernel_size, in_channels / groups, filters]; channels-last output positions.
        return 2 * math.prod(int(d) for d in kernel.shape) * math.prod(out[:-1])
    return 0


def forward_flops(model, input_shapes):
    """FLOPs of one forward pass of ``model`` on inputs of ``input_shapes`` (batch included)."""
    return sum(_layer_flops(*call) for call in layer_calls(model, input_shapes))


def training_flops(model, input_shapes):
    """FLOPs of one training step: three forward passes (forward, input and weight gradients)."""
    return 3 * forward_flops(model, input_shapes)
