"""Registered models of zhang2021_multicnn (multi-CNN), zhang2021_dcnn (DCNN-BLSTMwA) and tzirakis2021 (semantic) through the shared helper.

Models are built tiny through overrides; parameter counts are hand counts from the layer
formulas (conv: k * C_in * C_out + C_out, batch norm: 4 C, dense: in * out + out,
LSTM: 4 (in + u + 1) u).
"""

import keras
import numpy as np
import pytest

from keras_ser import models
from keras_ser.errors import ParameterError
from model_helper import run_model_test



def _rng():
    # A fresh generator per use keeps every test's data independent of test order.
    return np.random.default_rng(0)


def _lstm(inputs, units):
    return 4 * (inputs + units + 1) * units


def _dense(inputs, units):
    return inputs * units + units


def _sparse_targets(batch, classes):
    return np.arange(batch) % classes


# ------------------------------------------------------------------------------ registry
def test_every_table_row_is_registered_with_paper_defaults():
    names = set(models.available())
    expected = {
        "zhang2021_multicnn_1d", "zhang2021_multicnn_1d_125", "zhang2021_multicnn_1d_3125",
        "zhang2021_multicnn_1d_15625", "zhang2021_multicnn_2d", "zhang2021_alexnet",
        "zhang2021_multicnn_2d_vgg16", "zhang2021_multicnn_2d_resnet50", "zhang2021_multicnn_3d",
        "zhang2021_multicnn_3d_6", "zhang2021_multicnn_3d_8", "zhang2021_multicnn_3d_10",
        "zhang2021_multicnn_1d_utterance", "zhang2021_multicnn_2d_utterance", "zhang2021_multicnn_3d_utterance",
        "zhang2021_dcnn", "zhang2021_dcnn_c1", "zhang2021_dcnn_c2", "zhang2021_dcnn_blstmwa",
        "zhang2021_dcnn_blstm", "zhang2021_2cnn_lstm", "tzirakis2021_semantic", "tzirakis2021_semantic_concat",
        "tzirakis2021_semantic_code", "tzirakis2021_semantic_only", "tzirakis2021_paralinguistic",
    }
    assert expected <= names
    for name in expected:
        entry = models.info(name)
        paper = ("tzirakis2021" if name.startswith("tzirakis2021") else
                 "zhang2021_dcnn" if name.startswith(("zhang2021_dcnn", "zhang2021_2cnn")) else "zhang2021_multicnn")
        assert entry.paper.split()[0] == paper and entry.table and entry.input


@pytest.mark.parametrize(
    "name, length, flat",
    # Table 4: the last conv leaves one position of 64 channels for every row.
    [("zhang2021_multicnn_1d_125", 125, 64), ("zhang2021_multicnn_1d", 625, 64),
     ("zhang2021_multicnn_1d_3125", 3125, 64), ("zhang2021_multicnn_1d_15625", 15625, 64)],
)
def test_1d_cnn_table4_geometry(name, length, flat):
    model = models.build(name, num_classes=7)
    assert model.input.shape == (None, length, 1)
    assert model.get_layer("flatten").output.shape == (None, flat)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv1D)]
    assert len(convs) == {125: 3, 625: 4, 3125: 5, 15625: 6}[length]
    if length == 625:  # Table 1
        assert [c.filters for c in convs] == [32, 32, 64, 64]
        assert [c.kernel_size[0] for c in convs] == [6, 5, 5, 4]
        assert [model.get_layer(n).units for n in ("fc5", "fc6")] == [2048, 1024]


def test_3d_cnn_table3_and_table6_geometry():
    for length in (4, 6, 8, 10):
        name = "zhang2021_multicnn_3d" + ("" if length == 4 else f"_{length}")
        model = models.build(name, num_classes=6)
        assert model.input.shape == (None, 64, 64, length, 3)
        assert model.get_layer("conv1").kernel.shape == (8, 8, length, 3, 32)
        assert model.get_layer("conv2").kernel.shape == (5, 5, 1, 32, 32)
        # 64 -> 57 -> 19 -> 15 -> 5 (valid convs, non-overlapping 3x3 pooling)
        assert model.get_layer("flatten").output.shape == (None, 5 * 5 * 32)
        assert [model.get_layer(n).units for n in ("fc3", "fc4")] == [256, 256]


