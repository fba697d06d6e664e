"""001: multi-CNN spontaneous SER (Zhang, Tao, Chuang, Zhao, Speech Communication 2021).

Three segment-level classifiers, each trained on segments that carry their utterance's
label (Sec. 3.1), and an utterance-level path that averages the segment scores
(Sec. 2.3):

* 1D CNN on raw-wave segments (Sec. 2.2 (1), Table 1; sample lengths of Table 4);
* 2D CNN: AlexNet fine-tuned on 64x64x3 log-mel segments resized to 227x227 (Sec. 2.2
  (2), Table 2), with VGG-16 and ResNet-50 alternatives (Table 5);
* 3D CNN on 4 stacked log-mel segments (Sec. 2.2 (3), Table 3; video lengths of Table 6).

Inputs follow the ``keras_ser.frontend.FrontEnd`` presets, one segment per example:
``zhang2021_1d`` -> ``(625, 1)``; ``zhang2021_2d`` -> ``(227, 227, 3)`` images in [0, 255]
(the resize and scaling happen in the front end); ``zhang2021_3d`` -> ``(64, 64, 4, 3)``
(mel, time, segment, channel). The ``*_utterance`` models take ``[batch, segments, ...]``.

Score-level fusion (eq. 1) of the three utterance-level scores is done on predictions,
outside these models.
"""

import keras
from keras import ops

from keras_ser.errors import DataError, ParameterError
from keras_ser.layers import MaskedGlobalPooling, PaddingMask
from keras_ser.models.backbones import resolve_weights
from keras_ser.models.backbones.alexnet import alexnet_layers, load_bvlc_alexnet_weights
from keras_ser.models.backbones.vgg import resnet50, vgg
from keras_ser.models.registry import register

PAPER = "zhang2021_multicnn Zhang, Tao, Chuang, Zhao. Speech Communication 127, 2021"

#: Table 4: sample length -> number of convolution layers.
CONV_LAYERS_FOR_LENGTH = {125: 3, 625: 4, 3125: 5, 15625: 6}


# --------------------------------------------------------------------------- segment folding
@keras.saving.register_keras_serializable(package="keras_ser")
class FoldSegments(keras.layers.Layer):
    """``[batch, segments, *shape] -> [batch * segments, *shape]``, to run a segment model once.

    Examples
    --------
    >>> import numpy as np
    >>> FoldSegments()(np.zeros((2, 3, 5, 1), "float32")).shape
    TensorShape([6, 5, 1])
    """

    def call(self, inputs):
        return ops.reshape(inputs, (-1,) + tuple(inputs.shape[2:]))

    def compute_output_spec(self, inputs):
        batch = None if inputs.shape[0] is None or inputs.shape[1] is None else inputs.shape[0] * inputs.shape[1]
        return keras.KerasTensor((batch,) + tuple(inputs.shape[2:]), dtype=inputs.dtype)


@keras.saving.register_keras_serializable(package="keras_ser")
class UnfoldSegments(keras.layers.Layer):
    """``[folded [batch * segments, *out], original [batch, segments, ...]] -> [batch, segments, *out]``.

    Examples
    --------
    >>> import numpy as np
    >>> UnfoldSegments()([np.zeros((6, 4), "float32"), np.zeros((2, 3, 5), "float32")]).shape
    TensorShape([2, 3, 4])
    """

    def call(self, inputs):
        folded, original = inputs
        shape = ops.shape(original)
        return ops.reshape(folded, (shape[0], shape[1]) + tuple(folded.shape[1:]))

    def compute_output_spec(self, inputs):
        folded, original = inputs
        return keras.KerasTensor(tuple(original.shape[:2]) + tuple(folded.shape[1:]), dtype=folded.dtype)


@keras.saving.register_keras_serializable(package="keras_ser")
class CycleChannels(keras.layers.Layer):
    """Repeat the channels of ``[..., C]`` cyclically up to ``channels`` (e.g. 1 -> 3, 2 -> 3).

    Lets a 1- or 2-channel log-mel image (zhang2021_dcnn Table 1) enter a backbone whose conv1 was
    pre-trained on 3 channels: channel ``i`` of the output is input channel ``i % C``.

    Examples
    --------
    >>> import numpy as np
    >>> CycleChannels(3)(np.zeros((1, 2, 2, 2), "float32")).shape
    TensorShape([1, 2, 2, 3])
    """

    def __init__(self, channels=3, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)

    def call(self, inputs):
        have = inputs.shape[-1]
        return ops.take(inputs, [i % have for i in range(self.channels)], axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.channels,)

    def get_config(self):
        config = super().get_config()
        config.update(channels=self.channels)
        return config


