"""AlexNet / VGG backbones: parameter counts, LRN, and both weight loaders against NumPy.

The NumPy references below are written from the original frameworks' definitions, not
from keras_ser's code: Caffe's AlexNet runs channels-last on the ``bvlc_alexnet.npy``
arrays as stored (grouped convolution = split the input channels and the kernels' output
channels), torchvision's AlexNet runs channels-first on the PyTorch-layout arrays with
PyTorch's (C, H, W) flatten order and ``AdaptiveAvgPool2d`` bin formula. Agreement thus
checks the name and axis mapping of each loader.
"""

import math

import keras
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from keras_ser.errors import DataError, ParameterError
from keras_ser.layers.image import (
    CAFFE_BGR_MEAN,
    TORCH_RGB_MEAN,
    TORCH_RGB_STD,
    GroupedConv2D,
    LocalResponseNormalization,
)
from keras_ser.models import backbones
from keras_ser.models.backbones import alexnet, fc7_model
from keras_ser.models.multicnn import zhang2021_cnn2d

CAFFE_SHAPES = {
    "conv1": (11, 11, 3, 96),
    "conv2": (5, 5, 48, 256),
    "conv3": (3, 3, 256, 384),
    "conv4": (3, 3, 192, 384),
    "conv5": (3, 3, 192, 256),
    "fc6": (9216, 4096),
    "fc7": (4096, 4096),
    "fc8": (4096, 1000),
}


# ----------------------------------------------------------------------------- references
def _relu(x):
    return np.maximum(x, 0.0)


def _conv_hwc(x, w, b, stride=1, pad=0, groups=1):
    """Caffe convolution on an HWC image with an HWIO (grouped-input) kernel."""
    x = np.pad(x, ((pad, pad), (pad, pad), (0, 0)))
    kh, kw, cin_group, cout = w.shape
    cout_group = cout // groups
    outputs = []
    for g in range(groups):
        xg = x[..., g * cin_group : (g + 1) * cin_group]
        wg = w[..., g * cout_group : (g + 1) * cout_group]
        windows = sliding_window_view(xg, (kh, kw), axis=(0, 1))[::stride, ::stride]  # H W C kh kw
        outputs.append(np.tensordot(windows, wg.transpose(2, 0, 1, 3), axes=([2, 3, 4], [0, 1, 2])))
    return np.concatenate(outputs, axis=-1) + b


def _lrn_hwc(x, size=5, alpha=1e-4, beta=0.75, k=1.0):
    """Caffe LRN ACROSS_CHANNELS: alpha is divided by size."""
    channels = x.shape[-1]
    squared = x**2
    out = np.empty_like(x)
    for c in range(channels):
        lo, hi = max(0, c - size // 2), min(channels, c + size // 2 + 1)
        out[..., c] = x[..., c] / (k + alpha / size * squared[..., lo:hi].sum(-1)) ** beta
    return out


def _maxpool_hwc(x):
    return sliding_window_view(x, (3, 3), axis=(0, 1))[::2, ::2].max(axis=(-2, -1))


def caffe_alexnet_reference(image_rgb, params, upto="fc8"):
    """bvlc_alexnet forward (deploy.prototxt order) on one RGB [0, 255] HWC image."""
    x = image_rgb[..., ::-1].astype(np.float64) - np.array(CAFFE_BGR_MEAN)
    x = _maxpool_hwc(_lrn_hwc(_relu(_conv_hwc(x, *params["conv1"], stride=4))))
    x = _maxpool_hwc(_lrn_hwc(_relu(_conv_hwc(x, *params["conv2"], pad=2, groups=2))))
    x = _relu(_conv_hwc(x, *params["conv3"], pad=1))
    x = _relu(_conv_hwc(x, *params["conv4"], pad=1, groups=2))
    x = _maxpool_hwc(_relu(_conv_hwc(x, *params["conv5"], pad=1, groups=2)))
    x = x.reshape(-1)
    x = _relu(x @ params["fc6"][0] + params["fc6"][1])
    fc7 = _relu(x @ params["fc7"][0] + params["fc7"][1])
    if upto == "fc7":
        return fc7
    logits = fc7 @ params["fc8"][0] + params["fc8"][1]
    e = np.exp(logits - logits.max())
    return e / e.sum()


def _conv_chw(x, w, b, stride=1, pad=0):
    """PyTorch Conv2d on a CHW image with an (out, in, kh, kw) kernel."""
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(x, w.shape[2:], axis=(1, 2))[:, ::stride, ::stride]  # C H W kh kw
    return np.tensordot(w, windows, axes=([1, 2, 3], [0, 3, 4])) + b[:, None, None]


def _maxpool_chw(x):
    return sliding_window_view(x, (3, 3), axis=(1, 2))[:, ::2, ::2].max(axis=(-2, -1))


def _adaptive_avg_chw(x, out=6):
    """torch.nn.AdaptiveAvgPool2d: bin i spans [floor(i*H/out), ceil((i+1)*H/out))."""
    _, height, width = x.shape
    result = np.empty((x.shape[0], out, out))
    for i in range(out):
        h0, h1 = (i * height) // out, math.ceil((i + 1) * height / out)
        for j in range(out):
            w0, w1 = (j * width) // out, math.ceil((j + 1) * width / out)
            result[:, i, j] = x[:, h0:h1, w0:w1].mean(axis=(1, 2))
    return result


def torchvision_alexnet_reference(image_rgb, state, upto="fc8"):
    """torchvision.models.alexnet forward (eval mode) on one RGB [0, 255] HWC image."""
    x = (image_rgb / 255.0 - np.array(TORCH_RGB_MEAN)) / np.array(TORCH_RGB_STD)
    x = x.transpose(2, 0, 1)

    def p(key):
        return state[f"{key}.weight"].astype(np.float64), state[f"{key}.bias"].astype(np.float64)

    x = _maxpool_chw(_relu(_conv_chw(x, *p("features.0"), stride=4, pad=2)))
    x = _maxpool_chw(_relu(_conv_chw(x, *p("features.3"), pad=2)))
    x = _relu(_conv_chw(x, *p("features.6"), pad=1))
    x = _relu(_conv_chw(x, *p("features.8"), pad=1))
    x = _maxpool_chw(_relu(_conv_chw(x, *p("features.10"), pad=1)))
    x = _adaptive_avg_chw(x).reshape(-1)  # torch.flatten: (C, H, W) order
    w, b = p("classifier.1")
    x = _relu(w @ x + b)
    w, b = p("classifier.4")
    fc7 = _relu(w @ x + b)
    if upto == "fc7":
        return fc7
    w, b = p("classifier.6")
    logits = w @ fc7 + b
    e = np.exp(logits - logits.max())
    return e / e.sum()


# ----------------------------------------------------------------------------- helpers
def _random_bvlc(rng, shapes=CAFFE_SHAPES):
    params = {}
    for name, shape in shapes.items():
        fan_in = int(np.prod(shape[:-1]))
        w = rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in))
        params[name] = [w, rng.standard_normal(shape[-1], dtype=np.float32) * np.float32(0.1)]
    return params


