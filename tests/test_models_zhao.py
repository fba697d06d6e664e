"""Models of zhao2019 (zhao2019_*) and zhao2018 (zhao2018_*) through the shared model test.

Parameter counts are hand counts from the layer formulas below, independent of
Keras.  Every model is checked for padding invariance of its ``"embedding"``
layer (which holds the attention / pooled outputs of all its branches).
"""

import numpy as np
import keras
import pytest

from keras_ser import models
from keras_ser.errors import ParameterError
from model_helper import run_model_test

RNG = np.random.default_rng(0)
NUM_CLASSES = 4
FRAMES = 24
LENGTHS = (24, 19, 13)
EXTRA_PADDING = 8


def lstm(d_in, units):
    return 4 * (d_in * units + units * units + units)


def blstm(d_in, units, projection=True):
    return 2 * lstm(d_in, units) + ((2 * units) ** 2 + 2 * units if projection else 0)


def dense(d_in, units):
    return d_in * units + units


def conv(kernel_elements, c_in, filters):
    return kernel_elements * c_in * filters + filters


def batch_norm(channels):
    return 4 * channels  # gamma, beta, moving mean, moving variance


def padded_batch(num_features):
    """Utterances of ``LENGTHS`` frames zero-padded to ``FRAMES``, and the same batch with more padding."""
    x = np.zeros((len(LENGTHS), FRAMES, num_features), "float32")
    for i, n in enumerate(LENGTHS):
        x[i, :n] = RNG.normal(size=(n, num_features))
    more = np.concatenate([x, np.zeros((len(LENGTHS), EXTRA_PADDING, num_features), "float32")], axis=1)
    return x, more


# --------------------------------------------------------------------------- zhao2019
Z19 = dict(num_frames=None, rnn_units=3, conv_filters=(4, 5, 6), dnn_units=(7,), conv_dropout=0.1, dnn_dropout=0.1)
Z19_MELS = 16


def count_zhao2019(n_mels, *, rnn=True, fcn=True, layers=2, bidirectional=True, attention_fcn=True):
    u, (f1, f2, f3), hidden = 3, (4, 5, 6), 7
    total, embedding = 0, 0
    if rnn:
        if bidirectional:
            total += blstm(n_mels, u) + (layers - 1) * blstm(2 * u, u) + 2 * u  # + attention W
            embedding += 2 * u
        else:
            total += lstm(n_mels, u) + (layers - 1) * lstm(u, u) + u
            embedding += u
    if fcn:
        total += conv(9, 1, f1) + batch_norm(f1) + conv(9, f1, f2) + batch_norm(f2) + conv(9, f2, f3) + batch_norm(f3)
        if attention_fcn:
            total += f3 * f3 + 2 * f3  # W, b, u of eq. 8 (square W)
        embedding += f3
    return total + dense(embedding, hidden) + dense(hidden, NUM_CLASSES)


ZHAO2019 = {
    "zhao2019_attention_blstm_fcn": (Z19_MELS, count_zhao2019(Z19_MELS)),
    "zhao2019_attention_blstm_fcn_1layer": (Z19_MELS, count_zhao2019(Z19_MELS, layers=1)),
    "zhao2019_attention_blstm_fcn_3layer": (Z19_MELS, count_zhao2019(Z19_MELS, layers=3)),
    "zhao2019_fcn": (Z19_MELS, count_zhao2019(Z19_MELS, rnn=False, attention_fcn=False)),
    "zhao2019_attention_fcn": (Z19_MELS, count_zhao2019(Z19_MELS, rnn=False)),
    "zhao2019_attention_lstm": (Z19_MELS, count_zhao2019(Z19_MELS, fcn=False, bidirectional=False)),
    "zhao2019_attention_blstm": (Z19_MELS, count_zhao2019(Z19_MELS, fcn=False)),
}
# Table 6 rows keep their bound number of mel bands.
ZHAO2019_MELS = {f"zhao2019_attention_blstm_fcn_mel{m}": m for m in (30, 60, 80, 100)}

# --------------------------------------------------------------------------- zhao2018
Z18 = dict(num_features=6, shuffle_frames=30, rnn_units=3, conv_filters=(4, 5), dnn_units=(7,), dnn_dropout=0.1)