def test_zhang2021_dcnn_defaults():
    head = models.build("zhang2021_dcnn_blstmwa", num_classes=7)
    lstm = 2 * _lstm(4096, 128)
    expected = lstm + 256 + _dense(256, 512) + _dense(512, 256) + _dense(256, 256) + _dense(256, 7)
    assert head.count_params() == expected
    assert head.input.shape == (None, None, 4096)
    dcnn = models.build("zhang2021_dcnn_c1", num_classes=7)
    assert dcnn.input.shape == (None, 227, 227, 1) and dcnn.get_layer("fc7").output.shape == (None, 4096)
    assert dcnn.count_params() == 60_965_224 - 4096 * 1000 - 1000 + _dense(4096, 7)
    baseline = models.build("zhang2021_2cnn_lstm", num_classes=7)
    assert baseline.get_layer("conv1").kernel.shape == (5, 5, 3, 16)
    assert baseline.get_layer("conv2").kernel.shape == (5, 5, 16, 32)
    assert baseline.get_layer("embedding").units == 512 and baseline.get_layer("embedding").dropout == 0.5


def test_tzirakis2021_settings():
    paper = models.build("tzirakis2021_semantic")
    code = models.build("tzirakis2021_semantic_code")
    assert [paper.get_layer(f"conv{i}").filters for i in (1, 2, 3)] == [50, 125, 125]
    assert [code.get_layer(f"conv{i}").filters for i in (1, 2, 3)] == [50, 125, 250]
    # 2205 -> 220 -> 44 -> 8 positions per 0.1 s frame
    assert paper.get_layer("paralinguistic").output.shape == (None, None, 8 * 125)
    assert code.get_layer("paralinguistic").output.shape == (None, None, 8 * 250)
    assert paper.get_layer("fusion").units == code.get_layer("fusion").units == 1024
    assert paper.get_layer("embedding").units == code.get_layer("embedding").units == 256
    assert code.get_layer("fusion").branch_units == 512
    with pytest.raises(ParameterError):
        models.build("tzirakis2021_semantic", fusion="sum")


# ------------------------------------------------------------------------------ shared test
def test_multicnn_1d(tmp_path):
    filters, kernels, fc = (2, 3, 4), (6, 5, 4), (8, 6)
    x = _rng().uniform(-256, 256, (4, 125, 1)).astype("float32")
    expected = sum(k * cin * cout + cout + 4 * cout for k, cin, cout in zip(kernels, (1,) + filters[:-1], filters))
    expected += _dense(4, 8) + _dense(8, 6) + _dense(6, 3)
    run_model_test(
        "zhang2021_multicnn_1d_125", input_data=x, targets=_sparse_targets(4, 3), expected_output_shape=(4, 3),
        overrides=dict(filters=filters, fc_units=fc), num_classes=3, expected_params=expected, tmp_path=tmp_path,
    )


def test_multicnn_1d_utterance_masks_padding_segments(tmp_path):
    overrides = dict(segment_length=125, filters=(2, 3, 4), fc_units=(8, 6))
    x = _rng().uniform(-256, 256, (2, 3, 125, 1)).astype("float32")
    padded = np.concatenate([x, np.zeros((2, 2, 125, 1), "float32")], axis=1)
    model = run_model_test(
        "zhang2021_multicnn_1d_utterance", input_data=x, targets=_sparse_targets(2, 3),
        expected_output_shape=(2, 3), overrides=overrides, num_classes=3, tmp_path=tmp_path,
        padding={"layer": "predictions", "padded_input": padded},
    )
    # The utterance score is the mean of the segment model's scores (zhang2021_multicnn Sec. 2.3).
    segments = keras.ops.convert_to_tensor(x.reshape(6, 125, 1))
    segment_embeddings = np.asarray(model.get_layer("zhang2021_cnn1d_125")(segments, training=False))
    segment_embeddings = segment_embeddings.reshape(2, 3, 6)
    per_segment = np.asarray(model.get_layer("segment_classifier")(segment_embeddings))
    embedding = keras.Model(model.input, model.get_layer("embedding").output)
    np.testing.assert_allclose(np.asarray(embedding(x)), segment_embeddings, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(model(padded, training=False)), per_segment.mean(1), rtol=1e-5, atol=1e-6)


