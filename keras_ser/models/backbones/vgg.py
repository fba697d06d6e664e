"""VGG16 / VGG19 and ResNet50 through ``keras.applications``, with their preprocessing inside.

``keras.applications`` provides the ImageNet weights (downloaded by Keras on first use;
``weights="imagenet"`` therefore needs the network or Keras' cache) and accepts a path to a
Keras weight file. The preprocessing of Keras' VGG/ResNet50 weights ("caffe" mode: RGB ->
BGR, minus the ImageNet channel mean) is the model's first layer, so every model here takes
RGB images in [0, 255].
"""

import os

import keras

from keras_ser.errors import DataError, ParameterError
from keras_ser.layers.image import ImagePreprocessing

#: Channel mean (B, G, R) that ``keras.applications.vgg16.preprocess_input`` subtracts.
KERAS_CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
_APPLICATIONS = {
    "vgg16": ("VGG16", 224),
    "vgg19": ("VGG19", 224),
    "resnet50": ("ResNet50", 224),
}


def _check_weights(weights, name):
    if weights is None or weights == "imagenet":
        return
    if not isinstance(weights, (str, os.PathLike)):
        raise ParameterError(f"{name}: weights must be None, 'imagenet' or a path, got {weights!r}")
    if not os.path.isfile(weights):
        raise DataError(f"{name} weight file {os.fspath(weights)!r} does not exist")


def _application(name, **kwargs):
    """Call ``keras.applications.<name>``; a failed ImageNet download becomes a DataError."""
    constructor = getattr(keras.applications, _APPLICATIONS[name][0])
    try:
        return constructor(**kwargs)
    except Exception as error:
        if kwargs.get("weights") != "imagenet":
            raise
        # keras.utils.get_file raises a bare Exception when the download fails.
        raise DataError(
            f"{name}: Keras could not fetch the ImageNet weights ({error}); without network access "
            "put the Keras weight file in ~/.keras/models or pass weights=<path to the .h5 file>"
        ) from error


def vgg_layers(inputs, name="vgg16", *, weights=None, fc_units=(4096, 4096), imagenet_head=False):
    """Apply VGG16/VGG19 from the image to fc7 (post-ReLU) on a Keras tensor.

    Parameters
    ----------
    inputs : KerasTensor
        ``[batch, S, S, 3]`` RGB images in [0, 255]; :class:`ImagePreprocessing` is applied first.
    name : {"vgg16", "vgg19"}
    weights : None, "imagenet" or path to a Keras VGG weight file (with top).
        Pre-trained weights need ``S = 224``.
    fc_units : (int, int)
        fc6/fc7 widths of the fresh ``fc1``/``fc2`` layers built for ``S != 224`` (Keras'
        own 4096-wide ones at 224).
    imagenet_head : bool
        Also apply Keras' 1000-way ImageNet softmax (layer ``predictions``) after fc7
        (``S = 224`` only).

    Returns
    -------
    KerasTensor
        fc7 activations ``[batch, 4096]`` (Keras' ``fc2``), or the ImageNet probabilities.
    """
    if name not in ("vgg16", "vgg19"):
        raise ParameterError(f"vgg name must be 'vgg16' or 'vgg19', got {name!r}")
    _check_weights(weights, name)
    input_shape = tuple(inputs.shape[1:])
    x = ImagePreprocessing("caffe", mean=KERAS_CAFFE_BGR_MEAN, name="preprocessing")(inputs)
    if input_shape[:2] == (224, 224):
        base = _application(name, include_top=True, weights=weights, input_shape=input_shape)
        fc7 = keras.Model(base.inputs, base.get_layer("fc2").output, name=f"{name}_fc7")
        x = fc7(x)
        return base.get_layer("predictions")(x) if imagenet_head else x
    if weights is not None or imagenet_head:
        raise ParameterError(f"{name}: pre-trained weights need a 224x224 input, got {input_shape}")
    base = _application(name, include_top=False, weights=None, input_shape=input_shape)
    x = base(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(fc_units[0], activation="relu", name="fc1")(x)
    return keras.layers.Dense(fc_units[1], activation="relu", name="fc2")(x)


def vgg(
    name="vgg16",
    num_classes=1000,
    *,
    input_shape=(224, 224, 3),
    include_top=True,
    weights=None,
    fc_units=(4096, 4096),
    dropout=0.5,
    model_name=None,
):
    """VGG16/VGG19 (Simonyan & Zisserman 2015) from ``keras.applications``.

    Parameters
    ----------
    name : {"vgg16", "vgg19"}
    num_classes : int
        Softmax width. 1000 with ImageNet weights keeps Keras' ImageNet softmax (layer
        ``predictions``); any other value replaces it by a fresh ``predictions`` layer after a
        dropout layer ``embedding`` (fine-tuning, zhang2021_multicnn Table 5).
    input_shape : tuple
        ``(224, 224, 3)`` for the pre-trained fc layers. Another size (e.g. 32 for tests)
        builds the conv base of ``keras.applications`` and fresh ``fc1``/``fc2`` layers of
        ``fc_units``; it cannot take weights.
    include_top : bool
        If False the model ends at fc7 (Keras' ``fc2``, post-ReLU, 4096-d).
    weights : None, "imagenet" or path to a Keras VGG weight file (with top).
    fc_units : (int, int)
        fc6/fc7 widths of the fresh head for non-224 inputs.
    dropout : float
        Dropout before a replaced softmax layer (VGG's own training used 0.5 on fc6/fc7;
        Keras' graph has no dropout layers).
    model_name : str, optional

    Returns
    -------
    keras.Model
        RGB ``[batch, S, S, 3]`` in [0, 255] -> probabilities (or fc7).

    Examples
    --------
    >>> model = vgg("vgg16", include_top=False)  # doctest: +SKIP
    >>> model.output.shape  # doctest: +SKIP
    (None, 4096)
    """
    inputs = keras.Input(tuple(input_shape), name="image")
    imagenet_head = (include_top and num_classes == 1000 and weights is not None
                     and tuple(input_shape)[:2] == (224, 224))
    x = vgg_layers(inputs, name, weights=weights, fc_units=fc_units, imagenet_head=imagenet_head)
    if include_top and not imagenet_head:
        x = keras.layers.Dropout(dropout, name="embedding")(x)
        x = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, x, name=model_name or name)


