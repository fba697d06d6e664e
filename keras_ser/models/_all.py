"""Imports every model module, and with them the backbones' Keras custom objects."""
from keras_ser.models import attention_blstm_fcn  # noqa: F401  (zhao2019, zhao2018)
from keras_ser.models import multicnn  # noqa: F401  (zhang2021_multicnn)
from keras_ser.models import dcnn_blstmwa  # noqa: F401  (zhang2021_dcnn)
from keras_ser.models import semantic  # noqa: F401  (tzirakis2021)
