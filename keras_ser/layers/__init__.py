"""Keras layers of keras_ser: attention poolings, BLSTM variants, masking helpers, fusions.

Every layer is registered for ``.keras`` serialisation under the package name
``keras_ser``.
"""

from keras_ser.layers.attention import AttentionPooling, ScaledAttentionPooling, masked_softmax
from keras_ser.layers.fusion import DisentangledAttentionFusion, ScaledDotAttentionFusion
from keras_ser.layers.masking import ApplyPaddingMask, MaskedGlobalPooling, MaskedMaxPooling2D, PaddingMask
from keras_ser.layers.recurrent import BLSTM, CellStateLSTMCell
from keras_ser.layers.shuffle import DimensionShuffle

__all__ = [
    "ApplyPaddingMask",
    "AttentionPooling",
    "BLSTM",
    "CellStateLSTMCell",
    "DimensionShuffle",
    "DisentangledAttentionFusion",
    "MaskedGlobalPooling",
    "MaskedMaxPooling2D",
    "PaddingMask",
    "ScaledAttentionPooling",
    "ScaledDotAttentionFusion",
    "masked_softmax",
]
