"""zhang2021_dcnn: DCNN-BLSTMwA (Zhang, Gou, Shang, Shen, Wu, Dai, Frontiers in Physiology 2021).

Two stages (Sec. 2.3-2.5, 3.2):

1. the DCNN, AlexNet pre-trained on ImageNet, is fine-tuned on 64x64xC log-mel segments
   (static, delta, delta-delta; C = 1, 2, 3 in Table 1) resized to 227x227, with a softmax
   over the emotions (:func:`zhang2021_dcnn`);
2. the fc7 activations (4096-d) of an utterance's segments form a sequence that goes
   through a BLSTM (128 per direction), attention pooling (eqs. 4-5) and a DNN of 512 (with
   dropout), 256 and 256 units before the softmax (:func:`zhang2021_blstm_attention_dnn`);
   Table 3's DCNN-BLSTM drops the attention.

The 2-CNN-LSTM baseline of Tables 5-6 is :func:`zhang2021_2cnn_lstm`.

Every model ends in the softmax layer ``"predictions"``, whose input is the layer
``"embedding"``: the dropout after fc7 for the DCNN, the last DNN layer for stage 2 (the
attention vector ``Z`` is the layer ``"attention"``, the BLSTM output ``"blstm"``), the
LSTM for 2-CNN-LSTM.
"""

import keras

from keras_ser.errors import ParameterError
from keras_ser.layers import AttentionPooling
from keras_ser.models.multicnn import zhang2021_cnn2d


def zhang2021_dcnn(num_classes=7, *, channels=3, image_size=227, weights=None, name=None, **alexnet_kwargs):
    """Stage 1: AlexNet fine-tuned on C-channel log-mel segment images (zhang2021_dcnn Sec. 2.4.1, Table 1).

    Conv1 96 11x11/4, max-pooling 3x3/2 after c1, c2, c5, conv2 256 5x5, conv3/4 384 3x3,
    conv5 256 3x3, fc6/fc7 4096 with ReLU, dropout after the last FC layer, softmax
    (Caffe's ``bvlc_alexnet`` with its grouped convolutions and LRN, which the paper's
    "classic Alexnet" pre-trained weights come from; see :mod:`keras_ser.models.backbones`).
    For C = 1 or 2 the channels are repeated cyclically to the 3 that conv1 expects (the
    paper does not say how; this keeps conv1's pre-trained weights usable).

    Parameters
    ----------
    num_classes : int
    channels : {1, 2, 3}, default 3
        1 = static, 2 = static + delta, 3 = + delta-delta (Table 1).
    image_size : int, default 227
    weights : None, "none", "imagenet" or path to ``bvlc_alexnet.npy``
        ``"imagenet"`` (the recipes' default) is Table 4's "with pre-training" and needs
        ``bvlc_alexnet.npy`` in Keras' model cache; ``None`` / ``"none"`` is Table 4's
        "without pre-training" (random start, from ``initializer``).
    name : str, optional
        Model name (``zhang2021_dcnn_c<channels>`` by default).
    **alexnet_kwargs
        ``initializer`` (Keras' defaults unless given: ``"caffe"`` is the start Table 4's
        row is run from, see
        :func:`keras_ser.models.backbones.alexnet.alexnet_initializers`), ``filters``,
        ``fc_units``, ``dropout``, ``backbone_size`` (small values for tests).

    Returns
    -------
    keras.Model
        ``[batch, 227, 227, C]`` in [0, 255] -> softmax ``"predictions"``; layer ``fc7``
        gives the segment features of stage 2, ``"embedding"`` is the dropout after it.

    Examples
    --------
    >>> zhang2021_dcnn(7, channels=1).input.shape
    (None, 227, 227, 1)
    """
    return zhang2021_cnn2d(
        num_classes,
        backbone="alexnet",
        image_size=image_size,
        channels=channels,
        weights=weights,
        name=name or f"zhang2021_dcnn_c{channels}",
        **alexnet_kwargs,
    )


