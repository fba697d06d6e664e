"""AlexNet in Keras, faithful to Caffe's ``bvlc_alexnet``, plus torchvision's variant.

Two AlexNets circulate with pre-trained ImageNet weights, and they differ:

``variant="caffe"`` (``bvlc_alexnet``, Krizhevsky et al. 2012, as used by zhang2021_multicnn Table 2 and
zhang2021_dcnn Sec. 2.4.1)
    227x227 BGR input minus the ImageNet channel mean; conv1 96 11x11/4 (valid); ReLU;
    local response normalisation (LRN, size 5, alpha 1e-4, beta 0.75, k 1); max-pool
    3x3/2; conv2 256 5x5 pad 2 in **2 groups**; ReLU; LRN; max-pool 3x3/2; conv3 384 3x3
    pad 1; conv4 384 3x3 pad 1 in 2 groups; conv5 256 3x3 pad 1 in 2 groups; max-pool
    3x3/2 to 6x6x256; fc6 4096, ReLU, dropout 0.5; fc7 4096, ReLU, dropout 0.5; fc8.
    60,965,224 parameters with the 1000-class fc8.

``variant="torchvision"`` (``torchvision.models.alexnet``, the "one weird trick" single tower)
    224x224 (227 also works) RGB input scaled to [0, 1] and standardised with the ImageNet
    mean/std; conv1 **64** 11x11/4 pad 2; max-pool; conv2 **192** 5x5 pad 2; max-pool;
    conv3 384; conv4 **256**; conv5 256 (all 3x3 pad 1); max-pool; **adaptive average
    pooling** to 6x6; dropout, fc6 4096, ReLU, dropout, fc7 4096, ReLU, fc8. **No groups and
    no LRN**, dropout *before* fc6/fc7. 61,100,840 parameters with the 1000-class head.

The classifier fc8 is the layer ``predictions`` of the models built here (the output layer
of every keras_ser model); the weight loaders map the source's ``fc8`` onto it. In the Caffe
variant the dropout after fc7 is the layer ``embedding`` (the input of the classifier, equal
to fc7 at inference); torchvision's classifier reads fc7 directly.

Keras ships no ImageNet AlexNet, so ``weights="imagenet"`` raises; pass a weight file
(:func:`load_bvlc_alexnet_weights`, :func:`load_torchvision_alexnet_weights`).

A network trained from scratch starts from ``initializer`` (:func:`alexnet_initializers`):
Keras' defaults (Glorot-uniform kernels, zero biases), ``bvlc_alexnet``'s own fillers
(``"caffe"``) or the standard normal that zhang2021_dcnn's Table 4 names.

Every model here takes RGB images in [0, 255]; the variant's own preprocessing (channel
order, mean, std) is the first layer, :class:`keras_ser.layers.ImagePreprocessing`.

One module on purpose: both AlexNet variants and their weight loaders map one family of
checkpoints onto one set of layer names.
"""

import os
import pickle

import keras
import numpy as np

from keras_ser.errors import DataError, ParameterError
from keras_ser.layers.image import GroupedConv2D, ImagePreprocessing, LocalResponseNormalization

_CAFFE = dict(
    filters=(96, 256, 384, 384, 256),
    groups=(1, 2, 1, 2, 2),
)
_TORCHVISION = dict(
    filters=(64, 192, 384, 256, 256),
    groups=(1, 1, 1, 1, 1),
)
_KERNELS = (11, 5, 3, 3, 3)
#: ``bvlc_alexnet``'s fillers (Caffe's models/bvlc_alexnet/train_val.prototxt): the standard
#: deviation of each Gaussian kernel and the constant bias ("non-zero biases to 0.1 instead of
#: 1 [...] found necessary for training", its readme). fc8 is the layer ``predictions``.
_CAFFE_FILLERS = {"conv1": (0.01, 0.0), "conv2": (0.01, 0.1), "conv3": (0.01, 0.0), "conv4": (0.01, 0.1),
                  "conv5": (0.01, 0.1), "fc6": (0.005, 0.1), "fc7": (0.005, 0.1), "fc8": (0.01, 0.0)}
#: What :func:`alexnet_initializers` takes.
INITIALIZERS = ("keras", "caffe", "standard_normal")
#: AlexNet layer name (fc8 is loaded into the layer ``predictions``) -> torchvision state-dict prefix.
TORCHVISION_KEYS = {
    "conv1": "features.0",
    "conv2": "features.3",
    "conv3": "features.6",
    "conv4": "features.8",
    "conv5": "features.10",
    "fc6": "classifier.1",
    "fc7": "classifier.4",
    "fc8": "classifier.6",
}
ALEXNET_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")
#: Model layer that a weight file's classifier ``fc8`` is loaded into.
HEAD_LAYER = "predictions"