def test_multicnn_2d_alexnet(tmp_path):
    filters, fc = (4, 8, 8, 8, 8), (8, 8)
    # Caffe AlexNet at 67x67: conv1 11/4 -> 15, pools -> 7, 3, 1; grouped conv2/4/5 (2 groups)
    expected = (11 * 11 * 3 * 4 + 4) + (25 * 2 * 8 + 8) + (9 * 8 * 8 + 8) + 2 * (9 * 4 * 8 + 8)
    expected += _dense(8, 8) + _dense(8, 8) + _dense(8, 3)
    x = _rng().uniform(0, 255, (2, 67, 67, 3)).astype("float32")
    run_model_test(
        "zhang2021_multicnn_2d", input_data=x, targets=_sparse_targets(2, 3), expected_output_shape=(2, 3),
        overrides=dict(image_size=67, backbone_size=67, filters=filters, fc_units=fc), num_classes=3,
        expected_params=expected, learning_rate=1e-4, tmp_path=tmp_path,
    )


def test_multicnn_2d_utterance(tmp_path):
    overrides = dict(image_size=67, filters=(4, 8, 8, 8, 8), fc_units=(8, 8), backbone_size=67, dropout=0.0)
    x = _rng().uniform(0, 255, (2, 2, 67, 67, 3)).astype("float32")
    padded = np.concatenate([x, np.zeros((2, 1, 67, 67, 3), "float32")], axis=1)
    run_model_test(
        "zhang2021_multicnn_2d_utterance", input_data=x, targets=_sparse_targets(2, 3), expected_output_shape=(2, 3),
        overrides=overrides, num_classes=3, tmp_path=tmp_path, train_steps=5, learning_rate=1e-4,
        padding={"layer": "predictions", "padded_input": padded},
    )


def test_multicnn_2d_vgg16(tmp_path):
    x = _rng().uniform(0, 255, (2, 40, 40, 3)).astype("float32")
    # VGG16 conv base (keras.applications, 13 convs) at 32x32 -> 1x1x512, fresh fc1/fc2 of 8.
    convs = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256)]
    convs += [(256, 512)] + [(512, 512)] * 5
    expected = sum(9 * cin * cout + cout for cin, cout in convs) + _dense(512, 8) + _dense(8, 8) + _dense(8, 3)
    model = run_model_test(
        "zhang2021_multicnn_2d_vgg16", input_data=x, targets=_sparse_targets(2, 3), expected_output_shape=(2, 3),
        overrides=dict(image_size=40, backbone_size=32, fc_units=(8, 8)), num_classes=3, train_steps=2,
        learning_rate=1e-5, expected_params=expected, tmp_path=tmp_path,
    )
    assert model.get_layer("resize").output.shape == (None, 32, 32, 3)


def test_multicnn_2d_resnet50_builds():
    # ResNet-50 cannot be made small (keras.applications): build + forward only; the
    # training / save checks of the shared helper run on the other 2D backbones.
    model = models.build("zhang2021_multicnn_2d_resnet50", num_classes=3, image_size=40, backbone_size=32)
    resnet = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg")
    assert model.count_params() == resnet.count_params() + _dense(2048, 3)
    probabilities = np.asarray(model(_rng().uniform(0, 255, (2, 40, 40, 3)).astype("float32")))
    assert probabilities.shape == (2, 3)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)


