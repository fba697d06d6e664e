"""Imports every model module so that each registers its builders."""
from keras_ser.models import attention_blstm_fcn  # noqa: F401  (000, 004)
from keras_ser.models import multicnn  # noqa: F401  (001)
from keras_ser.models import dcnn_blstmwa  # noqa: F401  (002)
from keras_ser.models import semantic  # noqa: F401  (003)