def _check_variant(variant):
    if variant not in ("caffe", "torchvision"):
        raise ParameterError(f"AlexNet variant must be 'caffe' or 'torchvision', got {variant!r}")


def alexnet_initializers(layer, initializer="keras"):
    """The ``kernel_initializer`` / ``bias_initializer`` arguments of AlexNet layer ``layer``.

    Parameters
    ----------
    layer : {"conv1", ..., "conv5", "fc6", "fc7", "fc8"}
        ``"fc8"`` is the classifier (the layer ``predictions``).
    initializer : {"keras", "caffe", "standard_normal"}
        ``"keras"``: Keras' defaults, Glorot-uniform kernels and zero biases (no arguments).
        ``"caffe"``: ``bvlc_alexnet``'s Gaussian kernels, standard deviation 0.01 (0.005 for
        fc6 and fc7), and biases 0.1 in conv2, conv4, conv5, fc6 and fc7, else 0.
        ``"standard_normal"``: N(0, 1) kernels and zero biases, zhang2021_dcnn Sec. 3.3 (4)
        read literally ("randomly initialized with a standard normal distribution", Table
        4's "without pre-training"). On segment images in [0, 255] such a network's fc7
        activations average 3.5e9 and its losses 8e11-9e11 (benchmarks/alexnet_initializers.py:
        zhang2021_dcnn's stage 1 on a batch of 128 EMO-DB segments, 6 classes; Keras' defaults
        3.9-6.0 over three steps, Caffe's fillers 1.75-1.72, ln 6 = 1.79): this reading cannot
        train. zhang2021_dcnn_blstmwa_no_pretraining uses ``"caffe"``, the fillers the
        pre-trained ``bvlc_alexnet`` itself was trained from.

    Returns
    -------
    dict
        Keyword arguments for the layer's constructor (empty for ``"keras"``).

    Examples
    --------
    >>> alexnet_initializers("fc6", "caffe")["kernel_initializer"].stddev
    0.005
    >>> alexnet_initializers("conv1")
    {}
    """
    if initializer not in INITIALIZERS:
        raise ParameterError(f"AlexNet initializer must be one of {', '.join(INITIALIZERS)}, got {initializer!r}")
    if layer not in _CAFFE_FILLERS:
        raise ParameterError(f"AlexNet has no layer {layer!r}; it has {', '.join(_CAFFE_FILLERS)}")
    if initializer == "keras":
        return {}
    if initializer == "standard_normal":
        return {"kernel_initializer": keras.initializers.RandomNormal(0.0, 1.0)}
    stddev, bias = _CAFFE_FILLERS[layer]
    return {"kernel_initializer": keras.initializers.RandomNormal(0.0, stddev),
            "bias_initializer": keras.initializers.Constant(bias)}