def count_zhao2018(*, rnn=True, fcn=True, bidirectional=True, attention=True, step_size=30):
    u, d, (f1, f2), hidden = 3, 6, (4, 5), 7
    total, embedding = 0, 0
    if fcn:
        total += conv(8, d, f1) + batch_norm(f1) + conv(5, f1, f2) + batch_norm(f2)
        embedding += f2
    if rnn:
        width = 2 * u if bidirectional else u
        total += (blstm(step_size, u, projection=False) if bidirectional else lstm(step_size, u))
        total += width if attention else 0
        embedding += width
    return total + dense(embedding, hidden) + dense(hidden, NUM_CLASSES)


ZHAO2018 = {
    "zhao2018_attention_blstm_fcn": count_zhao2018(),
    "zhao2018_blstm_fcn_max_pooling": count_zhao2018(attention=False),
    "zhao2018_blstm_fcn_average_pooling": count_zhao2018(attention=False),
    "zhao2018_attention_lstm_fcn": count_zhao2018(bidirectional=False),
    "zhao2018_fcn": count_zhao2018(rnn=False),
    "zhao2018_attention_lstm": count_zhao2018(fcn=False, bidirectional=False),
    "zhao2018_attention_blstm": count_zhao2018(fcn=False),
}


def _targets():
    return np.arange(len(LENGTHS)) % NUM_CLASSES


@pytest.mark.parametrize("name", sorted(ZHAO2019))
def test_zhao2019_models(name, tmp_path):
    n_mels, expected = ZHAO2019[name]
    x, more = padded_batch(n_mels)
    run_model_test(
        name, input_data=x, targets=_targets(), expected_output_shape=(len(LENGTHS), NUM_CLASSES),
        overrides=dict(Z19, n_mels=n_mels), num_classes=NUM_CLASSES, expected_params=expected,
        padding={"layer": "embedding", "padded_input": more}, tmp_path=tmp_path,
    )


@pytest.mark.parametrize("name", sorted(ZHAO2019_MELS))
def test_zhao2019_mel_band_variants(name, tmp_path):
    n_mels = ZHAO2019_MELS[name]
    x, more = padded_batch(n_mels)
    # A Table 6 row changes only the bound n_mels (checked here on the FCN branch,
    # which depends on it most); the full architecture is tested above.
    model = run_model_test(
        name, input_data=x, targets=_targets(), expected_output_shape=(len(LENGTHS), NUM_CLASSES),
        overrides=dict(Z19, use_rnn=False), num_classes=NUM_CLASSES,
        expected_params=count_zhao2019(n_mels, rnn=False), padding={"layer": "embedding", "padded_input": more},
        tmp_path=tmp_path,
    )
    assert model.input_shape == (None, None, n_mels)
    paper_size = models.build(name, num_classes=NUM_CLASSES)
    assert paper_size.input_shape == (None, 500, n_mels)
    assert paper_size.get_layer("blstm_1").count_params() == blstm(n_mels, 128)


@pytest.mark.parametrize("name", sorted(ZHAO2018))
def test_zhao2018_models(name, tmp_path):
    x, more = padded_batch(Z18["num_features"])
    run_model_test(
        name, input_data=x, targets=_targets(), expected_output_shape=(len(LENGTHS), NUM_CLASSES),
        overrides=Z18, num_classes=NUM_CLASSES, expected_params=ZHAO2018[name],
        padding={"layer": "embedding", "padded_input": more}, tmp_path=tmp_path,
    )


def test_paper_default_sizes():
    """Paper-size builds (no training): input shapes, embedding sizes, hand-counted parameters."""
    full = models.build("zhao2019_attention_blstm_fcn", num_classes=4)
    assert full.input_shape == (None, 500, 40)
    assert full.get_layer("embedding").output.shape == (None, 384)  # 128 x 2 BLSTM + 128 FCN
    expected = (
        blstm(40, 128) + blstm(256, 128) + 256
        + conv(9, 1, 64) + batch_norm(64) + conv(9, 64, 128) + batch_norm(128) + conv(9, 128, 128)
        + batch_norm(128) + 128 * 128 + 2 * 128
        + dense(384, 256) + dense(256, 4)
    )
    assert full.count_params() == expected
    assert full.get_layer("fcn_attention").scale == 0.3
    model_2018 = models.build("zhao2018_attention_blstm_fcn", num_classes=4)
    assert model_2018.input_shape == (None, None, 120)
    assert model_2018.get_layer("embedding").output.shape == (None, 64 + 128)
    assert model_2018.get_layer("dimension_shuffle").output.shape == (None, 120, 157)
    yaafe = models.build("zhao2018_attention_blstm_fcn", num_classes=8, num_features=743)
    assert yaafe.input_shape == (None, None, 743) and yaafe.output_shape == (None, 8)