def segment_average(segment_model, *, name=None):
    """Utterance-level model averaging ``segment_model``'s scores over real segments (zhang2021_multicnn Sec. 2.3).

    Parameters
    ----------
    segment_model : keras.Model
        Maps one segment ``shape`` to class scores ``[C]``.
    name : str, optional

    Returns
    -------
    keras.Model
        ``[batch, segments, *shape] -> [batch, C]``: the mean of the segment scores over
        the segments that are not all-zero padding (layer ``"segment_mean"``), so utterances
        with different segment counts can share a batch.

    Examples
    --------
    >>> seg = zhang2021_cnn1d(num_classes=3, segment_length=125)
    >>> segment_average(seg).output.shape
    (None, 3)
    """
    segments = keras.Input((None,) + tuple(segment_model.input.shape[1:]), name="segments")
    mask = PaddingMask(name="segment_mask")(segments)
    scores = segment_model(FoldSegments(name="fold_segments")(segments))
    scores = UnfoldSegments(name="unfold_segments")([scores, segments])
    mean = MaskedGlobalPooling("average", name="segment_mean")([scores, mask])
    return keras.Model(segments, mean, name=name or f"{segment_model.name}_utterance")


# --------------------------------------------------------------------------- 1D CNN
def _check_positive(name, values):
    for value in values:
        if int(value) != value or value < 1:
            raise ParameterError(f"{name} must hold positive integers, got {values!r}")