def _save_npy_dict(path, params):
    holder = np.empty((), dtype=object)
    holder[()] = params
    np.save(path, holder, allow_pickle=True)


def _torchvision_shapes(filters, fc_units, num_classes):
    c1, c2, c3, c4, c5 = filters
    shapes = {
        "features.0": (c1, 3, 11, 11),
        "features.3": (c2, c1, 5, 5),
        "features.6": (c3, c2, 3, 3),
        "features.8": (c4, c3, 3, 3),
        "features.10": (c5, c4, 3, 3),
        "classifier.1": (fc_units[0], c5 * 36),
        "classifier.4": (fc_units[1], fc_units[0]),
        "classifier.6": (num_classes, fc_units[1]),
    }
    return shapes


def _random_torchvision(rng, shapes):
    state = {}
    for key, shape in shapes.items():
        fan_in = int(np.prod(shape[1:]))
        state[f"{key}.weight"] = rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in))
        state[f"{key}.bias"] = rng.standard_normal(shape[0], dtype=np.float32) * np.float32(0.1)
    return state


def _assert_close(actual, reference):
    scale = np.abs(reference).max()
    assert scale > 0
    np.testing.assert_allclose(actual, reference, rtol=2e-3, atol=2e-4 * scale)


# ----------------------------------------------------------------------------- tests
def test_lrn_matches_caffe_formula():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 30, (2, 3, 4, 9)).astype("float32")
    out = np.asarray(LocalResponseNormalization()(x))
    reference = np.stack([_lrn_hwc(xi.astype(np.float64)) for xi in x])
    np.testing.assert_allclose(out, reference, rtol=1e-5)
    with pytest.raises(ParameterError):
        LocalResponseNormalization(size=4)


def test_bvlc_loader_matches_numpy_caffe_forward(tmp_path):
    rng = np.random.default_rng(1)
    params = _random_bvlc(rng)
    path = tmp_path / "bvlc_alexnet.npy"
    _save_npy_dict(path, params)
    model = alexnet(1000, weights=str(path))
    # conv: k*k*(C_in/groups)*C_out + C_out, fc: in*out + out
    expected = sum(int(np.prod(s)) + s[-1] for s in CAFFE_SHAPES.values())
    assert expected == 60_965_224 == model.count_params()

    image = rng.uniform(0, 255, (227, 227, 3)).astype("float32")
    fc7_probe = keras.Model(model.input, model.get_layer("fc7").output)
    fc7 = np.asarray(fc7_probe(image[None], training=False))[0]
    reference = caffe_alexnet_reference(image, params, upto="fc7")
    assert np.count_nonzero(reference) > 100
    _assert_close(fc7, reference)
    # The file's fc8 is the model's classifier "predictions".
    np.testing.assert_array_equal(model.get_layer("predictions").kernel.numpy(), params["fc8"][0])
    probabilities = np.asarray(model(image[None], training=False))[0]
    _assert_close(probabilities, caffe_alexnet_reference(image, params))


