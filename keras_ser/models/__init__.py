"""Keras functional models of the five papers; see :mod:`keras_ser.models.registry`."""

from keras_ser.models.registry import ModelInfo, available, build, info, register

__all__ = ["ModelInfo", "available", "build", "info", "register"]