def zhang2021_cnn1d(
    num_classes=7,
    *,
    segment_length=625,
    num_conv=None,
    filters=None,
    kernel_sizes=None,
    pool_size=5,
    fc_units=(2048, 1024),
    dropout=0.5,
):
    """1D CNN on raw-wave segments (zhang2021_multicnn Sec. 2.2 (1), Table 1, Table 4).

    Conv1-4 (32, 32, 64, 64 filters of sizes 6, 5, 5, 4; stride 1), each followed by
    batch normalisation and ReLU, max-pooling (size 5) after Conv1-3, FC5 2048, FC6 1024,
    softmax. Table 4 varies the segment length with the depth: 125 -> 3, 625 -> 4,
    3125 -> 5, 15625 -> 6 conv layers ("each convolution layer is followed by a
    max-pooling layer, except that the final convolution layer is identical to a fully
    connected layer").

    Choices where the paper is silent or inconsistent (all parameters):

    * pooling stride = pool size (non-overlapping). The text says stride 1 for pooling,
      but only stride 5 makes the final conv "identical to a fully connected layer":
      625 -> 620 -> 124 -> 120 -> 24 -> 20 -> 4 -> (conv 4) 1, and likewise for every row
      of Table 4; convolutions are "valid". The choice changes the model's size: at 625
      samples (7 classes) it has 2,271,367 parameters with stride 5 and 80,390,279 with the
      stated stride 1 (conv4 then leaves 597 x 64 values for FC5's 2048 units); at 125
      samples 2,266,087 against 15,897,575, at 3125 2,292,167 against 407,042,503.
    * kernel sizes of the Table 4 variants: 6, then 5 for every middle layer, then 4
      (the Table 1 pattern, the only one that ends at length 1 for all four lengths);
      filters: the first ``n // 2`` layers 32, the others 64 (Table 1 for n = 4).
    * dropout 0.5 after FC5 and FC6 (the paper names dropout only for the 3D CNN; the
      sample-level CNNs it follows use 0.5).

    Parameters
    ----------
    num_classes : int
    segment_length : int, default 625
        Samples per segment (22.05 kHz, scaled to [-256, 256] by the front end).
    num_conv : int, optional
        Conv layers; from Table 4 when None (lengths other than Table 4's need it).
    filters, kernel_sizes : sequence of ints, optional
        Per conv layer; see above for the defaults.
    pool_size : int, default 5
    fc_units : (int, int), default (2048, 1024)
    dropout : float, default 0.5

    Returns
    -------
    keras.Model
        ``[batch, segment_length, 1] -> [batch, num_classes]`` softmax.

    Examples
    --------
    >>> model = zhang2021_cnn1d(num_classes=7)
    >>> model.input.shape, model.output.shape
    ((None, 625, 1), (None, 7))
    """
    if num_conv is None:
        if segment_length not in CONV_LAYERS_FOR_LENGTH:
            raise ParameterError(
                f"segment_length {segment_length} is not a Table 4 length {sorted(CONV_LAYERS_FOR_LENGTH)}; "
                "pass num_conv"
            )
        num_conv = CONV_LAYERS_FOR_LENGTH[segment_length]
    if num_conv < 2:
        raise ParameterError(f"num_conv must be >= 2, got {num_conv}")
    if kernel_sizes is None:
        kernel_sizes = (6,) + (5,) * (num_conv - 2) + (4,)
    if filters is None:
        filters = (32,) * (num_conv // 2) + (64,) * (num_conv - num_conv // 2)
    if len(kernel_sizes) != num_conv or len(filters) != num_conv:
        raise ParameterError(f"filters {filters} and kernel_sizes {kernel_sizes} need {num_conv} values")
    _check_positive("filters", filters)
    _check_positive("kernel_sizes", kernel_sizes)

    length = segment_length
    for index, kernel in enumerate(kernel_sizes):
        length -= kernel - 1
        if index < num_conv - 1:
            length //= pool_size
        if length < 1:
            raise ParameterError(
                f"segment_length {segment_length} is too short for kernels {kernel_sizes} with pooling {pool_size}"
            )

    inputs = keras.Input((segment_length, 1), name="waveform_segment")
    x = inputs
    for index, (count, kernel) in enumerate(zip(filters, kernel_sizes), start=1):
        x = keras.layers.Conv1D(count, kernel, name=f"conv{index}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{index}")(x)
        x = keras.layers.ReLU(name=f"relu{index}")(x)
        if index < num_conv:
            x = keras.layers.MaxPooling1D(pool_size, strides=pool_size, name=f"pool{index}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    first_fc = num_conv + 1
    for offset, units in enumerate(fc_units):
        x = keras.layers.Dense(units, activation="relu", name=f"fc{first_fc + offset}")(x)
        x = keras.layers.Dropout(dropout, name=f"drop{first_fc + offset}")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="softmax")(x)
    return keras.Model(inputs, outputs, name=f"zhang2021_cnn1d_{segment_length}")


# --------------------------------------------------------------------------- 2D CNN
def zhang2021_cnn2d(
    num_classes=7,
    *,
    backbone="alexnet",
    image_size=227,
    channels=3,
    backbone_size=None,
    weights=None,
    filters=None,
    fc_units=(4096, 4096),
    dropout=0.5,
    name=None,
):
    """2D CNN: an ImageNet CNN fine-tuned on log-mel segment images (zhang2021_multicnn Sec. 2.2 (2), Tables 2, 5).

    AlexNet (Table 2: conv1-5 of 96/256/384/384/256 filters, pool1/2/5, FC6/FC7 4096) with
    its softmax replaced by ``num_classes`` outputs; VGG-16 or ResNet-50 instead for
    Table 5. The 64x64x3 segments (static, delta, delta-delta) are resized bilinearly to
    227x227 and scaled to [0, 255] by the ``zhang2021_2d`` front end; a VGG/ResNet backbone
    resizes that image to its 224x224 inside the model.

    Parameters
    ----------
    num_classes : int
    backbone : {"alexnet", "vgg16", "resnet50"}
    image_size : int, default 227
        Side of the input image.
    channels : int, default 3
        Input channels; fewer than 3 are cycled up to 3 (:class:`CycleChannels`) so that a
        3-channel pre-trained conv1 applies (used by zhang2021_dcnn Table 1).
    backbone_size : int, optional
        Side the backbone runs at (227 AlexNet, 224 VGG/ResNet); the input is resized to it.
        Small values are for tests.
    weights : None, "none", "imagenet" or path
        The paper fine-tunes ImageNet weights (``"imagenet"``, the recipes' default: AlexNet
        from Caffe's ``bvlc_alexnet.npy`` in Keras' model cache, VGG16/ResNet50 through
        ``keras.applications``); a path loads that file; ``None`` / ``"none"`` start from
        random weights (:func:`keras_ser.models.backbones.resolve_weights`).
    filters, fc_units, dropout
        AlexNet widths (Table 2 by default) and the dropout of fc6/fc7.
    name : str, optional
        Model name (``zhang2021_cnn2d_<backbone>`` by default).

    Returns
    -------
    keras.Model
        ``[batch, image_size, image_size, channels]`` in [0, 255] -> softmax. The AlexNet
        model has layers ``conv1`` ... ``fc7`` (``fc7`` = the 4096-d segment feature used by
        feature-level fusion, Sec. 3.4.4, and by zhang2021_dcnn) and ``fc8``.

    Examples
    --------
    >>> model = zhang2021_cnn2d(num_classes=7)
    >>> model.get_layer("fc7").output.shape
    (None, 4096)
    """
    if backbone not in ("alexnet", "vgg16", "resnet50"):
        raise ParameterError(f"backbone must be alexnet, vgg16 or resnet50, got {backbone!r}")
    if channels not in (1, 2, 3):
        raise ParameterError(f"channels must be 1, 2 or 3, got {channels!r}")
    if backbone_size is None:
        backbone_size = 227 if backbone == "alexnet" else 224
    inputs = keras.Input((image_size, image_size, channels), name="image")
    x = inputs
    if channels != 3:
        x = CycleChannels(3, name="cycle_channels")(x)
    if image_size != backbone_size:
        x = keras.layers.Resizing(backbone_size, backbone_size, interpolation="bilinear", name="resize")(x)
    weights = resolve_weights(backbone, weights, "model.weights")
    if backbone == "alexnet":
        x = alexnet_layers(x, variant="caffe", filters=filters, fc_units=fc_units, dropout=dropout)
        x = keras.layers.Dropout(dropout, name="drop7")(x)
        outputs = keras.layers.Dense(num_classes, activation="softmax", name="fc8")(x)
        model = keras.Model(inputs, outputs, name=name or "zhang2021_cnn2d_alexnet")
        if weights is not None:
            load_bvlc_alexnet_weights(model, weights)
        return model
    shape = (backbone_size, backbone_size, 3)
    try:
        if backbone == "vgg16":
            net = vgg("vgg16", num_classes, input_shape=shape, weights=weights, fc_units=fc_units,
                      dropout=dropout)
        else:
            net = resnet50(num_classes, input_shape=shape, weights=weights, dropout=dropout)
    except DataError as error:
        raise DataError(f"model.weights={weights!r}: {error}; or model.weights=\"none\" to train from "
                        "random initialisation (not the paper's setting)") from error
    return keras.Model(inputs, net(x), name=name or f"zhang2021_cnn2d_{backbone}")


# --------------------------------------------------------------------------- 3D CNN
def zhang2021_cnn3d(
    num_classes=7,
    *,
    video_length=4,
    image_shape=(64, 64),
    channels=3,
    filters=(32, 32),
    kernel_sizes=((8, 8), (5, 5)),
    pool_size=(3, 3),
    fc_units=(256, 256),
    dropout=0.5,
):
    """3D CNN on ``video_length`` stacked log-mel segments (zhang2021_multicnn Sec. 2.2 (3), Tables 3, 6).

    Conv1 32 filters of [8, 8, L] (L = video length: the whole stack, Table 6), BN, ReLU,
    Pool1 [3, 3, 1]; Conv2 32 of [5, 5, 1], BN, ReLU, Pool2 [3, 3, 1]; FC3 256, FC4 256
    with dropout; softmax. The paper gives no strides or dropout rate: convolutions are
    "valid" with stride 1, pooling is non-overlapping (stride = size, as forced for the 1D
    CNN by Table 4), dropout is 0.5 after FC3 and FC4 (all parameters).

    Parameters
    ----------
    num_classes : int
    video_length : int, default 4
        Segments per stack (4, 6, 8, 10 in Table 6); Conv1's depth.
    image_shape : (int, int), default (64, 64)
        (mel bands, frames) of one segment.
    channels : int, default 3
    filters, kernel_sizes, pool_size, fc_units, dropout
        Table 3 by default.

    Returns
    -------
    keras.Model
        ``[batch, mel, frames, video_length, channels] -> [batch, num_classes]`` softmax
        (the ``zhang2021_3d`` front-end layout).

    Examples
    --------
    >>> zhang2021_cnn3d(num_classes=6).input.shape
    (None, 64, 64, 4, 3)
    """
    _check_positive("video_length", [video_length])
    inputs = keras.Input(tuple(image_shape) + (video_length, channels), name="video_segment")
    x = inputs
    pool = tuple(pool_size) + (1,)
    for index, (count, kernel) in enumerate(zip(filters, kernel_sizes), start=1):
        depth = video_length if index == 1 else 1
        kernel = tuple(kernel) + (depth,)
        after_conv = [s - k + 1 for s, k in zip(x.shape[1:4], kernel)]
        if any(s < p for s, p in zip(after_conv, pool)):
            raise ParameterError(f"image_shape {image_shape} is too small for the conv/pool sizes of Table 3")
        x = keras.layers.Conv3D(count, kernel, name=f"conv{index}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{index}")(x)
        x = keras.layers.ReLU(name=f"relu{index}")(x)
        x = keras.layers.MaxPooling3D(pool, strides=pool, name=f"pool{index}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for offset, units in enumerate(fc_units):
        x = keras.layers.Dense(units, activation="relu", name=f"fc{3 + offset}")(x)
        x = keras.layers.Dropout(dropout, name=f"drop{3 + offset}")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="softmax")(x)
    return keras.Model(inputs, outputs, name=f"zhang2021_cnn3d_{video_length}")


# --------------------------------------------------------------------------- utterance level
_SEGMENT_BUILDERS = {"1d": zhang2021_cnn1d, "2d": zhang2021_cnn2d, "3d": zhang2021_cnn3d}


def zhang2021_multicnn_utterance(num_classes=7, *, branch="1d", **segment_kwargs):
    """Utterance-level 1D/2D/3D CNN: segment model + average of the segment scores (Sec. 2.3).

    Parameters
    ----------
    num_classes : int
    branch : {"1d", "2d", "3d"}
    **segment_kwargs
        Passed to :func:`zhang2021_cnn1d` / :func:`zhang2021_cnn2d` / :func:`zhang2021_cnn3d`.

    Returns
    -------
    keras.Model
        ``[batch, segments, *segment_shape] -> [batch, num_classes]``; all-zero segments
        are padding and do not enter the mean.

    Examples
    --------
    >>> zhang2021_multicnn_utterance(7, branch="1d").input.shape
    (None, None, 625, 1)
    """
    if branch not in _SEGMENT_BUILDERS:
        raise ParameterError(f"branch must be one of {sorted(_SEGMENT_BUILDERS)}, got {branch!r}")
    segment_model = _SEGMENT_BUILDERS[branch](num_classes, **segment_kwargs)
    return segment_average(segment_model, name=f"zhang2021_multicnn_{branch}_utterance")


# --------------------------------------------------------------------------- registry
for _length, _layers in CONV_LAYERS_FOR_LENGTH.items():
    _suffix = "" if _length == 625 else f"_{_length}"
    register(
        f"zhang2021_multicnn_1d{_suffix}",
        paper=PAPER,
        table=f"Table 1; Table 4, {_length} samples, {_layers} conv",
        input=f"{_length}-sample raw-wave segment at 22.05 kHz, [{_length}, 1]",
        segment_length=_length,
    )(zhang2021_cnn1d)

register(
    "zhang2021_multicnn_2d",
    paper=PAPER,
    table="Table 2; Table 5, AlexNet",
    input="64x64x3 log-mel segment resized to 227x227x3, [0, 255]",
)(zhang2021_cnn2d)
register(
    "zhang2021_alexnet",
    paper=PAPER + "; zhang2021_dcnn Sec. 2.4.1",
    table="zhang2021_multicnn Table 2 (AlexNet fine-tuned on log-mel segments)",
    input="64x64x3 log-mel segment resized to 227x227x3, [0, 255]",
)(zhang2021_cnn2d)
for _backbone, _name in (("vgg16", "VGG-16"), ("resnet50", "ResNet-50")):
    register(
        f"zhang2021_multicnn_2d_{_backbone}",
        paper=PAPER,
        table=f"Table 5, {_name}",
        input="64x64x3 log-mel segment resized to 227x227x3 (resized to 224 inside), [0, 255]",
        backbone=_backbone,
    )(zhang2021_cnn2d)

for _length in (4, 6, 8, 10):
    _suffix = "" if _length == 4 else f"_{_length}"
    register(
        f"zhang2021_multicnn_3d{_suffix}",
        paper=PAPER,
        table=f"Table 3; Table 6, video length {_length}, Conv1 [8, 8, {_length}]",
        input=f"{_length} stacked 64x64x3 log-mel segments, [64, 64, {_length}, 3]",
        video_length=_length,
    )(zhang2021_cnn3d)

for _branch, _what in (
    ("1d", "[segments, 625, 1] raw-wave segments"),
    ("2d", "[segments, 227, 227, 3] log-mel images"),
    ("3d", "[stacks, 64, 64, 4, 3] stacked log-mel segments"),
):
    register(
        f"zhang2021_multicnn_{_branch}_utterance",
        paper=PAPER,
        table=f"Sec. 2.3 / Table 7, {_branch.upper()} CNNs (segment scores averaged)",
        input=_what,
        branch=_branch,
    )(zhang2021_multicnn_utterance)