def test_multicnn_3d(tmp_path):
    overrides = dict(image_shape=(20, 20), filters=(2, 3), kernel_sizes=((4, 4), (3, 3)), fc_units=(6, 5))
    # 20x20x6 -> conv 4x4x6 -> 17x17x1 -> pool 3 -> 5x5 -> conv 3x3 -> 3x3 -> pool 3 -> 1x1 (x 3 maps)
    expected = (4 * 4 * 6 * 3 * 2 + 2 + 8) + (3 * 3 * 1 * 2 * 3 + 3 + 12)
    expected += _dense(3, 6) + _dense(6, 5) + _dense(5, 3)
    x = _rng().normal(size=(4, 20, 20, 6, 3)).astype("float32")
    run_model_test(
        "zhang2021_multicnn_3d_6", input_data=x, targets=_sparse_targets(4, 3), expected_output_shape=(4, 3),
        overrides=overrides, num_classes=3, expected_params=expected, tmp_path=tmp_path,
    )


def test_multicnn_3d_utterance(tmp_path):
    overrides = dict(image_shape=(20, 20), filters=(2, 3), kernel_sizes=((4, 4), (3, 3)), fc_units=(6, 5))
    x = _rng().normal(size=(2, 3, 20, 20, 4, 3)).astype("float32")
    padded = np.concatenate([x, np.zeros((2, 2, 20, 20, 4, 3), "float32")], axis=1)
    run_model_test(
        "zhang2021_multicnn_3d_utterance", input_data=x, targets=_sparse_targets(2, 3), expected_output_shape=(2, 3),
        overrides=overrides, num_classes=3, tmp_path=tmp_path,
        padding={"layer": "predictions", "padded_input": padded},
    )


@pytest.mark.parametrize("name, channels, initializer", [("zhang2021_dcnn_c1", 1, "keras"),
                                                         ("zhang2021_dcnn_c2", 2, "caffe")])
def test_dcnn_channels(name, channels, initializer, tmp_path):
    overrides = dict(image_size=67, backbone_size=67, filters=(4, 8, 8, 8, 8), fc_units=(8, 8),
                     initializer=initializer)
    expected = (11 * 11 * 3 * 4 + 4) + (25 * 2 * 8 + 8) + (9 * 8 * 8 + 8) + 2 * (9 * 4 * 8 + 8)
    expected += _dense(8, 8) + _dense(8, 8) + _dense(8, 4)
    x = _rng().uniform(0, 255, (2, 67, 67, channels)).astype("float32")
    model = run_model_test(
        name, input_data=x, targets=_sparse_targets(2, 4), expected_output_shape=(2, 4), overrides=overrides,
        num_classes=4, expected_params=expected, tmp_path=tmp_path, train_steps=3, learning_rate=1e-4,
    )
    if channels < 3:
        cycled = np.asarray(model.get_layer("cycle_channels")(x))
        np.testing.assert_array_equal(cycled, x[..., [i % channels for i in range(3)]])


@pytest.mark.parametrize("name", ["zhang2021_dcnn_blstmwa", "zhang2021_dcnn_blstm"])
def test_dcnn_blstm_heads(name, tmp_path):
    overrides = dict(feature_dim=6, lstm_units=4, dnn_units=(8, 5, 5))
    attention = name.endswith("wa")
    expected = 2 * _lstm(6, 4) + (8 if attention else 0) + _dense(8, 8) + _dense(8, 5) + _dense(5, 5) + _dense(5, 3)
    x = np.abs(_rng().normal(size=(3, 4, 6))).astype("float32")  # fc7 is post-ReLU
    padded = np.concatenate([x, np.zeros((3, 3, 6), "float32")], axis=1)
    run_model_test(
        name, input_data=x, targets=_sparse_targets(3, 3), expected_output_shape=(3, 3), overrides=overrides,
        num_classes=3, expected_params=expected, tmp_path=tmp_path,
        padding={"layer": "attention" if attention else "blstm", "padded_input": padded},
    )


