"""The one test helper every model test calls (keras-hub's pattern).

``run_model_test`` builds a registered model with tiny overrides and checks, in
order: the registry's model contract (the model is named by its registry name, the
layer ``"predictions"`` produces its output, a layer ``"embedding"`` exists), the
output shape, the parameter count (when a hand count is given), that a
``get_config`` / ``from_config`` clone with the same weights computes the same outputs,
that a few training steps on a tiny batch lower the loss, that a ``.keras`` save and
reload gives identical outputs, that ``predict`` on a ``tf.data`` batch gives the
outputs of a direct call, that the model built in mixed bfloat16 (the
``train.precision`` path) computes the same function with float32 outputs, trains
a step and survives a ``.keras`` round trip, and (optionally) that padding a
variable-length input does not change a named masked layer's output.
"""

import json

import numpy as np
import keras
import tensorflow as tf

from keras_ser import models
from keras_ser.experiments.precision import build_in_precision


#: Registry name of the stand-in network that training tests run on the zhao2019 front end.
TINY_LOGMEL_MODEL = "test_tiny_logmel_dense"


def tiny_logmel_model(num_classes=7, units=8, bn_momentum=0.99, name=TINY_LOGMEL_MODEL):
    """The stand-in network: pooled log-mel, batch normalisation, one hidden layer.

    It stands in for the zhao2019 builder under the zhao2019 recipes, whose [model] table sets
    bn_momentum: it normalises its pooled input with that momentum as well. A module-level
    function, so that worker processes of fold-parallel runs can import it.
    """
    return keras.Sequential([
        keras.Input((500, 40)), keras.layers.GlobalAveragePooling1D(),
        keras.layers.BatchNormalization(momentum=bn_momentum),
        keras.layers.Dense(units, activation="relu", name="embedding"),
        keras.layers.Dense(num_classes, activation="softmax", name="predictions"),
    ], name=name)


def register_tiny_logmel_model():
    """Register (once) a network on zhao2019's [500, 40] log-mel small enough for CPU tests; return its name."""
    from keras_ser.models import registry

    if TINY_LOGMEL_MODEL not in registry._REGISTRY:
        registry.register(TINY_LOGMEL_MODEL, paper="test", table="-", input="40x500 log-mel")(tiny_logmel_model)
    return TINY_LOGMEL_MODEL


#: EMO-DB's classes, the labels of the hand-made MODEL DIRs of the predict / serving tests.
EMODB_LABELS = ["anger", "boredom", "disgust", "fear", "happiness", "neutral", "sadness"]


def write_model_dir(path, model, frontend, pooling, labels=EMODB_LABELS):
    """Write a MODEL DIR (model, front end, labels, meta) as a finished fold would, without training."""
    path.mkdir(parents=True)
    model.save(path / "model.keras")
    (path / "frontend.json").write_text(json.dumps(frontend.get_config()))
    (path / "labels.json").write_text(json.dumps(list(labels)))
    (path / "meta.json").write_text(json.dumps({"recipe": "tiny", "fold": "f", "pooling": pooling,
                                                "frontend_revision": frontend.numerics_revision}))


def _check_keras_round_trip(model, path, input_data):
    """Save ``model`` as ``.keras`` at ``path``, reload it and require identical outputs."""
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert reloaded.name == model.name
    for a, b in zip(_flat(model(input_data, training=False)), _flat(reloaded(input_data, training=False))):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def check_model_contract(name, model):
    """The registry's contract: named ``name``; layer ``"predictions"`` makes the output; ``"embedding"`` exists."""
    assert model.name == name, f"{name}: the model is named {model.name!r}"
    layers = {layer.name: layer for layer in model.layers}
    assert "predictions" in layers, f"{name}: no layer 'predictions'"
    assert len(model.outputs) == 1 and model.outputs[0]._keras_history.operation is layers["predictions"], (
        f"{name}: the model output is not the output of its layer 'predictions'")
    assert "embedding" in layers, f"{name}: no layer 'embedding'"