def test_fine_tuning_head_is_not_loaded():
    filters, fc_units = (4, 8, 8, 8, 8), (8, 8)
    shapes = {
        "conv1": (11, 11, 3, 4),
        "conv2": (5, 5, 2, 8),
        "conv3": (3, 3, 8, 8),
        "conv4": (3, 3, 4, 8),
        "conv5": (3, 3, 4, 8),
        "fc6": (8, 8),
        "fc7": (8, 8),
        "fc8": (8, 1000),
    }
    params = _random_bvlc(np.random.default_rng(6), shapes)
    model = alexnet(7, input_shape=(67, 67, 3), filters=filters, fc_units=fc_units, weights=params)
    for name in ("conv2", "conv4", "fc6", "fc7"):
        np.testing.assert_array_equal(model.get_layer(name).kernel.numpy(), params[name][0])
    # The source's fc8 (1000 classes) does not fit the 7-class classifier, which stays fresh.
    assert model.get_layer("predictions").kernel.shape == (8, 7)
    image = np.random.default_rng(7).uniform(0, 255, (67, 67, 3)).astype("float32")
    probe = keras.Model(model.input, model.get_layer("fc7").output)
    _assert_close(np.asarray(probe(image[None]))[0], caffe_alexnet_reference(image, params, upto="fc7"))


def test_torchvision_loader_matches_numpy_forward_small(tmp_path):
    # Reduced widths and a 300x300 input: the last map is 8x8, so the adaptive average
    # pooling to 6x6 has overlapping bins and the fc6 row permutation is exercised.
    rng = np.random.default_rng(3)
    filters, fc_units, classes = (8, 12, 16, 12, 10), (32, 24), 5
    state = _random_torchvision(rng, _torchvision_shapes(filters, fc_units, classes))
    path = tmp_path / "alexnet_small.npz"
    np.savez(path, **state)
    model = alexnet(
        classes, variant="torchvision", input_shape=(300, 300, 3), filters=filters, fc_units=fc_units, weights=path
    )
    image = rng.uniform(0, 255, (300, 300, 3)).astype("float32")
    _assert_close(np.asarray(model(image[None], training=False))[0], torchvision_alexnet_reference(image, state))


def test_fc7_model_with_torchvision_state_dict(tmp_path):
    rng = np.random.default_rng(4)
    shapes = _torchvision_shapes((64, 192, 384, 256, 256), (4096, 4096), 1000)
    state = _random_torchvision(rng, shapes)
    path = tmp_path / "alexnet-owt.npz"
    np.savez(path, **state)
    model = fc7_model("alexnet", weights=path)
    expected = sum(int(np.prod(s)) + s[0] for key, s in shapes.items() if key != "classifier.6")
    assert expected == 61_100_840 - (4096 * 1000 + 1000) == model.count_params()
    assert "norm1" not in {layer.name for layer in model.layers}  # single tower, no LRN
    image = rng.uniform(0, 255, (227, 227, 3)).astype("float32")
    _assert_close(np.asarray(model(image[None], training=False))[0], torchvision_alexnet_reference(image, state, "fc7"))


def test_weight_errors_are_clear(tmp_path):
    with pytest.raises(ParameterError, match="no ImageNet AlexNet"):
        fc7_model("alexnet", weights="imagenet")
    with pytest.raises(DataError, match="does not exist"):
        alexnet(weights=tmp_path / "missing.npy")
    with pytest.raises(ParameterError):
        fc7_model("googlenet")
    small = alexnet(3, input_shape=(67, 67, 3), filters=(4, 8, 8, 8, 8), fc_units=(8, 8))
    bad = _random_bvlc(np.random.default_rng(5))
    with pytest.raises(DataError, match="conv1"):
        backbones.load_bvlc_alexnet_weights(small, bad)
    path = tmp_path / "partial.npz"
    np.savez(path, **{"features.0.weight": np.zeros((4, 3, 11, 11), "float32")})
    tv = alexnet(3, variant="torchvision", input_shape=(67, 67, 3), filters=(4, 8, 8, 8, 8), fc_units=(8, 8))
    with pytest.raises(DataError, match="partial.npz"):
        backbones.load_torchvision_alexnet_weights(tv, path)
    garbage = tmp_path / "garbage.npy"
    garbage.write_bytes(b"not numpy")
    with pytest.raises(DataError, match="garbage.npy"):
        backbones.load_bvlc_alexnet_weights(small, garbage)


