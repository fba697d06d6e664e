"""tzirakis2021: semantic + paralinguistic SER (Tzirakis, Nguyen, Zafeiriou, Schuller, ICASSP 2021).

Per 0.1 s frame (SEWA's label rate): a paralinguistic feature from a 1D CNN on the raw
waveform of the frame (Sec. 3.2, Table 1), a semantic feature = the aligned word vector
(Speech2Vec mapped onto Word2Vec, Sec. 3.1, computed outside the network) of the word
spoken in that frame, fusion by concatenation or by the disentangled attention of eqs. 4-7
(:mod:`keras_ser.layers.fusion`), a one-layer LSTM, and three continuous outputs per frame
(arousal, valence, liking).

Inputs: ``audio_frames`` ``[batch, T, 2205]`` (the ``tzirakis2021`` front end: 10 s
sequences of 100 frames of 2205 samples at 22.05 kHz) and ``word_vectors``
``[batch, T, d_s]``. All-zero audio frames are padding and are masked in the LSTM (a
frame without a word has a zero word vector, so the semantic network alone masks nothing;
its forward LSTM is unaffected by trailing padding anyway).

Two settings are registered: the paper's (Table 1: 50/125/125 filters) and the authors'
public code (github.com/glam-imperial/semantic_speech_emotion_recognition, ``models.py``:
250 filters in the last conv, ReLU projections, 512-unit a/v/l layers). The paper gives
neither ``d_u`` nor the LSTM size; both settings use the code's 1024 and 256.
"""

import keras

from keras_ser.errors import ParameterError
from keras_ser.layers import FoldSegments, PaddingMask, UnfoldSegments
from keras_ser.layers.fusion import DisentangledAttentionFusion

OUTPUT_NAMES = ("arousal", "valence", "liking")