def alexnet_layers(
    inputs,
    *,
    variant="caffe",
    filters=None,
    fc_units=(4096, 4096),
    dropout=0.5,
    preprocessing=True,
    prefix="",
    initializer="keras",
):
    """Apply AlexNet's layers from the image to fc7 (post-ReLU) on a Keras tensor.

    Parameters
    ----------
    inputs : KerasTensor
        ``[batch, S, S, 3]`` RGB images in [0, 255].
    variant : {"caffe", "torchvision"}
        See the module docstring.
    filters : sequence of 5 ints, optional
        Conv1-5 filters; the variant's when None. Small values are for tests.
    fc_units : (int, int)
        fc6 and fc7 widths (4096, 4096).
    dropout : float
        Dropout rate around fc6/fc7 (0.5 in both originals).
    preprocessing : bool
        Prepend :class:`ImagePreprocessing` of the variant.
    prefix : str
        Prefix for layer names (``conv1`` ... ``fc7``), for nesting several backbones.
    initializer : {"keras", "caffe", "standard_normal"}
        The start of a network trained from scratch (:func:`alexnet_initializers`).

    Returns
    -------
    KerasTensor
        fc7 activations ``[batch, fc_units[1]]``.
    """
    _check_variant(variant)
    spec = _CAFFE if variant == "caffe" else _TORCHVISION
    filters = tuple(spec["filters"] if filters is None else filters)
    if len(filters) != 5 or len(fc_units) != 2:
        raise ParameterError("AlexNet needs 5 conv filter counts and 2 fc widths")
    groups = spec["groups"]
    for count, group in zip(filters, groups):
        if count % group:
            raise ParameterError(f"AlexNet filters {filters} must be divisible by groups {groups}")
    if filters[0] % groups[1] and variant == "caffe":
        raise ParameterError(f"conv1 filters {filters[0]} must be divisible by conv2 groups")

    x = inputs
    if preprocessing:
        mode = "caffe" if variant == "caffe" else "torch"
        x = ImagePreprocessing(mode, name=f"{prefix}preprocessing")(x)
    for index, (count, kernel, group) in enumerate(zip(filters, _KERNELS, groups), start=1):
        if index == 1:
            if variant == "torchvision":
                x = keras.layers.ZeroPadding2D(2, name=f"{prefix}pad1")(x)
            x = keras.layers.Conv2D(count, 11, strides=4, activation="relu", name=f"{prefix}conv1",
                                    **alexnet_initializers("conv1", initializer))(x)
        else:
            x = GroupedConv2D(
                count, kernel, padding="same", groups=group, activation="relu", name=f"{prefix}conv{index}",
                **alexnet_initializers(f"conv{index}", initializer),
            )(x)
        if variant == "caffe" and index in (1, 2):
            x = LocalResponseNormalization(5, 1e-4, 0.75, 1.0, name=f"{prefix}norm{index}")(x)
        if index in (1, 2, 5):
            x = keras.layers.MaxPooling2D(3, strides=2, name=f"{prefix}pool{index}")(x)
    if variant == "torchvision":
        x = keras.layers.AdaptiveAveragePooling2D((6, 6), name=f"{prefix}avgpool")(x)
    x = keras.layers.Flatten(name=f"{prefix}flatten")(x)
    for index, units in zip((6, 7), fc_units):
        if variant == "torchvision":
            x = keras.layers.Dropout(dropout, name=f"{prefix}drop{index}")(x)
        x = keras.layers.Dense(units, activation="relu", name=f"{prefix}fc{index}",
                               **alexnet_initializers(f"fc{index}", initializer))(x)
        # The fc7 *feature* is the ReLU output; dropout after fc7 only acts on the head.
        if variant == "caffe" and index == 6:
            x = keras.layers.Dropout(dropout, name=f"{prefix}drop{index}")(x)
    return x


def alexnet(
    num_classes=1000,
    *,
    variant="caffe",
    input_shape=None,
    include_top=True,
    weights=None,
    filters=None,
    fc_units=(4096, 4096),
    dropout=0.5,
    initializer="keras",
    name=None,
):
    """Build AlexNet (Caffe ``bvlc_alexnet`` or torchvision), optionally loading weights.

    Parameters
    ----------
    num_classes : int, default 1000
        Width of the softmax layer fc8, named ``predictions``. With a pre-trained file and
        ``num_classes != 1000`` it is left freshly initialised (fine-tuning,
        zhang2021_multicnn Sec. 2.2 (2)).
    variant : {"caffe", "torchvision"}
        See the module docstring.
    input_shape : tuple, optional
        Default ``(227, 227, 3)`` for caffe and ``(224, 224, 3)`` for torchvision. Any
        ``S >= 67`` (caffe) works: the fc6 width follows from ``S``.
    include_top : bool
        If False the model ends at fc7 (post-ReLU, ``[batch, fc_units[1]]``).
    weights : None, "imagenet" or path
        ``None``: random init. A path: ``.npy`` (caffe, :func:`load_bvlc_alexnet_weights`)
        or ``.npz`` (torchvision state dict, :func:`load_torchvision_alexnet_weights`).
        ``"imagenet"`` raises ``ParameterError``: Keras has no ImageNet AlexNet.
    filters, fc_units, dropout
        Widths and dropout rate (paper values by default; small values for tests).
    initializer : {"keras", "caffe", "standard_normal"}
        The random start, before any weights are loaded (:func:`alexnet_initializers`).
    name : str, optional
        Model name; ``"alexnet"`` / ``"alexnet_torchvision"`` by default.

    Returns
    -------
    keras.Model
        ``[batch, S, S, 3]`` RGB in [0, 255] -> class probabilities (or fc7).

    Examples
    --------
    >>> model = alexnet()
    >>> model.count_params()
    60965224
    """
    _check_variant(variant)
    _check_weights_argument(weights)
    if input_shape is None:
        input_shape = (227, 227, 3) if variant == "caffe" else (224, 224, 3)
    inputs = keras.Input(tuple(input_shape), name="image")
    x = alexnet_layers(inputs, variant=variant, filters=filters, fc_units=fc_units, dropout=dropout,
                       initializer=initializer)
    if include_top:
        if variant == "caffe":
            x = keras.layers.Dropout(dropout, name="embedding")(x)
        x = keras.layers.Dense(num_classes, activation="softmax", name=HEAD_LAYER,
                               **alexnet_initializers("fc8", initializer))(x)
    default_name = "alexnet" if variant == "caffe" else "alexnet_torchvision"
    model = keras.Model(inputs, x, name=name or default_name)
    if weights is not None:
        load_alexnet_weights(model, weights, variant=variant)
    return model


