"""zhang2021_multicnn: multi-CNN spontaneous SER (Zhang, Tao, Chuang, Zhao, Speech Communication 2021).

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

Every model ends in the softmax layer ``"predictions"``; the layer ``"embedding"`` is the
input of that classifier (the dropout after the last fully connected layer, equal to that
layer's activations at inference: FC6 of the 1D CNN, fc7 of AlexNet / VGG, the pooled
features of ResNet-50, FC4 of the 3D CNN). The utterance-level models average the segment
scores into ``"predictions"``; their ``"embedding"`` holds the segment embeddings,
``[batch, segments, d]`` (:func:`segment_average`).
"""

import keras

from keras_ser.errors import DataError, ParameterError
from keras_ser.layers import CycleChannels, FoldSegments, MaskedGlobalPooling, PaddingMask, UnfoldSegments
from keras_ser.models.backbones import resolve_weights
from keras_ser.models.backbones.alexnet import alexnet_initializers, alexnet_layers, load_bvlc_alexnet_weights
from keras_ser.models.backbones.vgg import resnet50_layers, vgg_layers

#: Table 4: sample length -> number of convolution layers.
CONV_LAYERS_FOR_LENGTH = {125: 3, 625: 4, 3125: 5, 15625: 6}


def segment_average(segment_model, *, name=None):
    """Utterance-level model averaging ``segment_model``'s scores over real segments (zhang2021_multicnn Sec. 2.3).

    Parameters
    ----------
    segment_model : keras.Model
        Maps one segment ``shape`` to class scores ``[C]`` (layer ``"predictions"``, a
        ``Dense`` on the layer ``"embedding"``).
    name : str, optional
        Model name (``<segment model>_utterance`` by default).

    Returns
    -------
    keras.Model
        ``[batch, segments, *shape] -> [batch, C]``: the mean of the segment scores over
        the segments that are not all-zero padding (layer ``"predictions"``), so utterances
        with different segment counts can share a batch. The segment model runs as two
        nested models with its weights: up to its embedding (named as the segment model),
        whose ``[batch, segments, d]`` output is the layer ``"embedding"``, and its
        classifier (``"segment_classifier"``).

    Examples
    --------
    >>> seg = zhang2021_cnn1d(num_classes=3, segment_length=125)
    >>> segment_average(seg).output.shape
    (None, 3)
    """
    segments = keras.Input((None,) + tuple(segment_model.input.shape[1:]), name="segments")
    mask = PaddingMask(name="segment_mask")(segments)
    segment_embedding = segment_model.get_layer("embedding").output
    encoder = keras.Model(segment_model.inputs, segment_embedding, name=segment_model.name)
    embedded = keras.Input((None,) + tuple(segment_embedding.shape[1:]), name="segment_embeddings")
    classifier = keras.Model(embedded, segment_model.get_layer("predictions")(embedded), name="segment_classifier")
    x = encoder(FoldSegments(name="fold_segments")(segments))
    x = UnfoldSegments(name="embedding")([x, segments])
    scores = classifier(x)
    mean = MaskedGlobalPooling("average", name="predictions")([scores, mask])
    return keras.Model(segments, mean, name=name or f"{segment_model.name}_utterance")


