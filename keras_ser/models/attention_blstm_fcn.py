"""Attention-BLSTM-FCN of Zhao et al. 2019 (zhao2019) and Zhao et al. 2018 (zhao2018).

Both systems feed one feature sequence to two parallel branches, an
attention-pooled (B)LSTM and a fully convolutional network (FCN), concatenate
the two utterance vectors and classify them with a DNN.

Variable-length input and padding
---------------------------------
The time axis may be ``None`` (``num_frames=None``).  A batch of different
lengths is right-padded along time with frames whose every value equals
``mask_value`` (default ``0.0``, the ``keras.layers.Masking`` convention; a
real log-mel frame is never exactly zero in all bands).  The models derive a
``[batch, T]`` mask from it (:class:`~keras_ser.layers.PaddingMask`): the
recurrent layers skip padded steps, the FCN zeroes them before every
convolution and pools them away (:mod:`keras_ser.layers.masking`), and every
attention or global pooling gives them zero weight.  In inference mode the
``"embedding"`` output is therefore the same for a padded and an unpadded
batch.  ``mask_value=None`` switches masking off.
"""

import keras

from keras_ser.errors import ParameterError
from keras_ser.layers import (
    BLSTM,
    ApplyPaddingMask,
    AttentionPooling,
    DimensionShuffle,
    MaskedGlobalPooling,
    MaskedMaxPooling2D,
    PaddingMask,
    ScaledAttentionPooling,
)

__all__ = ["zhao2018_attention_blstm_fcn", "zhao2019_attention_blstm_fcn"]


def _check_positive_int(value, what, allow_none=False):
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ParameterError(f"{what} must be a positive int{' or None' if allow_none else ''}, got {value!r}")


def _check_int_tuple(values, what, allow_empty=False):
    values = tuple(values)
    if not values and not allow_empty:
        raise ParameterError(f"{what} must not be empty")
    for v in values:
        _check_positive_int(v, f"each entry of {what}")
    return values


def _check_rate(value, what):
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value < 1.0:
        raise ParameterError(f"{what} must be in [0, 1), got {value!r}")


def _check_choice(value, what, choices):
    if value not in choices:
        raise ParameterError(f"{what} must be one of {choices}, got {value!r}")


def _recurrent_stack(x, mask, *, layers, units, bidirectional, states, projection, prefix):
    """``layers`` (B)LSTM layers returning sequences; the mask follows implicitly after the first."""
    for i in range(layers):
        name = f"{prefix}_{i + 1}"
        if bidirectional:
            layer = BLSTM(units, states=states, output_units=2 * units if projection else None, name=name)
        else:
            layer = keras.layers.LSTM(units, return_sequences=True, name=name)
        x = layer(x, mask=mask) if i == 0 else layer(x)
    return x


def _sequence_pooling(x, mask, pooling, name):
    """Pool ``[batch, steps, d]``; ``mask`` is the steps' padding mask (``None``: all real)."""
    if pooling == "attention":
        # The recurrent layers carry the padding mask implicitly.
        return AttentionPooling(name=name)(x)
    if mask is None:
        mask = PaddingMask(None, name=f"{name}_mask")(x)
    return MaskedGlobalPooling(pooling, name=name)([x, mask])


def _dnn_head(x, *, units, dropout, num_classes, prefix):
    for i, width in enumerate(units):
        x = keras.layers.Dense(width, activation="relu", name=f"{prefix}_{i + 1}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"{prefix}_dropout_{i + 1}")(x)
    return keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)


def _embedding(vectors):
    if len(vectors) == 1:
        return keras.layers.Identity(name="embedding")(vectors[0])
    return keras.layers.Concatenate(name="embedding")(vectors)