def _check_weights_argument(weights):
    if weights is None:
        return
    if isinstance(weights, dict):
        return
    if weights == "imagenet":
        raise ParameterError(
            "weights='imagenet': Keras has no ImageNet AlexNet. Pass the path of a weight file: "
            "Caffe's bvlc_alexnet.npy (variant='caffe') or torchvision's alexnet state dict saved "
            "as .npz of numpy arrays (variant='torchvision')"
        )
    if not isinstance(weights, (str, os.PathLike)):
        raise ParameterError(f"weights must be None, 'imagenet' or a path, got {weights!r}")
    if not os.path.isfile(weights):
        raise DataError(f"AlexNet weight file {os.fspath(weights)!r} does not exist")


def load_alexnet_weights(model, weights, variant="caffe"):
    """Load a weight file (path or dict) into ``model`` by the variant's format."""
    if variant == "caffe":
        load_bvlc_alexnet_weights(model, weights)
    else:
        load_torchvision_alexnet_weights(model, weights)
    return model


def _read_bvlc(source):
    if isinstance(source, dict):
        return source, "<dict>"
    path = os.fspath(source)
    try:
        # The file is a pickled dict (np.save of a dict): allow_pickle is required by the format.
        data = np.load(path, allow_pickle=True, encoding="latin1")
        data = data.item() if isinstance(data, np.ndarray) else dict(data)
    except (OSError, ValueError, EOFError, pickle.UnpicklingError) as error:
        raise DataError(f"cannot read bvlc_alexnet weight file {path!r}: {error}") from error
    if not isinstance(data, dict):
        raise DataError(f"{path!r} is not a bvlc_alexnet.npy dict of layer -> [W, b]")
    return data, path


def _assign(model, layer_name, arrays, origin):
    layer = model.get_layer(layer_name)
    expected = [tuple(w.shape) for w in layer.get_weights()]
    got = [tuple(np.shape(a)) for a in arrays]
    if expected != got:
        raise DataError(
            f"{origin}: layer {layer_name!r} has weight shapes {got}, the model expects {expected}"
        )
    layer.set_weights([np.asarray(a, dtype="float32") for a in arrays])


def _model_layer_names(model):
    return {layer.name for layer in model.layers}


def _head_matches(model, shape):
    return HEAD_LAYER in _model_layer_names(model) and tuple(model.get_layer(HEAD_LAYER).kernel.shape) == shape


def _model_layer(source_name):
    return HEAD_LAYER if source_name == "fc8" else source_name


def load_bvlc_alexnet_weights(model, source):
    """Load Caffe AlexNet weights in the standard ``bvlc_alexnet.npy`` format.

    The file (converted from Caffe's ``bvlc_alexnet.caffemodel`` by caffe-tensorflow, and
    the one used by most TensorFlow AlexNet ports) is ``np.save`` of a dict
    ``layer -> [W, b]`` with keys ``conv1`` ... ``conv5``, ``fc6``, ``fc7``, ``fc8``.
    Conv kernels are HWIO with the *grouped* input channels (conv2 ``(5, 5, 48, 256)``),
    which is exactly Keras' grouped ``Conv2D`` kernel layout; fc6 rows are in the
    (height, width, channel) flatten order of a channels-last network.

    Parameters
    ----------
    model : keras.Model
        A ``variant="caffe"`` AlexNet (or one containing its ``conv1`` ... ``fc7`` layers).
    source : path or dict
        The file, or the dict it holds.

    Notes
    -----
    ``fc8`` is loaded into the layer ``predictions``, and only when that layer has 1000
    classes; otherwise it is kept as initialised (fine-tuning replaces the softmax layer,
    zhang2021_multicnn Sec. 2.2 (2)). Loading a
    ``.npy`` of pickled objects executes pickle: load only files you trust.

    Examples
    --------
    >>> model = alexnet(weights=None)
    >>> load_bvlc_alexnet_weights(model, "bvlc_alexnet.npy")  # doctest: +SKIP
    """
    data, origin = _read_bvlc(source)
    names = _model_layer_names(model)
    for source_name in ALEXNET_LAYERS:
        if _model_layer(source_name) not in names:
            continue
        if source_name not in data:
            if source_name == "fc8":
                continue
            raise DataError(f"{origin}: no entry {source_name!r} (keys: {sorted(data)})")
        arrays = list(data[source_name])
        if len(arrays) != 2:
            raise DataError(f"{origin}: entry {source_name!r} must be [W, b], got {len(arrays)} arrays")
        if source_name == "fc8" and not _head_matches(model, np.shape(arrays[0])):
            continue
        _assign(model, _model_layer(source_name), arrays, origin)
    return model