def test_2cnn_lstm(tmp_path):
    overrides = dict(num_frames=12, n_mels=8, filters=(2, 3), kernel_size=3, lstm_units=4)
    # 12x8 -> pool 6x4 -> pool 3x2: 3 steps of 2 * 3 = 6 features
    expected = (9 * 3 * 2 + 2) + (9 * 2 * 3 + 3) + _lstm(6, 4) + _dense(4, 3)
    x = _rng().normal(size=(3, 12, 8, 3)).astype("float32")
    run_model_test(
        "zhang2021_2cnn_lstm", input_data=x, targets=_sparse_targets(3, 3), expected_output_shape=(3, 3),
        overrides=overrides, num_classes=3, expected_params=expected, tmp_path=tmp_path,
    )


_SMALL_TZIRAKIS = dict(frame_length=250, semantic_dim=5, filters=(2, 3, 4), units=6, lstm_units=4)


def _semantic_inputs(batch=2, frames=3):
    audio = _rng().normal(size=(batch, frames, 250)).astype("float32")
    words = _rng().normal(size=(batch, frames, 5)).astype("float32")
    return audio, words


def _cnn_params(filters=(2, 3, 4), kernels=(8, 6, 6)):
    return sum(k * cin * cout + cout for k, cin, cout in zip(kernels, (1,) + filters[:-1], filters))


@pytest.mark.parametrize("name", ["tzirakis2021_semantic", "tzirakis2021_semantic_concat"])
def test_semantic_fusion_models(name, tmp_path):
    audio, words = _semantic_inputs()
    targets = _rng().uniform(-1, 1, (2, 3, 3)).astype("float32")
    overrides = dict(_SMALL_TZIRAKIS)
    d_p = 4  # 250 -> 25 -> 5 -> 1 position x 4 channels
    branch = 6
    if name.endswith("concat"):
        fused = 5 + d_p
        fusion = 0
    else:
        fused = branch
        fusion = _dense(5, 6) + _dense(d_p, 6) + 6 + 3 * _dense(6, branch) + 2 * branch
    expected = _cnn_params() + fusion + _lstm(fused, 4) + _dense(4, 3)
    model = run_model_test(
        name, input_data=[audio, words], targets=targets, expected_output_shape=(2, 3, 3), overrides=overrides,
        expected_params=expected, loss="mse", tmp_path=tmp_path,
    )
    # Padded frames (all-zero audio) leave the predictions of the real frames unchanged.
    pad_audio = np.concatenate([audio, np.zeros((2, 2, 250), "float32")], axis=1)
    pad_words = np.concatenate([words, np.zeros((2, 2, 5), "float32")], axis=1)
    short = np.asarray(model([audio, words], training=False))
    long = np.asarray(model([pad_audio, pad_words], training=False))
    np.testing.assert_allclose(long[:, :3], short, rtol=1e-5, atol=1e-6)
    assert np.all(np.abs(short) <= 1.0)  # tanh outputs


@pytest.mark.parametrize("name", ["tzirakis2021_semantic_only", "tzirakis2021_paralinguistic"])
def test_single_modality_models(name, tmp_path):
    audio, words = _semantic_inputs()
    targets = _rng().uniform(-1, 1, (2, 3, 3)).astype("float32")
    # A one-modality model keeps the list structure of the two-modality one (a one-element list).
    if name.endswith("only"):
        data, expected = [words], _lstm(5, 4) + _dense(4, 3)
    else:
        data, expected = [audio], _cnn_params() + _lstm(4, 4) + _dense(4, 3)
    run_model_test(
        name, input_data=data, targets=targets, expected_output_shape=(2, 3, 3), overrides=dict(_SMALL_TZIRAKIS),
        expected_params=expected, loss="mse", tmp_path=tmp_path,
    )


def test_bad_settings_raise():
    with pytest.raises(ParameterError):
        models.build("zhang2021_multicnn_1d", segment_length=100)
    with pytest.raises(ParameterError):
        models.build("zhang2021_multicnn_1d", segment_length=30, num_conv=4)
    with pytest.raises(ParameterError):
        models.build("zhang2021_multicnn_2d", backbone="googlenet")
    with pytest.raises(ParameterError):
        models.build("zhang2021_multicnn_2d", weights=42)
    with pytest.raises(ParameterError):
        models.build("zhang2021_multicnn_3d", image_shape=(12, 12))
