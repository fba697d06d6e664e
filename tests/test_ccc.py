"""The Keras CCC loss and streaming metric (keras_ser.ccc) against NumPy's eq. 8, and their saving."""

import keras
import numpy as np
import pytest

from keras_ser import metrics
from keras_ser.ccc import ConcordanceCorrelation, ccc_loss


def _numpy_ccc(x, y):
    # tzirakis2021 eq. 8 with population moments, written out independently of keras_ser.
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    covariance = np.mean((x - x.mean()) * (y - y.mean()))
    return 2 * covariance / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)


def test_ccc_loss_and_streaming_metric_match_numpy():
    rng = np.random.default_rng(1)
    y_true = rng.normal(size=(4, 30, 3)).astype("float32")
    y_pred = (0.5 * y_true + rng.normal(scale=0.7, size=y_true.shape)).astype("float32")
    expected = np.mean(
        [_numpy_ccc(y_true[..., d].ravel(), y_pred[..., d].ravel()) for d in range(3)]
    )
    loss = float(ccc_loss(y_true, y_pred))
    assert loss == pytest.approx(1 - expected, abs=1e-5)

    metric = ConcordanceCorrelation(num_outputs=3)
    for batch in range(4):  # streaming over batches gives the whole-set CCC
        metric.update_state(y_true[batch], y_pred[batch])
    assert float(metric.result()) == pytest.approx(expected, abs=1e-4)
    metric.reset_state()
    metric.update_state(y_true[0], y_true[0])
    assert float(metric.result()) == pytest.approx(1.0, abs=1e-4)


def test_ccc_loss_trains_a_regressor_towards_agreement():
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(256, 4)).astype("float32")
    y = (x @ np.array([[0.5], [-1.0], [0.2], [0.0]], "float32")) + 2.0
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.05), loss=ccc_loss,
                  metrics=[ConcordanceCorrelation(num_outputs=1)])
    history = model.fit(x, y, batch_size=64, epochs=30, verbose=0)
    assert history.history["ccc"][-1] > 0.95
    assert metrics.ccc(y, model.predict(x, verbose=0)) > 0.95



def test_a_model_compiled_with_them_saves_and_reloads_with_them(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    model.compile("adam", loss=ccc_loss, metrics=[ConcordanceCorrelation(num_outputs=2)])
    x = np.random.default_rng(0).normal(size=(8, 2)).astype("float32")
    model.fit(x, x, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.loss is ccc_loss
    # The reloaded model computes the same loss and metric; the metric is the module's class.
    assert loaded.evaluate(x, x, return_dict=True, verbose=0) == pytest.approx(
        model.evaluate(x, x, return_dict=True, verbose=0))
    metric = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(ConcordanceCorrelation(2)))
    assert isinstance(metric, ConcordanceCorrelation) and metric.num_outputs == 2
