"""ImageNet backbones: AlexNet (Caffe and torchvision variants), VGG16/19, ResNet50.

:func:`fc7_model` is the common entry point of the deep-spectrum extractors: a model mapping
RGB images in [0, 255] to fc7 activations, with the backbone's preprocessing inside. Their
image layers live in :mod:`keras_ser.layers.image`.

Imports: Keras, NumPy, :mod:`keras_ser.layers.image` and :mod:`keras_ser.errors` only.
"""

import os
import pathlib

from keras_ser.errors import DataError, ParameterError
from keras_ser.models.backbones.alexnet import (
    alexnet,
    alexnet_layers,
    load_alexnet_weights,
    load_bvlc_alexnet_weights,
    load_torchvision_alexnet_weights,
    torchvision_to_keras,
)
from keras_ser.models.backbones.vgg import KERAS_CAFFE_BGR_MEAN, resnet50, vgg

#: File name of Caffe's ImageNet AlexNet (``bvlc_alexnet.npy``) in Keras' model cache, where
#: ``weights="imagenet"`` looks for it: Keras ships no ImageNet AlexNet to download.
ALEXNET_IMAGENET_FILE = "bvlc_alexnet.npy"


def keras_model_cache():
    """Keras' weight cache, ``$KERAS_HOME/models`` (``~/.keras/models`` by default)."""
    return pathlib.Path(os.environ.get("KERAS_HOME", pathlib.Path.home() / ".keras")).expanduser() / "models"


def resolve_weights(backbone, weights, setting="weights"):
    """A recipe's ``weights = "imagenet" | PATH | "none"`` as the backbone builders take it.

    ``"none"`` (or ``None``) is random initialisation and must be asked for: the papers
    fine-tune ImageNet weights. ``"imagenet"`` is, for AlexNet, Caffe's ``bvlc_alexnet.npy``
    in :func:`keras_model_cache`; for VGG / ResNet-50 it is passed on to
    ``keras.applications`` (downloaded or read from the same cache).

    Parameters
    ----------
    backbone : {"alexnet", "vgg16", "vgg19", "resnet50"}
    weights : str, path or None
    setting : str
        The recipe setting named in errors (``model.weights``, ``features.weights``).

    Returns
    -------
    None, "imagenet" or str
        ``None`` for random initialisation, else what the builder loads.

    Raises
    ------
    DataError
        The weight file cannot be found; the message says where to put it and that
        ``"none"`` trains from random initialisation.
    """
    if weights is None or weights == "none":
        return None
    if not isinstance(weights, (str, os.PathLike)):
        raise ParameterError(f"{setting} must be 'imagenet', a path or 'none', got {weights!r}")
    hint = f"or set {setting}=\"none\" to train from random initialisation (not the paper's setting)"
    if weights == "imagenet":
        if backbone != "alexnet":
            return "imagenet"
        path = keras_model_cache() / ALEXNET_IMAGENET_FILE
        if not path.is_file():
            raise DataError(
                f"{setting}=\"imagenet\": AlexNet's ImageNet weights (Caffe {ALEXNET_IMAGENET_FILE}) are not in "
                f"{path.parent}; put the file there, pass {setting}=PATH, {hint}"
            )
        return str(path)
    if not os.path.isfile(weights):
        raise DataError(f"{setting}: weight file {os.fspath(weights)!r} does not exist; {hint}")
    return os.fspath(weights)


#: Input side ``S`` of each fc7 backbone.
FC7_INPUT_SIZE = {"alexnet": 227, "vgg16": 224, "vgg19": 224}


def fc7_model(name, weights=None):
    """A backbone cut at fc7: ``[batch, S, S, 3]`` RGB in [0, 255] -> ``[batch, 4096]``.

    Parameters
    ----------
    name : {"alexnet", "vgg16", "vgg19"}
        ``S`` is 227 for AlexNet and 224 for VGG (:data:`FC7_INPUT_SIZE`).
    weights : None, "imagenet" or path
        ``None``: random initialisation (no pre-trained claim). ``"imagenet"``: through
        ``keras.applications`` for VGG (network or Keras cache needed); AlexNet has no
        Keras ImageNet weights and raises ``ParameterError``. A path: for AlexNet a Caffe
        ``bvlc_alexnet.npy`` (builds the Caffe variant) or a torchvision state dict as
        ``.npz`` (builds torchvision's single-tower variant, still at 227x227); for VGG a
        Keras ``.h5``/``.weights.h5`` file with top.

    Returns
    -------
    keras.Model
        fc7 is the post-ReLU activation of the second fully connected layer.

    Examples
    --------
    >>> model = fc7_model("alexnet")
    >>> model.output.shape
    (None, 4096)
    """
    if name == "alexnet":
        variant = "caffe"
        if isinstance(weights, (str, os.PathLike)) and os.fspath(weights).endswith(".npz"):
            variant = "torchvision"
        return alexnet(
            variant=variant,
            input_shape=(227, 227, 3),
            include_top=False,
            weights=weights,
            name=f"alexnet_{variant}_fc7",
        )
    if name in ("vgg16", "vgg19"):
        return vgg(name, include_top=False, weights=weights, model_name=f"{name}_fc7")
    raise ParameterError(f"fc7_model name must be one of alexnet, vgg16, vgg19; got {name!r}")


__all__ = [
    "ALEXNET_IMAGENET_FILE",
    "FC7_INPUT_SIZE",
    "KERAS_CAFFE_BGR_MEAN",
    "alexnet",
    "alexnet_layers",
    "fc7_model",
    "load_alexnet_weights",
    "load_bvlc_alexnet_weights",
    "load_torchvision_alexnet_weights",
    "keras_model_cache",
    "resolve_weights",
    "resnet50",
    "torchvision_to_keras",
    "vgg",
]