#: bvlc_alexnet's fillers as Caffe's models/bvlc_alexnet/train_val.prototxt writes them:
#: layer -> (Gaussian kernel std, constant bias); fc8 is the layer "predictions" here.
PROTOTXT_FILLERS = {"conv1": (0.01, 0.0), "conv2": (0.01, 0.1), "conv3": (0.01, 0.0), "conv4": (0.01, 0.1),
                    "conv5": (0.01, 0.1), "fc6": (0.005, 0.1), "fc7": (0.005, 0.1), "predictions": (0.01, 0.0)}


def _initialized(initializer, seed=0):
    keras.utils.set_random_seed(seed)
    return alexnet(50, input_shape=(67, 67, 3), filters=(8, 16, 16, 16, 16), fc_units=(64, 64),
                   initializer=initializer)


def test_caffe_initializer_uses_bvlc_alexnets_fillers():
    model = _initialized("caffe")
    for name, (std, bias) in PROTOTXT_FILLERS.items():
        kernel, biases = model.get_layer(name).get_weights()
        assert kernel.size >= 1000, name  # enough draws for a 10% check of the spread
        assert np.std(kernel) == pytest.approx(std, rel=0.1), name
        assert abs(np.mean(kernel)) < 4 * std / math.sqrt(kernel.size), name
        np.testing.assert_array_equal(biases, np.full_like(biases, bias), err_msg=name)
    again = _initialized("caffe")
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)  # the seed decides the start


def test_keras_and_standard_normal_initializers():
    glorot, normal = _initialized("keras"), _initialized("standard_normal")
    for name in PROTOTXT_FILLERS:
        kernel, biases = glorot.get_layer(name).get_weights()
        fan_in, fan_out = np.prod(kernel.shape[:-1]), np.prod(kernel.shape[:-2]) * kernel.shape[-1]
        # Glorot uniform: U(-l, l) with l = sqrt(6 / (fan_in + fan_out)), std l / sqrt(3).
        assert np.std(kernel) == pytest.approx(math.sqrt(2.0 / (fan_in + fan_out)), rel=0.1), name
        kernel, normal_biases = normal.get_layer(name).get_weights()
        assert np.std(kernel) == pytest.approx(1.0, rel=0.1), name
        assert not biases.any() and not normal_biases.any(), name
    with pytest.raises(ParameterError, match="initializer must be one of keras, caffe, standard_normal"):
        alexnet(initializer="he_normal")
    with pytest.raises(ParameterError, match="takes 'keras' only"):
        zhang2021_cnn2d(7, backbone="vgg16", initializer="caffe")


def test_vgg16_fc7_model_parameter_count():
    convs = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256)]
    convs += [(256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]
    expected = sum(9 * cin * cout + cout for cin, cout in convs)
    expected += 7 * 7 * 512 * 4096 + 4096 + 4096 * 4096 + 4096
    model = fc7_model("vgg16")
    assert model.count_params() == expected
    assert model.input.shape == (None, 224, 224, 3) and model.output.shape == (None, 4096)


def test_grouped_conv_matches_keras_grouped_conv_and_its_gradients():
    import tensorflow as tf

    rng = np.random.default_rng(3)
    x = tf.constant(rng.normal(size=(2, 7, 7, 6)).astype("float32"))
    ours = GroupedConv2D(4, 3, groups=2, padding="same")
    reference = keras.layers.Conv2D(4, 3, groups=2, padding="same")
    ours.build(x.shape)
    reference.build(x.shape)
    reference.set_weights([rng.normal(size=w.shape).astype("float32") for w in reference.get_weights()])
    ours.set_weights(reference.get_weights())
    grads = []
    for layer in (ours, reference):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.sin(layer(x)))
        grads.append(tape.gradient(loss, [x] + layer.trainable_weights))
    np.testing.assert_allclose(ours(x), reference(x), rtol=1e-5, atol=1e-5)
    for mine, theirs in zip(*grads):
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-5)


def test_lrn_computes_in_float32_under_mixed_bfloat16():
    rng = np.random.default_rng(4)
    x = rng.normal(0, 30, (1, 3, 3, 9)).astype("float32")
    layer = LocalResponseNormalization(dtype="mixed_bfloat16")
    out = layer(x)
    assert out.dtype == "bfloat16"
    reference = np.stack([_lrn_hwc(xi.astype(np.float64)) for xi in x.astype("float32")])
    # Only the bfloat16 rounding of the input and the output: 8 mantissa bits each.
    np.testing.assert_allclose(np.asarray(out, "float32"), reference, rtol=2e-2)
