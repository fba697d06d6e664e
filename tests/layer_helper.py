"""The one test helper every keras_ser custom layer goes through (keras-hub's pattern).

``run_layer_test`` checks, for one layer on a tiny input: that its class is registered for
``.keras`` files as ``keras_ser>ClassName``, that its outputs are finite, that a
``get_config`` / ``from_config`` clone given its weights computes the same outputs, that
a functional model around it survives a ``.keras`` save and reload with identical
outputs, and that the layer built in mixed bfloat16 computes close outputs.
"""

import keras
import numpy as np
import tensorflow as tf

from keras_ser.experiments.precision import policy_scope


def _flat(outputs):
    return [np.asarray(o) for o in tf.nest.flatten(outputs)]


def _assert_same(a_outputs, b_outputs, atol=1e-6):
    for a, b in zip(_flat(a_outputs), _flat(b_outputs)):
        if a.dtype == bool:
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(a, b, rtol=0, atol=atol)


def _clone(layer):
    return type(layer).from_config(layer.get_config())


def run_layer_test(layer, inputs, *, tmp_path, registered_class=None):
    """Run the shared checks on ``layer`` (not yet called) with ``inputs``.

    Parameters
    ----------
    layer : keras.layers.Layer
        A fresh layer; for an RNN cell, a ``keras.layers.RNN`` around it.
    inputs : array or list of arrays
        A tiny batch the layer accepts.
    tmp_path : pathlib.Path
        Where the ``.keras`` file is written (pytest's ``tmp_path``).
    registered_class : type, optional
        The keras_ser class under test when ``layer`` wraps it (the cell of an RNN).

    Returns
    -------
    The layer's outputs on ``inputs``.
    """
    cls = registered_class or type(layer)
    assert keras.saving.get_registered_name(cls) == f"keras_ser>{cls.__name__}"
    assert keras.saving.get_registered_object(f"keras_ser>{cls.__name__}") is cls

    outputs = layer(inputs)
    for output in _flat(outputs):
        assert output.dtype == bool or np.all(np.isfinite(output)), f"{cls.__name__}: non-finite output"

    clone = _clone(layer)
    clone(inputs)
    clone.set_weights(layer.get_weights())
    _assert_same(layer(inputs), clone(inputs))

    arrays = inputs if isinstance(inputs, list) else [inputs]
    symbolic = [keras.Input(np.shape(a)[1:], dtype=np.asarray(a).dtype.name) for a in arrays]
    symbolic = symbolic if isinstance(inputs, list) else symbolic[0]
    inner = _clone(layer)
    model = keras.Model(symbolic, inner(symbolic))
    inner.set_weights(layer.get_weights())
    path = tmp_path / f"{cls.__name__}.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    _assert_same(model(inputs), reloaded(inputs))

    with policy_scope("mixed_bfloat16"):
        config = layer.get_config()
        config["dtype"] = "mixed_bfloat16"
        mixed = type(layer).from_config(config)
        mixed(inputs)
    mixed.set_weights(layer.get_weights())
    for got, expected in zip(_flat(mixed(inputs)), _flat(outputs)):
        if expected.dtype == bool:
            np.testing.assert_array_equal(got, expected)
        else:
            got = got.astype("float32")
            np.testing.assert_allclose(got, expected, rtol=0.05, atol=0.05 * max(1.0, float(np.abs(expected).max())))
    return outputs
