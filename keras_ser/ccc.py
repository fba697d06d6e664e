"""The Keras side of tzirakis2021's concordance correlation (eq. 8): the loss ``1 - CCC`` and a streaming metric.

Scores of finished predictions use the NumPy :func:`keras_ser.metrics.ccc`; this module
holds what training needs, so that :mod:`keras_ser.metrics` stays free of TensorFlow.
Both objects are registered with Keras as ``keras_ser>ccc_loss`` and
``keras_ser>ConcordanceCorrelation``, so a model compiled with them reloads.

Example
-------
>>> import numpy as np
>>> y = np.array([[0.1], [0.5], [0.9]], "float32")
>>> float(ccc_loss(y, y)) < 1e-5
True
"""

import keras


def _ccc_tensor(y_true, y_pred):
    """Per-output CCC over all leading axes (batch, and time if present)."""
    ops = keras.ops
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, y_true.dtype)
    dims = ops.shape(y_pred)[-1]
    y_true = ops.reshape(y_true, (-1, dims))
    y_pred = ops.reshape(y_pred, (-1, dims))
    mean_true = ops.mean(y_true, axis=0)
    mean_pred = ops.mean(y_pred, axis=0)
    var_true = ops.mean(ops.square(y_true - mean_true), axis=0)
    var_pred = ops.mean(ops.square(y_pred - mean_pred), axis=0)
    covariance = ops.mean((y_true - mean_true) * (y_pred - mean_pred), axis=0)
    denominator = var_true + var_pred + ops.square(mean_true - mean_pred)
    return 2.0 * covariance / (denominator + keras.backend.epsilon())


@keras.saving.register_keras_serializable(package="keras_ser")
def ccc_loss(y_true, y_pred):
    """Keras loss ``1 - CCC`` averaged over outputs (tzirakis2021 eq. 8 and Sec. 5.2).

    Tensors are ``[batch, outputs]`` or ``[batch, time, outputs]``; the CCC of each
    output (arousal, valence, liking) is computed over all batch/time steps and
    the three losses are averaged, as tzirakis2021 does. Returns a scalar.
    """
    return 1.0 - keras.ops.mean(_ccc_tensor(y_true, y_pred))


@keras.saving.register_keras_serializable(package="keras_ser")
class ConcordanceCorrelation(keras.metrics.Metric):
    """Streaming mean CCC over ``num_outputs`` outputs (tzirakis2021 eq. 8), exact over everything seen.

    Accumulates first and second moments per output since the last reset, so the epoch
    value is the CCC of the whole epoch, not a mean of per-batch CCCs.

    Parameters
    ----------
    num_outputs : int, default 1
    name : str, default "ccc"

    Example
    -------
    >>> metric = ConcordanceCorrelation(num_outputs=3)
    """

    def __init__(self, num_outputs=1, name="ccc", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_outputs = int(num_outputs)
        shape = (self.num_outputs,)
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")
        self.sums = {
            key: self.add_variable(shape=shape, initializer="zeros", name=key)
            for key in ("x", "y", "xx", "yy", "xy")
        }

    def update_state(self, y_true, y_pred, sample_weight=None):
        ops = keras.ops
        y_true = ops.reshape(ops.cast(y_true, "float32"), (-1, self.num_outputs))
        y_pred = ops.reshape(ops.cast(y_pred, "float32"), (-1, self.num_outputs))
        self.count.assign_add(ops.cast(ops.shape(y_true)[0], "float32"))
        for key, value in (
            ("x", y_true),
            ("y", y_pred),
            ("xx", y_true * y_true),
            ("yy", y_pred * y_pred),
            ("xy", y_true * y_pred),
        ):
            self.sums[key].assign_add(ops.sum(value, axis=0))

    def result(self):
        ops = keras.ops
        n = ops.maximum(self.count, 1.0)
        mean_x = self.sums["x"] / n
        mean_y = self.sums["y"] / n
        var_x = self.sums["xx"] / n - mean_x**2
        var_y = self.sums["yy"] / n - mean_y**2
        covariance = self.sums["xy"] / n - mean_x * mean_y
        value = 2.0 * covariance / (var_x + var_y + (mean_x - mean_y) ** 2 + keras.backend.epsilon())
        return ops.mean(value)

    def reset_state(self):
        self.count.assign(0.0)
        for variable in self.sums.values():
            variable.assign(keras.ops.zeros_like(variable))

    def get_config(self):
        return {**super().get_config(), "num_outputs": self.num_outputs}