def zhang2021_blstm_attention_dnn(
    num_classes=7,
    *,
    feature_dim=4096,
    num_segments=None,
    lstm_units=128,
    attention=True,
    dnn_units=(512, 256, 256),
    dropout=0.5,
    name=None,
):
    """Stage 2: fc7 sequence -> BLSTM -> attention -> DNN -> softmax (zhang2021_dcnn Sec. 2.4.2-2.5).

    The BLSTM has 128 cells per direction (256-d outputs ``Y``); attention pooling computes
    ``alpha_i = softmax(mu^T y_i)`` and ``Z = sum_i alpha_i y_i`` (eqs. 4-5,
    :class:`keras_ser.layers.AttentionPooling`); the DNN has 512 units with dropout, then
    256 and 256, then the softmax. Without attention (Table 3, DCNN-BLSTM) the BLSTM returns
    its final forward and backward states instead.

    Choices where the paper is silent: ReLU in the DNN (the activation it names for the
    DCNN), dropout rate 0.5, padding segments (all-zero fc7 vectors) are masked.

    Parameters
    ----------
    num_classes : int
    feature_dim : int, default 4096
        Segment feature size (AlexNet fc7).
    num_segments : int, optional
        Fixed sequence length; ``None`` (default) takes variable-length, zero-padded
        sequences (every 3 s utterance of the paper has 8 segments).
    lstm_units : int, default 128
    attention : bool, default True
        False gives DCNN-BLSTM (Table 3).
    dnn_units : sequence of int, default (512, 256, 256)
    dropout : float, default 0.5
        After the first DNN layer.
    name : str, optional
        Model name (``zhang2021_dcnn_blstmwa``, or ``zhang2021_dcnn_blstm`` without
        attention, by default).

    Returns
    -------
    keras.Model
        ``[batch, segments, feature_dim] -> [batch, num_classes]`` softmax ``"predictions"``.
        The utterance feature ``Z`` is the output of layer ``"attention"`` (or of ``"blstm"``
        without attention); ``"embedding"`` is the classifier's input, the last DNN layer
        (the dropout after it when the DNN has one layer).

    Examples
    --------
    >>> model = zhang2021_blstm_attention_dnn(7)
    >>> model.input.shape, model.output.shape
    ((None, None, 4096), (None, 7))
    """
    if not dnn_units:
        raise ParameterError("dnn_units needs at least one layer width")
    inputs = keras.Input((num_segments, feature_dim), name="segment_features")
    x = keras.layers.Masking(0.0, name="padding_mask")(inputs)
    x = keras.layers.Bidirectional(
        keras.layers.LSTM(lstm_units, return_sequences=attention), merge_mode="concat", name="blstm"
    )(x)
    if attention:
        x = AttentionPooling(name="attention")(x)
    # The classifier's input is the layer "embedding": the last DNN layer, or the dropout
    # after the first when it is the only one.
    for index, units in enumerate(dnn_units, start=1):
        final = index == len(dnn_units)
        x = keras.layers.Dense(units, activation="relu", name="embedding" if final and index > 1 else f"dnn{index}")(x)
        if index == 1:
            x = keras.layers.Dropout(dropout, name="embedding" if final else "dnn_dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    default_name = "zhang2021_dcnn_blstmwa" if attention else "zhang2021_dcnn_blstm"
    return keras.Model(inputs, outputs, name=name or default_name)


def zhang2021_2cnn_lstm(
    num_classes=7,
    *,
    num_frames=300,
    n_mels=64,
    channels=3,
    filters=(16, 32),
    kernel_size=5,
    pool_size=2,
    lstm_units=512,
    dropout=0.5,
    mel_first=False,
    name="zhang2021_2cnn_lstm",
):
    """The 2-CNN-LSTM baseline of zhang2021_dcnn (Sec. 3.3 (6), Tables 5-6).

    Two convolution layers of 16 and 32 kernels of 5x5, stride 1, each followed by
    max-pooling, on the 3-channel log-mel spectrogram; an LSTM of 512 cells with dropout
    0.5; softmax. The paper gives neither the pooling size, the padding, the activation
    nor how the conv maps enter the LSTM: 2x2 pooling, "same" padding and ReLU are used,
    and the LSTM reads the time axis with (mel x channels) features per step. The input is
    the whole 3 s utterance (300 frames of 10 ms), time first.

    Parameters
    ----------
    num_classes : int
    num_frames, n_mels, channels : int
        Input ``[num_frames, n_mels, channels]`` (300, 64, 3).
    filters, kernel_size, pool_size, lstm_units, dropout
        Paper values by default (pool size chosen).
    mel_first : bool, default False
        Take ``[n_mels, num_frames, channels]`` instead (the (mel, time, channel) layout of
        keras_ser's ``mel_segments`` front ends, which the recipe uses) and transpose it.
    name : str, default "zhang2021_2cnn_lstm"
        Model name.

    Returns
    -------
    keras.Model
        Softmax ``"predictions"`` on the LSTM's last state, the layer ``"embedding"``.

    Examples
    --------
    >>> zhang2021_2cnn_lstm(7).output.shape
    (None, 7)
    """
    if mel_first:
        inputs = keras.Input((n_mels, num_frames, channels), name="log_mel")
        x = keras.layers.Permute((2, 1, 3), name="time_first")(inputs)
    else:
        inputs = keras.Input((num_frames, n_mels, channels), name="log_mel")
        x = inputs
    for index, count in enumerate(filters, start=1):
        x = keras.layers.Conv2D(count, kernel_size, padding="same", activation="relu", name=f"conv{index}")(x)
        x = keras.layers.MaxPooling2D(pool_size, name=f"pool{index}")(x)
    steps, bands, maps = x.shape[1:]
    if bands is None or bands < 1 or (steps is not None and steps < 1):
        raise ParameterError(f"input ({num_frames}, {n_mels}) is too small for {len(filters)} poolings")
    x = keras.layers.Reshape((steps if steps is not None else -1, bands * maps), name="to_sequence")(x)
    x = keras.layers.LSTM(lstm_units, dropout=dropout, name="embedding")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)