def _read_torchvision(source):
    if isinstance(source, dict):
        return source, "<dict>"
    path = os.fspath(source)
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}, path
    except (OSError, ValueError, EOFError) as error:
        raise DataError(f"cannot read torchvision AlexNet state dict {path!r}: {error}") from error


def torchvision_to_keras(state_dict, fc6_grid=(6, 6)):
    """Convert torchvision AlexNet tensors to the Keras layout, per layer name.

    Conv ``(out, in, kh, kw)`` -> HWIO; Linear ``(out, in)`` -> ``(in, out)``; fc6's input
    is reordered from PyTorch's (channel, height, width) flatten order to Keras'
    (height, width, channel).

    Parameters
    ----------
    state_dict : dict
        ``"features.0.weight"`` ... ``"classifier.6.bias"`` -> numpy arrays.
    fc6_grid : (int, int)
        Spatial size of the map flattened into fc6 (6x6 after adaptive pooling).

    Returns
    -------
    dict
        ``"conv1"`` ... ``"fc8"`` -> ``[W, b]`` (fc8 only when present).
    """
    converted = {}
    for layer_name, key in TORCHVISION_KEYS.items():
        weight_key, bias_key = f"{key}.weight", f"{key}.bias"
        if weight_key not in state_dict or bias_key not in state_dict:
            if layer_name == "fc8":
                continue
            raise DataError(f"torchvision AlexNet state dict lacks {weight_key!r} / {bias_key!r}")
        weight = np.asarray(state_dict[weight_key], dtype="float32")
        bias = np.asarray(state_dict[bias_key], dtype="float32")
        if layer_name.startswith("conv"):
            if weight.ndim != 4:
                raise DataError(f"{weight_key} must be 4-D (out, in, kh, kw), got {weight.shape}")
            weight = weight.transpose(2, 3, 1, 0)
        else:
            if weight.ndim != 2:
                raise DataError(f"{weight_key} must be 2-D (out, in), got {weight.shape}")
            if layer_name == "fc6":
                out_units, in_units = weight.shape
                rows, cols = fc6_grid
                channels = in_units // (rows * cols)
                if channels * rows * cols != in_units:
                    raise DataError(f"{weight_key} input width {in_units} is not C x {rows} x {cols}")
                weight = weight.reshape(out_units, channels, rows, cols).transpose(0, 2, 3, 1)
                weight = weight.reshape(out_units, in_units)
            weight = weight.T
        converted[layer_name] = [weight, bias]
    return converted


def load_torchvision_alexnet_weights(model, source):
    """Load torchvision's ``alexnet`` state dict into a ``variant="torchvision"`` model.

    A ``.pth`` file needs PyTorch to read; convert it once with
    ``np.savez(path, **{k: v.numpy() for k, v in torch.load(pth).items()})`` and pass the
    ``.npz`` (or pass that dict directly). Keys are torchvision's (``features.0.weight``,
    ``features.0.bias``, ... ``classifier.6.bias``).

    Parameters
    ----------
    model : keras.Model
        A ``variant="torchvision"`` AlexNet.
    source : path or dict
        ``.npz`` file or dict of numpy arrays.

    Notes
    -----
    torchvision's AlexNet is the single-tower network (64/192/384/256/256 filters, no
    groups, no LRN, adaptive average pooling, dropout before fc6/fc7), not Caffe's; it
    cannot be loaded into the Caffe variant. ``fc8`` is loaded into the layer ``predictions``,
    only when that has 1000 classes.

    Examples
    --------
    >>> model = alexnet(variant="torchvision")
    >>> load_torchvision_alexnet_weights(model, "alexnet.npz")  # doctest: +SKIP
    """
    state_dict, origin = _read_torchvision(source)
    try:
        converted = torchvision_to_keras(state_dict)
    except DataError as error:
        raise DataError(f"{origin}: {error}") from error
    names = _model_layer_names(model)
    for source_name, arrays in converted.items():
        if _model_layer(source_name) not in names:
            continue
        if source_name == "fc8" and not _head_matches(model, arrays[0].shape):
            continue
        _assign(model, _model_layer(source_name), arrays, origin)
    return model
