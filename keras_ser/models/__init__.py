"""Keras functional models of the five papers; see :mod:`keras_ser.models.registry`.

One module per model family (``attention_blstm_fcn``, ``multicnn``, ``dcnn_blstmwa``, ``semantic``),
each beside its ``*_presets`` table of registered variants, and ``backbones/`` (ImageNet CNNs).
Imports: Keras, :mod:`keras_ser.layers` and :mod:`keras_ser.errors`; the presets import their
model module and the registry; nothing from the front end, data or experiments.
"""

from keras_ser.models.registry import ModelInfo, available, build, info, register

__all__ = ["ModelInfo", "available", "build", "info", "register"]
