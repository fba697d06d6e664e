"""Keras layers of keras_ser: attention poolings, BLSTM variants, masking helpers, fusions,
segment folding, channel cycling and the ImageNet backbones' image layers.

Every layer is registered for ``.keras`` serialisation under the package name
``keras_ser``.

Imports: Keras, TensorFlow, NumPy and :mod:`keras_ser.errors` only; the layer modules may
import one another, nothing else of keras_ser (models, front end and experiments build on them).
"""

from keras_ser.layers.attention import AttentionPooling, ScaledAttentionPooling, masked_softmax
from keras_ser.layers.channels import CycleChannels
from keras_ser.layers.fusion import DisentangledAttentionFusion, ScaledDotAttentionFusion
from keras_ser.layers.image import GroupedConv2D, ImagePreprocessing, LocalResponseNormalization
from keras_ser.layers.masking import ApplyPaddingMask, MaskedGlobalPooling, MaskedMaxPooling2D, PaddingMask
from keras_ser.layers.recurrent import BLSTM, CellStateLSTMCell
from keras_ser.layers.segments import FoldSegments, UnfoldSegments
from keras_ser.layers.shuffle import DimensionShuffle

__all__ = [
    "ApplyPaddingMask",
    "AttentionPooling",
    "BLSTM",
    "CellStateLSTMCell",
    "CycleChannels",
    "DimensionShuffle",
    "DisentangledAttentionFusion",
    "FoldSegments",
    "GroupedConv2D",
    "ImagePreprocessing",
    "LocalResponseNormalization",
    "MaskedGlobalPooling",
    "MaskedMaxPooling2D",
    "PaddingMask",
    "ScaledAttentionPooling",
    "ScaledDotAttentionFusion",
    "UnfoldSegments",
    "masked_softmax",
]