def zhao2019_attention_blstm_fcn(
    num_classes=4,
    *,
    n_mels=40,
    num_frames=500,
    mask_value=0.0,
    use_rnn=True,
    use_fcn=True,
    bidirectional=True,
    rnn_layers=2,
    rnn_units=128,
    rnn_states="hidden",
    rnn_projection=True,
    conv_filters=(64, 128, 128),
    conv_kernel_size=(3, 3),
    pool_size=(2, 2),
    conv_dropout=0.25,
    bn_momentum=0.99,
    fcn_pooling="attention",
    attention_units=None,
    attention_scale=0.3,
    dnn_units=(256,),
    dnn_dropout=0.5,
    name="zhao2019_attention_blstm_fcn",
):
    """Attention-BLSTM-FCN of zhao2019 (Sec. III, Fig. 1, Tables 5-6) and its ablations.

    Input ``[batch, num_frames, n_mels]`` log-mel (the ``"zhao2019"`` FrontEnd
    output, zhao2019's "40 x 500" spectrogram with time first).  Two branches:

    * Attention-BLSTM (Sec. III-B): ``rnn_layers`` BLSTM layers of
      ``rnn_units x 2`` cells (Sec. IV-B item 2: 128 x 2; Table 5: 1-3 layers, 2
      best), each with the output of eq. 3 (``rnn_states="hidden"``) or eq. 4
      (``"cell"``), then :class:`~keras_ser.layers.AttentionPooling` (eqs. 5-6).
    * Attention-FCN (Sec. III-C): three blocks ``Conv2D(stride 1) -> BN -> ReLU
      -> max-pool -> dropout`` with 64 / 128 / 128 filters (items 4-6), then
      :class:`~keras_ser.layers.ScaledAttentionPooling` (eqs. 7-10, lambda 0.3)
      over the ``T' x F'`` grid of 128-d vectors: the 128-d FCN output.

    The two vectors are concatenated into the layer ``"embedding"`` (the deep
    spectrum representation of Table 7; for one-branch ablations the branch
    vector itself), then a ReLU DNN and a softmax layer ``"predictions"``.

    Choices where zhao2019 is silent (all parameters): 3 x 3 kernels with "same"
    padding, 2 x 2 max-pooling, conv dropout 0.25 and one 256-unit DNN layer
    with dropout 0.5 (common practice of 2018-19 CNN-SER models; zhao2019 only says
    dropout, BN and ReLU are used, item 6); the linear map of eq. 3 keeps the
    ``2 x rnn_units`` size (``rnn_projection=False`` gives the plain Keras
    concatenation instead); the attention MLP of eq. 8 is square
    (``attention_units=None`` -> 128).

    Parameters
    ----------
    num_classes : int, default 4
        Output classes (zhao2019: 4 on IEMOCAP, 5 on FAU-AEC).
    n_mels : int, default 40
        Mel bands (Table 6: 30 / 40 / 60 / 80 / 100).
    num_frames : int or None, default 500
        Frames per input; ``None`` for variable-length input (module docstring).
    mask_value : float or None, default 0.0
        Value of padded frames; ``None`` disables masking.
    use_rnn, use_fcn : bool
        Which branches to build (ablations of Table 5).
    bidirectional : bool, default True
        BLSTM (True) or a forward LSTM of ``rnn_units`` cells (Table 5 Attention-LSTM).
    rnn_layers, rnn_units : int
        Depth and cells per direction.
    rnn_states : {"hidden", "cell"}
        States forming the BLSTM output: eq. 3 or eq. 4.
    rnn_projection : bool, default True
        Learned linear map ``W, b`` of eq. 3 / 4 (else concatenation).
    conv_filters : tuple of int
        Filters per FCN block (zhao2019: 64, 128, 128; the number of blocks follows).
    conv_kernel_size, pool_size : (int, int)
        Kernel and max-pool size along (time, frequency).
    conv_dropout, dnn_dropout : float
        Dropout rates after each FCN block / DNN layer.
    bn_momentum : float, default 0.99
        Momentum of the FCN's batch-normalisation moving statistics (zhao2019 names BN
        without settings; 0.99 is Keras' default, the zhao2019 recipes use 0.9, chosen on
        validation speakers). The moving statistics are what prediction uses, and they
        approach the data's only after about ``1 / (1 - bn_momentum)`` steps: 100 at 0.99,
        20 epochs of EMO-DB's LOSO folds at batch 100.
    fcn_pooling : {"attention", "average", "max"}
        Pooling of the FCN grid: scaled attention (eqs. 7-10) or global pooling
        (Table 5 "FCNs").
    attention_units : int, optional
        Width of ``W`` in eq. 8.
    attention_scale : float, default 0.3
        ``lambda`` of eq. 9.
    dnn_units : tuple of int
        Hidden DNN layer widths (may be empty).
    name : str
        Model name.

    Returns
    -------
    keras.Model
        ``[batch, num_frames, n_mels] -> [batch, num_classes]`` softmax.

    Examples
    --------
    >>> from keras_ser import models
    >>> model = models.build("zhao2019_attention_blstm_fcn", num_classes=4)
    >>> model.input_shape, model.get_layer("embedding").output.shape
    ((None, 500, 40), (None, 384))
    """
    _check_positive_int(num_classes, "num_classes")
    _check_positive_int(n_mels, "n_mels")
    _check_positive_int(num_frames, "num_frames", allow_none=True)
    _check_positive_int(rnn_layers, "rnn_layers")
    _check_positive_int(rnn_units, "rnn_units")
    _check_choice(rnn_states, "rnn_states", ("hidden", "cell"))
    _check_choice(fcn_pooling, "fcn_pooling", ("attention", "average", "max"))
    conv_filters = _check_int_tuple(conv_filters, "conv_filters")
    dnn_units = _check_int_tuple(dnn_units, "dnn_units", allow_empty=True)
    _check_rate(conv_dropout, "conv_dropout")
    _check_rate(dnn_dropout, "dnn_dropout")
    _check_rate(bn_momentum, "bn_momentum")
    if not (use_rnn or use_fcn):
        raise ParameterError("at least one of use_rnn / use_fcn must be True")
    if rnn_states == "cell" and not bidirectional:
        raise ParameterError("rnn_states='cell' (zhao2019 eq. 4) needs bidirectional=True")
    pool_size = tuple(pool_size)
    if use_fcn and n_mels < pool_size[1] ** len(conv_filters):
        raise ParameterError(
            f"n_mels={n_mels} is too small for {len(conv_filters)} poolings of {pool_size[1]} along frequency"
        )

    inputs = keras.Input((num_frames, n_mels), name="log_mel")
    mask = PaddingMask(mask_value, name="padding_mask")(inputs)
    vectors = []
    if use_rnn:
        sequence = _recurrent_stack(inputs, mask, layers=rnn_layers, units=rnn_units, bidirectional=bidirectional,
                                    states=rnn_states, projection=rnn_projection, prefix="blstm" if bidirectional
                                    else "lstm")
        vectors.append(AttentionPooling(name="rnn_attention")(sequence))
    if use_fcn:
        x = keras.layers.Reshape((-1, n_mels, 1), name="add_channel")(inputs)
        x = ApplyPaddingMask(name="zero_padding")([x, mask])
        grid_mask = mask
        for i, filters in enumerate(conv_filters, start=1):
            x = keras.layers.Conv2D(filters, conv_kernel_size, strides=1, padding="same", name=f"conv_{i}")(x)
            x = keras.layers.BatchNormalization(momentum=bn_momentum, name=f"bn_{i}")(x)
            x = keras.layers.ReLU(name=f"relu_{i}")(x)
            x, grid_mask = MaskedMaxPooling2D(pool_size, name=f"pool_{i}")([x, grid_mask])
            if conv_dropout:
                x = keras.layers.Dropout(conv_dropout, name=f"conv_dropout_{i}")(x)
        if fcn_pooling == "attention":
            fcn_vector = ScaledAttentionPooling(attention_units, scale=attention_scale, name="fcn_attention")(
                x, mask=grid_mask)
        else:
            fcn_vector = MaskedGlobalPooling(fcn_pooling, name="fcn_pooling")([x, grid_mask])
        vectors.append(fcn_vector)
    embedding = _embedding(vectors)
    outputs = _dnn_head(embedding, units=dnn_units, dropout=dnn_dropout, num_classes=num_classes, prefix="dnn")
    return keras.Model(inputs, outputs, name=name)


