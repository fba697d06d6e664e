"""benchmarks/flop_count.py against TensorFlow's own FLOP statistics of the same graph."""

import pathlib
import sys

import keras
import pytest
import tensorflow as tf

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
from flop_count import forward_flops, training_flops  # noqa: E402

from keras_ser.layers import GroupedConv2D  # noqa: E402


def _profiler_flops(model, shape):
    """FLOPs of the Conv2D and MatMul ops of the model's inference graph, as TensorFlow counts them."""
    function = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec(shape, tf.float32))
    options = tf.compat.v1.profiler.ProfileOptionBuilder(
        tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    ).with_empty_output().build()
    options["account_type_regexes"] = ["Conv2D", "MatMul", "BatchMatMulV2"]
    return tf.compat.v1.profiler.profile(function.graph, options=options).total_float_ops


def test_layer_count_matches_the_tensorflow_profiler_on_convolutions_and_dense_layers():
    inputs = keras.Input((24, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    x = GroupedConv2D(6, 5, groups=2, strides=2)(x)
    x = keras.layers.Reshape((10 * 6, 6))(x)
    x = keras.layers.Conv1D(4, 3)(x)
    x = keras.layers.Dense(5)(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(x)))
    ours = forward_flops(model, [(2, 24, 16, 3)])
    assert ours == pytest.approx(_profiler_flops(model, (2, 24, 16, 3)), rel=1e-9)
    assert training_flops(model, [(2, 24, 16, 3)]) == 3 * ours


def test_lstm_steps_are_counted_once_per_step():
    inputs = keras.Input((7, 5))
    model = keras.Model(inputs, keras.layers.LSTM(4)(inputs))
    assert forward_flops(model, [(3, 7, 5)]) == 2 * 4 * 4 * (5 + 4) * 3 * 7