@pytest.mark.parametrize(
    "name, overrides, num_features",
    [
        ("zhao2019_attention_blstm_fcn", dict(Z19, n_mels=Z19_MELS, rnn_states="cell"), Z19_MELS),
        ("zhao2018_attention_blstm_fcn", dict(Z18, dimension_shuffle=False), Z18["num_features"]),
    ],
)
def test_single_utterance_equals_its_padded_batch_row(name, overrides, num_features):
    """An utterance alone (no padding at all) gives the embedding of its row in a padded batch."""
    keras.utils.set_random_seed(1)
    model = models.build(name, num_classes=NUM_CLASSES, **overrides)
    probe = keras.Model(model.input, model.get_layer("embedding").output)
    batch, _ = padded_batch(num_features)
    rows = np.asarray(probe(batch, training=False))
    for i, n in enumerate(LENGTHS):
        alone = np.asarray(probe(batch[i : i + 1, :n], training=False))
        np.testing.assert_allclose(alone[0], rows[i], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "name, overrides",
    [
        ("zhao2019_attention_blstm_fcn", {"rnn_states": "memory"}),
        ("zhao2019_attention_blstm_fcn", {"use_rnn": False, "use_fcn": False}),
        ("zhao2019_attention_blstm_fcn", {"n_mels": 4}),
        ("zhao2019_attention_blstm_fcn", {"conv_dropout": 1.0}),
        ("zhao2019_fcn", {"bn_momentum": 1.0}),
        ("zhao2019_attention_lstm", {"rnn_states": "cell"}),
        ("zhao2019_attention_blstm_fcn", {"attention_scale": 2.0}),
        ("zhao2018_attention_blstm_fcn", {"conv_kernel_sizes": (8,)}),
        ("zhao2018_attention_blstm_fcn", {"rnn_pooling": "median"}),
        ("zhao2018_attention_blstm_fcn", {"num_features": 0}),
    ],
)
def test_bad_settings_raise_parameter_error(name, overrides):
    with pytest.raises(ParameterError):
        models.build(name, num_classes=NUM_CLASSES, **overrides)


def test_registry_metadata():
    names = [n for n in models.available() if n.startswith(("zhao2018_", "zhao2019_"))]
    assert set(names) == set(ZHAO2019) | set(ZHAO2019_MELS) | set(ZHAO2018)
    assert models.info("zhao2019_attention_blstm_fcn_mel60").default_kwargs == {"n_mels": 60}
    assert models.info("zhao2018_blstm_fcn_max_pooling").table.startswith("Table 3")


def _plain_keras_twin(num_frames, n_mels, *, units, filters, dnn, attention_units, scale):
    """zhao2019's Attention-BLSTM-FCN written with stock Keras layers only (no masking, no keras_ser layer)."""
    inputs = keras.Input((num_frames, n_mels))
    x = inputs
    for i in (1, 2):
        x = keras.layers.Bidirectional(keras.layers.LSTM(units, return_sequences=True), name=f"blstm_{i}")(x)
        x = keras.layers.Dense(2 * units, name=f"blstm_{i}_projection")(x)
    scores = keras.layers.Reshape((num_frames,))(keras.layers.Dense(1, use_bias=False, name="rnn_attention")(x))
    rnn_vector = keras.layers.Dot(axes=1)([keras.layers.Softmax()(scores), x])
    grid = keras.layers.Reshape((num_frames, n_mels, 1))(inputs)
    for i, count in enumerate(filters, start=1):
        grid = keras.layers.Conv2D(count, 3, padding="same", name=f"conv_{i}")(grid)
        grid = keras.layers.BatchNormalization(name=f"bn_{i}")(grid)
        grid = keras.layers.MaxPooling2D(2)(keras.layers.ReLU()(grid))
    annotations = keras.layers.Reshape((-1, filters[-1]))(grid)
    hidden = keras.layers.Dense(attention_units, activation="tanh", name="fcn_attention_w")(annotations)
    grid_scores = keras.layers.Rescaling(scale)(keras.layers.Dense(1, use_bias=False, name="fcn_attention_u")(hidden))
    weights = keras.layers.Softmax()(keras.layers.Reshape((-1,))(grid_scores))
    fcn_vector = keras.layers.Dot(axes=1)([weights, annotations])
    x = keras.layers.Concatenate()([rnn_vector, fcn_vector])
    x = keras.layers.Dense(dnn, activation="relu", name="dnn_1")(x)
    return keras.Model(inputs, keras.layers.Dense(NUM_CLASSES, activation="softmax", name="predictions")(x))