def _paralinguistic_features(frames, filters, kernel_sizes, pool_sizes, dropout):
    """Table 1 CNN applied to every frame; ``[batch, T, L] -> [batch, T, d_p]``."""
    x = FoldSegments(name="fold_frames")(frames)
    x = keras.layers.Reshape((frames.shape[-1], 1), name="frame_waveform")(x)
    for index, (count, kernel, pool) in enumerate(zip(filters, kernel_sizes, pool_sizes), start=1):
        x = keras.layers.Conv1D(count, kernel, padding="same", activation="relu", name=f"conv{index}")(x)
        if x.shape[1] < pool:
            raise ParameterError(f"frame_length {frames.shape[-1]} is too short for pooling {pool_sizes}")
        x = keras.layers.MaxPooling1D(pool, strides=pool, name=f"pool{index}")(x)
        x = keras.layers.Dropout(dropout, name=f"drop{index}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    return UnfoldSegments(name="paralinguistic")([x, frames])


def tzirakis2021_semantic(
    num_outputs=3,
    *,
    frame_length=2205,
    sequence_length=None,
    semantic_dim=300,
    modalities=("semantic", "paralinguistic"),
    fusion="attention",
    filters=(50, 125, 125),
    kernel_sizes=(8, 6, 6),
    pool_sizes=(10, 5, 5),
    units=1024,
    branch_units=None,
    projection_activation=None,
    branch_activation=None,
    lstm_units=256,
    dropout=0.5,
    output_activation="tanh",
    num_classes=None,
    name=None,
):
    """Semantic + paralinguistic network of tzirakis2021 (Sec. 3, Table 1, eqs. 4-7).

    Paralinguistic extractor (Table 1): conv 8/1 with 50 channels, ReLU, max-pool 10/10;
    conv 6/1 with 125, ReLU, max-pool 5/5; conv 6/1 with 125 (250 in the authors' code),
    ReLU, max-pool 5/5; flattened per frame (2205 -> 8 positions -> ``d_p`` = 1000).
    Dropout 0.5 after each block and on the fused features ("for all layers except the
    recurrent ones", Sec. 5.1; layer ``"fusion_dropout"``, on the output of the fusion layer,
    whose inner projections have none); the LSTM has dropout 0.5 on its inputs; the output layer is linear + tanh (as in the
    code; SEWA's labels lie in [-1, 1]). Convolutions use "same" padding as in the code.

    The paper's code convolves the whole 10 s waveform and cuts the result into frames;
    here the CNN runs on each frame, so that a frame's feature depends on its own samples
    only and padded frames can be masked. The code's LSTM has peepholes and a cell clip of
    100, which Keras' LSTM lacks.

    Parameters
    ----------
    num_outputs : int, default 3
        Continuous outputs per frame (arousal, valence, liking).
    frame_length : int, default 2205
        Samples per frame (0.1 s at 22.05 kHz).
    sequence_length : int, optional
        Frames per sequence; ``None`` for variable length.
    semantic_dim : int, default 300
        ``d_s`` of the word vectors.
    modalities : tuple, default ("semantic", "paralinguistic")
        One modality alone gives the single-network rows of Table 2.
    fusion : {"attention", "concat"}
        Disentangled attention (eqs. 4-7) or concatenation (Table 3).
    filters, kernel_sizes, pool_sizes
        Table 1.
    units : int, default 1024
        ``d_u`` of eq. 4.
    branch_units, projection_activation, branch_activation
        See :class:`keras_ser.layers.fusion.DisentangledAttentionFusion`.
    lstm_units : int, default 256
    dropout : float, default 0.5
    output_activation : str, default "tanh"
    num_classes : int, optional
        ``None`` (the paper's regression network): ``num_outputs`` continuous outputs per
        frame. An integer turns it into an utterance classifier, which tzirakis2021 does
        not have (its task is continuous): the LSTM's output at the last unmasked frame
        goes through dropout and a softmax of ``num_classes`` units (``num_outputs`` and
        ``output_activation`` are then unused). The last state is the usual way to read a
        sequence with a unidirectional LSTM and keeps every layer before it as in the paper.
    name : str, optional
        Model name (``tzirakis2021_`` and the modalities' first four letters by default).

    Returns
    -------
    keras.Model
        Inputs ``[audio_frames [b, T, frame_length], word_vectors [b, T, semantic_dim]]``
        (only the used modalities), output ``[b, T, num_outputs]``, or ``[b, num_classes]``
        for a classifier (layer ``"predictions"``); the LSTM, whose output feeds it (per
        frame, or its last unmasked frame for a classifier), is the layer ``"embedding"``.

    Examples
    --------
    >>> model = tzirakis2021_semantic()
    >>> [tuple(i.shape) for i in model.inputs], model.output.shape
    ([(None, None, 2205), (None, None, 300)], (None, None, 3))
    """
    modalities = tuple(modalities)
    if not modalities or set(modalities) - {"semantic", "paralinguistic"} or len(set(modalities)) != len(modalities):
        raise ParameterError(f"modalities must be a non-empty subset of semantic, paralinguistic; got {modalities!r}")
    if fusion not in ("attention", "concat"):
        raise ParameterError(f"fusion must be 'attention' or 'concat', got {fusion!r}")
    if not len(filters) == len(kernel_sizes) == len(pool_sizes):
        raise ParameterError("filters, kernel_sizes and pool_sizes need the same length")

    audio = keras.Input((sequence_length, frame_length), name="audio_frames")
    words = keras.Input((sequence_length, semantic_dim), name="word_vectors")
    inputs, features, mask = [], [], None
    if "paralinguistic" in modalities:
        inputs.append(audio)
        features.append(_paralinguistic_features(audio, filters, kernel_sizes, pool_sizes, dropout))
        mask = PaddingMask(name="frame_mask")(audio)
    if "semantic" in modalities:
        inputs.append(words)
        features.insert(0, words)

    if len(features) == 1:
        x = features[0]
    elif fusion == "concat":
        x = keras.layers.Concatenate(name="fusion")(features)
    else:
        x = DisentangledAttentionFusion(
            units=units,
            branch_units=branch_units,
            projection_activation=projection_activation,
            branch_activation=branch_activation,
            name="fusion",
        )(features)
    if len(features) > 1:
        # Sec. 5.1: dropout 0.5 "for all layers except the recurrent ones", the fusion included.
        x = keras.layers.Dropout(dropout, name="fusion_dropout")(x)
    classifier = num_classes is not None
    x = keras.layers.LSTM(lstm_units, return_sequences=not classifier, dropout=dropout, name="embedding")(x, mask=mask)
    if classifier:
        x = keras.layers.Dropout(dropout, name="embedding_dropout")(x)
        outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    else:
        outputs = keras.layers.Dense(num_outputs, activation=output_activation, name="predictions")(x)
    return keras.Model(inputs, outputs, name=name or "tzirakis2021_" + "_".join(m[:4] for m in modalities))