# --------------------------------------------------------------------------- 1D CNN
def _fc_head(x, fc_units, dropout, num_classes, *, first):
    """FC layers ``fc<first>``, ... with ReLU and dropout, then the softmax ``"predictions"``.

    The dropout after the last FC layer, the classifier's input, is the layer ``"embedding"``.
    """
    if not fc_units:
        raise ParameterError("fc_units needs at least one layer width")
    for offset, units in enumerate(fc_units):
        x = keras.layers.Dense(units, activation="relu", name=f"fc{first + offset}")(x)
        last = offset == len(fc_units) - 1
        x = keras.layers.Dropout(dropout, name="embedding" if last else f"drop{first + offset}")(x)
    return keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)


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
    name=None,
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
    name : str, optional
        Model name (``zhang2021_cnn1d_<segment_length>`` by default).

    Returns
    -------
    keras.Model
        ``[batch, segment_length, 1] -> [batch, num_classes]`` softmax ``"predictions"``;
        ``"embedding"`` is the dropout after the last FC layer (FC6 for Table 1).

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
    outputs = _fc_head(x, fc_units, dropout, num_classes, first=num_conv + 1)
    return keras.Model(inputs, outputs, name=name or f"zhang2021_cnn1d_{segment_length}")


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
    initializer="keras",
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
        AlexNet widths (Table 2 by default; VGG's fresh fc6/fc7 for a backbone size other
        than 224) and the dropout of fc6/fc7 (and before the classifier).
    initializer : {"keras", "caffe", "standard_normal"}
        AlexNet's random start, classifier included
        (:func:`keras_ser.models.backbones.alexnet.alexnet_initializers`; neither paper
        gives one for the 2D CNN, zhang2021_dcnn's Table 4 names the standard normal).
        Other backbones take ``"keras"`` only.
    name : str, optional
        Model name (``zhang2021_cnn2d_<backbone>`` by default).

    Returns
    -------
    keras.Model
        ``[batch, image_size, image_size, channels]`` in [0, 255] -> softmax
        ``"predictions"`` (the fresh classifier replacing ImageNet's fc8), whose input, the
        dropout after fc7 (after the pooled features for ResNet-50), is ``"embedding"``.
        The AlexNet model has layers ``conv1`` ... ``fc7`` (``fc7`` = the 4096-d segment
        feature used by feature-level fusion, Sec. 3.4.4, and by zhang2021_dcnn).

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
    head_init = alexnet_initializers("fc8", initializer)
    if backbone != "alexnet" and initializer != "keras":
        raise ParameterError(f"initializer={initializer!r} is AlexNet's; the {backbone} backbone takes 'keras' only")
    if backbone_size is None:
        backbone_size = 227 if backbone == "alexnet" else 224
    inputs = keras.Input((image_size, image_size, channels), name="image")
    x = inputs
    if channels != 3:
        x = CycleChannels(3, name="cycle_channels")(x)
    if image_size != backbone_size:
        x = keras.layers.Resizing(backbone_size, backbone_size, interpolation="bilinear", name="resize")(x)
    weights = resolve_weights(backbone, weights, "model.weights")
    try:
        if backbone == "alexnet":
            x = alexnet_layers(x, variant="caffe", filters=filters, fc_units=fc_units, dropout=dropout,
                               initializer=initializer)
        elif backbone == "vgg16":
            x = vgg_layers(x, "vgg16", weights=weights, fc_units=fc_units)
        else:
            x = resnet50_layers(x, weights=weights)
    except DataError as error:
        raise DataError(f"model.weights={weights!r}: {error}; or model.weights=\"none\" to train from "
                        "random initialisation (not the paper's setting)") from error
    x = keras.layers.Dropout(dropout, name="embedding")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions", **head_init)(x)
    model = keras.Model(inputs, outputs, name=name or f"zhang2021_cnn2d_{backbone}")
    if backbone == "alexnet" and weights is not None:
        load_bvlc_alexnet_weights(model, weights)
    return model


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
    name=None,
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
    name : str, optional
        Model name (``zhang2021_cnn3d_<video_length>`` by default).

    Returns
    -------
    keras.Model
        ``[batch, mel, frames, video_length, channels] -> [batch, num_classes]`` softmax
        ``"predictions"`` (the ``zhang2021_3d`` front-end layout); ``"embedding"`` is the
        dropout after FC4.

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
    outputs = _fc_head(x, fc_units, dropout, num_classes, first=3)
    return keras.Model(inputs, outputs, name=name or f"zhang2021_cnn3d_{video_length}")


# --------------------------------------------------------------------------- utterance level
_SEGMENT_BUILDERS = {"1d": zhang2021_cnn1d, "2d": zhang2021_cnn2d, "3d": zhang2021_cnn3d}


def zhang2021_multicnn_utterance(num_classes=7, *, branch="1d", name=None, **segment_kwargs):
    """Utterance-level 1D/2D/3D CNN: segment model + average of the segment scores (Sec. 2.3).

    Parameters
    ----------
    num_classes : int
    branch : {"1d", "2d", "3d"}
    name : str, optional
        Model name (``zhang2021_multicnn_<branch>_utterance`` by default).
    **segment_kwargs
        Passed to :func:`zhang2021_cnn1d` / :func:`zhang2021_cnn2d` / :func:`zhang2021_cnn3d`.

    Returns
    -------
    keras.Model
        ``[batch, segments, *segment_shape] -> [batch, num_classes]``; all-zero segments
        are padding and do not enter the mean (:func:`segment_average`).

    Examples
    --------
    >>> zhang2021_multicnn_utterance(7, branch="1d").input.shape
    (None, None, 625, 1)
    """
    if branch not in _SEGMENT_BUILDERS:
        raise ParameterError(f"branch must be one of {sorted(_SEGMENT_BUILDERS)}, got {branch!r}")
    segment_model = _SEGMENT_BUILDERS[branch](num_classes, **segment_kwargs)
    return segment_average(segment_model, name=name or f"zhang2021_multicnn_{branch}_utterance")
