"""Keras layers of keras_ser: attention poolings, BLSTM variants, masking helpers.

Every layer is registered for ``.keras`` serialisation under the package name
``keras_ser``.
"""

from keras_ser.layers.attention import AttentionPooling, ScaledAttentionPooling, masked_softmax

__all__ = ["AttentionPooling", "ScaledAttentionPooling", "masked_softmax"]