def resnet50_layers(inputs, *, weights=None):
    """Apply ResNet-50 from the image to its 2048-d global-average-pooled features.

    Parameters
    ----------
    inputs : KerasTensor
        ``[batch, S, S, 3]`` RGB images in [0, 255] (any ``S >= 32``).
    weights : None, "imagenet" or path to a Keras ResNet50 *no-top* weight file.

    Returns
    -------
    KerasTensor
        ``[batch, 2048]``.
    """
    _check_weights(weights, "resnet50")
    x = ImagePreprocessing("caffe", mean=KERAS_CAFFE_BGR_MEAN, name="preprocessing")(inputs)
    base = _application(
        "resnet50", include_top=False, weights=weights, input_shape=tuple(inputs.shape[1:]), pooling="avg"
    )
    return base(x)


def resnet50(
    num_classes=1000,
    *,
    input_shape=(224, 224, 3),
    include_top=True,
    weights=None,
    dropout=0.0,
    model_name=None,
):
    """ResNet-50 (He et al. 2016) from ``keras.applications`` with a fresh softmax head.

    Parameters
    ----------
    num_classes : int
        Width of the new softmax layer ``predictions`` on the 2048-d global-average-pooled
        features (after a dropout layer ``embedding``).
    input_shape : tuple
        ``(224, 224, 3)`` by default; any size >= 32 works.
    include_top : bool
        If False the model ends at the 2048-d pooled features.
    weights : None, "imagenet" or path to a Keras ResNet50 *no-top* weight file.
    dropout : float
        Dropout before the new softmax (ResNet itself uses none).

    Returns
    -------
    keras.Model
        RGB ``[batch, S, S, 3]`` in [0, 255] -> probabilities.

    Examples
    --------
    >>> model = resnet50(num_classes=7)  # doctest: +SKIP
    """
    inputs = keras.Input(tuple(input_shape), name="image")
    x = resnet50_layers(inputs, weights=weights)
    if include_top:
        x = keras.layers.Dropout(dropout, name="embedding")(x)
        x = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, x, name=model_name or "resnet50")