def test_zhao2019_equals_a_plain_keras_twin_in_outputs_and_gradients():
    """keras_ser's masking-aware layers add nothing to unpadded input: same outputs, same gradients.

    Rules out a defect of keras_ser's own layers (BLSTM with eq. 3's projection, masked pooling,
    both attention poolings) as the reason the network trains worse than zhao2018's on EMO-DB.
    Dropout is off in both, so a training-mode step (batch-norm on batch statistics) is compared.
    """
    frames, mels, units, filters, dnn = 16, 8, 6, (4, 5, 6), 10
    ours = models.build("zhao2019_attention_blstm_fcn", num_classes=NUM_CLASSES, num_frames=frames, n_mels=mels,
                        rnn_units=units, conv_filters=filters, dnn_units=(dnn,), conv_dropout=0.0, dnn_dropout=0.0)
    twin = _plain_keras_twin(frames, mels, units=units, filters=filters, dnn=dnn, attention_units=filters[-1],
                             scale=0.3)
    for i in (1, 2):
        blstm = ours.get_layer(f"blstm_{i}")
        bidirectional = twin.get_layer(f"blstm_{i}")
        bidirectional.forward_layer.set_weights(blstm.forward_rnn.get_weights())
        bidirectional.backward_layer.set_weights(blstm.backward_rnn.get_weights())
        twin.get_layer(f"blstm_{i}_projection").set_weights(blstm.projection.get_weights())
    twin.get_layer("rnn_attention").set_weights([ours.get_layer("rnn_attention").kernel.numpy()[:, None]])
    for name in ("conv_1", "conv_2", "conv_3", "bn_1", "bn_2", "bn_3", "dnn_1", "predictions"):
        twin.get_layer(name).set_weights(ours.get_layer(name).get_weights())
    fcn = ours.get_layer("fcn_attention")
    twin.get_layer("fcn_attention_w").set_weights([fcn.kernel.numpy(), fcn.bias.numpy()])
    twin.get_layer("fcn_attention_u").set_weights([fcn.context.numpy()[:, None]])

    x = RNG.normal(size=(5, frames, mels)).astype("float32")
    y = np.array([0, 1, 2, 3, 0])
    np.testing.assert_allclose(ours.predict(x, verbose=0), twin.predict(x, verbose=0), rtol=1e-4, atol=1e-6)

    import tensorflow as tf

    def gradients(model):
        with tf.GradientTape() as tape:
            loss = keras.losses.sparse_categorical_crossentropy(y, model(x, training=True))
        return loss.numpy(), tape.gradient(loss, model.trainable_variables)

    loss_ours, grads_ours = gradients(ours)
    loss_twin, grads_twin = gradients(twin)
    np.testing.assert_allclose(loss_ours, loss_twin, rtol=1e-4, atol=1e-6)
    norms = lambda grads: sorted(round(float(np.linalg.norm(g)), 4) for g in grads)  # noqa: E731
    assert len(grads_ours) == len(grads_twin) and np.allclose(norms(grads_ours), norms(grads_twin), rtol=1e-3)


@pytest.mark.parametrize("momentum", [0.99, 0.9])
def test_zhao2019_bn_momentum_sets_how_far_one_step_moves_the_prediction_statistics(momentum):
    # One training-mode call on inputs of mean 3: moving_mean = momentum * 0 + (1 - momentum) * batch mean
    # of conv_1's outputs, computed here with NumPy from conv_1's weights.
    model = models.build("zhao2019_fcn", num_classes=NUM_CLASSES, n_mels=8, num_frames=FRAMES,
                         bn_momentum=momentum)
    x = (3.0 + RNG.normal(size=(5, FRAMES, 8))).astype("float32")
    model(x, training=True)
    kernel, bias = (np.asarray(w) for w in model.get_layer("conv_1").weights)
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    conv = sum(padded[:, i:i + FRAMES, j:j + 8, None] * kernel[i, j, 0] for i in range(3) for j in range(3)) + bias
    expected = (1 - momentum) * conv.mean(axis=(0, 1, 2))
    np.testing.assert_allclose(np.asarray(model.get_layer("bn_1").moving_mean), expected, rtol=1e-4, atol=1e-5)