def zhao2018_attention_blstm_fcn(
    num_classes=4,
    *,
    num_features=120,
    num_frames=None,
    mask_value=0.0,
    use_rnn=True,
    use_fcn=True,
    bidirectional=True,
    dimension_shuffle=True,
    shuffle_frames=157,
    rnn_units=64,
    rnn_pooling="attention",
    rnn_dropout=0.5,
    conv_filters=(128, 64),
    conv_kernel_sizes=(8, 5),
    dnn_units=(128,),
    dnn_dropout=0.5,
    name="zhao2018_attention_blstm_fcn",
):
    """Attention-BLSTM-FCN of zhao2018 (Sec. 3.3-3.4, Fig. 1, Tables 2-4) and its baselines.

    Input ``[batch, num_frames, num_features]`` frame features.  zhao2018 used 743
    PCA-whitened YAAFE features per frame (Sec. 4.2); keras_ser's
    ``"zhao2018"`` FrontEnd preset gives a documented substitute with 120
    values per frame (40 log-mel + deltas + delta-deltas), hence the default
    ``num_features=120`` (pass 743 for real YAAFE features).

    * FCN branch (Sec. 3.3-3.4): two temporal convolution blocks
      ``Conv1D -> BN -> ReLU`` with 128 and 64 filters, then global average
      pooling over time.
    * BLSTM branch (Sec. 3.4): dimension shuffle
      (:class:`~keras_ser.layers.DimensionShuffle`: the recurrence runs along
      the feature axis, each step being one feature's series of
      ``shuffle_frames`` frames), a BLSTM with 64 cells per direction,
      attention pooling (eqs. 1-2) and dropout 0.5.
    * Concatenation -> layer ``"embedding"`` -> DNN -> softmax ``"predictions"``.

    Choices where zhao2018 is silent (all parameters): kernel sizes 8 and 5 (the
    first two blocks of the FCN of Wang et al. 2017, zhao2018 ref. [23], that zhao2018's
    blocks follow); ``shuffle_frames=157`` (5 s at the preset's 32 ms hop, the
    5 s input length of zhao2019; LSTM-FCN pads every series to one fixed length);
    one ReLU DNN layer of 128 units with dropout 0.5; the BLSTM output is the
    concatenation of both directions.  Table 3's global max / average pooling
    replace the attention pooling of the BLSTM branch (the FCN branch always
    ends in global average pooling, Sec. 3.4).

    With ``dimension_shuffle=False`` the BLSTM runs along time instead and
    honours the padding mask.

    Parameters
    ----------
    num_classes : int, default 4
        Output classes (zhao2018: 4 on IEMOCAP, 8 on CHEAVD).
    num_features : int, default 120
        Features per frame (743 in the paper).
    num_frames : int or None, default None
        Frames per input; ``None`` for variable-length input (module docstring).
    mask_value : float or None, default 0.0
        Value of padded frames; ``None`` disables masking.
    use_rnn, use_fcn : bool
        Which branches to build (baselines of Table 2).
    bidirectional : bool, default True
        BLSTM (True) or forward LSTM (Table 2 Attention-LSTM).
    dimension_shuffle : bool, default True
        Run the recurrence along features on a shuffled input (zhao2018) or along time.
    shuffle_frames : int, default 157
        Frames the shuffled input is cropped / zero-padded to.
    rnn_units : int, default 64
        Cells per direction.
    rnn_pooling : {"attention", "average", "max"}
        Pooling of the recurrent outputs (Table 3).
    rnn_dropout : float, default 0.5
        Dropout after the pooling (Sec. 3.4).
    conv_filters, conv_kernel_sizes : tuple of int
        Filters and kernel size of each temporal convolution block (equal length).
    dnn_units : tuple of int
        Hidden DNN layer widths (may be empty).
    dnn_dropout : float
        Dropout after each hidden DNN layer.
    name : str
        Model name.

    Returns
    -------
    keras.Model
        ``[batch, num_frames, num_features] -> [batch, num_classes]`` softmax.

    Examples
    --------
    >>> from keras_ser import models
    >>> model = models.build("zhao2018_attention_blstm_fcn", num_classes=4)
    >>> model.input_shape, model.get_layer("embedding").output.shape
    ((None, None, 120), (None, 192))
    """
    _check_positive_int(num_classes, "num_classes")
    _check_positive_int(num_features, "num_features")
    _check_positive_int(num_frames, "num_frames", allow_none=True)
    _check_positive_int(shuffle_frames, "shuffle_frames")
    _check_positive_int(rnn_units, "rnn_units")
    _check_choice(rnn_pooling, "rnn_pooling", ("attention", "average", "max"))
    _check_rate(rnn_dropout, "rnn_dropout")
    _check_rate(dnn_dropout, "dnn_dropout")
    conv_filters = _check_int_tuple(conv_filters, "conv_filters")
    conv_kernel_sizes = _check_int_tuple(conv_kernel_sizes, "conv_kernel_sizes")
    dnn_units = _check_int_tuple(dnn_units, "dnn_units", allow_empty=True)
    if len(conv_filters) != len(conv_kernel_sizes):
        raise ParameterError(
            f"conv_filters {conv_filters} and conv_kernel_sizes {conv_kernel_sizes} must have the same length"
        )
    if not (use_rnn or use_fcn):
        raise ParameterError("at least one of use_rnn / use_fcn must be True")

    inputs = keras.Input((num_frames, num_features), name="features")
    mask = PaddingMask(mask_value, name="padding_mask")(inputs)
    vectors = []
    if use_fcn:
        x = ApplyPaddingMask(name="zero_padding")([inputs, mask])
        for i, (filters, kernel) in enumerate(zip(conv_filters, conv_kernel_sizes), start=1):
            x = keras.layers.Conv1D(filters, kernel, padding="same", name=f"conv_{i}")(x)
            x = keras.layers.BatchNormalization(name=f"bn_{i}")(x)
            x = keras.layers.ReLU(name=f"relu_{i}")(x)
            # Zeroed padding is what a "same" convolution of the unpadded input sees.
            x = ApplyPaddingMask(name=f"zero_padding_{i}")([x, mask])
        vectors.append(MaskedGlobalPooling("average", name="fcn_pooling")([x, mask]))
    if use_rnn:
        if dimension_shuffle:
            zeroed = ApplyPaddingMask(name="zero_padding_rnn")([inputs, mask])
            sequence, sequence_mask = DimensionShuffle(shuffle_frames, name="dimension_shuffle")(zeroed), None
        else:
            sequence, sequence_mask = inputs, mask
        prefix = "blstm" if bidirectional else "lstm"
        sequence = _recurrent_stack(sequence, sequence_mask, layers=1, units=rnn_units, bidirectional=bidirectional,
                                    states="hidden", projection=False, prefix=prefix)
        pooled = _sequence_pooling(sequence, sequence_mask, rnn_pooling,
                                   "rnn_attention" if rnn_pooling == "attention" else "rnn_pooling")
        if rnn_dropout:
            pooled = keras.layers.Dropout(rnn_dropout, name="rnn_dropout")(pooled)
        vectors.append(pooled)
    embedding = _embedding(vectors)
    outputs = _dnn_head(embedding, units=dnn_units, dropout=dnn_dropout, num_classes=num_classes, prefix="dnn")
    return keras.Model(inputs, outputs, name=name)