def _check_config_round_trip(model, input_data):
    """A ``from_config`` clone of ``model`` given its weights computes the same outputs."""
    clone = type(model).from_config(model.get_config())
    assert clone.name == model.name and [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]
    clone.set_weights(model.get_weights())
    for a, b in zip(_flat(model(input_data, training=False)), _flat(clone(input_data, training=False))):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def _check_dataset_predict(model, input_data):
    """``predict`` on a ``tf.data`` batch gives the outputs of a direct call."""
    features = tuple(input_data) if isinstance(input_data, list) else input_data
    batch = len(tf.nest.flatten(input_data)[0])
    dataset = tf.data.Dataset.from_tensor_slices((features,)).batch(batch)
    predicted = model.predict(dataset, verbose=0)
    for a, b in zip(_flat(predicted), _flat(model(input_data, training=False))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def _flat(outputs):
    return [np.asarray(o) for o in tf.nest.flatten(outputs)]


def run_model_test(
    name,
    *,
    input_data,
    targets,
    expected_output_shape,
    overrides=None,
    num_classes=None,
    expected_params=None,
    loss="sparse_categorical_crossentropy",
    train_steps=3,
    learning_rate=3e-3,
    padding=None,
    tmp_path,
):
    """Build ``name`` from the registry and run the shared checks.

    Parameters
    ----------
    name : str
        Registry name.
    input_data, targets
        A tiny batch (arrays, or lists/dicts of arrays for multi-input models).
    expected_output_shape : tuple or list of tuples
        Shape(s) of the model output(s) on ``input_data``.
    overrides : dict, optional
        Builder keyword arguments that make the model tiny.
    expected_params : int, optional
        Hand-counted ``model.count_params()``.
    loss : str or keras loss
        Loss for the training check.
    padding : dict, optional
        ``{"layer": layer_name, "padded_input": same_as_input_data_but_padded}``.
        The named layer's output must be the same for both inputs (to 1e-5).
    tmp_path : pathlib.Path
        Where the ``.keras`` files are written (pytest's ``tmp_path``).

    Returns
    -------
    keras.Model
        The trained model, for further model-specific assertions.
    """
    keras.utils.set_random_seed(0)
    model = models.build(name, num_classes=num_classes, **(overrides or {}))
    assert isinstance(model, keras.Model)
    check_model_contract(name, model)

    outputs = _flat(model(input_data, training=False))
    shapes = expected_output_shape if isinstance(expected_output_shape, list) else [expected_output_shape]
    assert [tuple(o.shape) for o in outputs] == [tuple(s) for s in shapes]
    for o in outputs:
        assert np.all(np.isfinite(o)), f"{name}: non-finite output"

    if expected_params is not None:
        assert model.count_params() == expected_params, (
            f"{name}: {model.count_params()} parameters, hand count {expected_params}"
        )

    _check_config_round_trip(model, input_data)

    # Eager steps: tracing a masked recurrent train step costs more (10-20 s) than a few eager
    # steps of a tiny model; every recipe's network trains a step in graph mode in test_recipes_all.
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, run_eagerly=True)
    before = float(model.evaluate(input_data, targets, verbose=0, return_dict=True)["loss"])
    batch = len(tf.nest.flatten(input_data)[0])
    model.fit(input_data, targets, epochs=train_steps, batch_size=batch, verbose=0, shuffle=False)
    after = float(model.evaluate(input_data, targets, verbose=0, return_dict=True)["loss"])
    assert np.isfinite(after) and after < before, f"{name}: loss {before:.4f} -> {after:.4f}"

    _check_keras_round_trip(model, tmp_path / f"{name}.keras", input_data)
    _check_dataset_predict(model, input_data)

    _check_mixed_precision(name, model, overrides, num_classes, input_data, targets, loss, tmp_path)

    if padding is not None:
        probe = keras.Model(model.input, model.get_layer(padding["layer"]).output)
        padded = probe(padding["padded_input"], training=False)
        for a, b in zip(_flat(probe(input_data, training=False)), _flat(padded)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    return model


def _check_mixed_precision(name, model, overrides, num_classes, input_data, targets, loss, tmp_path):
    """The same architecture in mixed bfloat16, with ``model``'s weights, gives float32 outputs
    close to ``model``'s (bfloat16 keeps 8 mantissa bits), trains a step and reloads exactly."""
    mixed = build_in_precision(lambda: models.build(name, num_classes=num_classes, **(overrides or {})),
                               "mixed_bfloat16")
    assert keras.mixed_precision.global_policy().name == "float32", "build_in_precision leaked its policy"
    check_model_contract(name, mixed)
    assert [w.shape for w in mixed.weights] == [w.shape for w in model.weights]
    mixed.set_weights(model.get_weights())
    expected = _flat(model(input_data, training=False))
    got = mixed(input_data, training=False)
    for o in tf.nest.flatten(got):
        assert o.dtype == "float32", f"{name}: mixed-precision output is {o.dtype}"
    for a, b in zip(_flat(got), expected):
        np.testing.assert_allclose(a, b, rtol=0.1, atol=0.1 * max(1.0, float(np.abs(b).max())))
    mixed.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, run_eagerly=True)
    batch = len(tf.nest.flatten(input_data)[0])
    history = mixed.fit(input_data, targets, epochs=1, batch_size=batch, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][-1]), f"{name}: non-finite mixed-precision loss"
    _check_keras_round_trip(mixed, tmp_path / f"{name}_mixed_bfloat16.keras", input_data)
