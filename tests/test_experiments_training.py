"""keras_ser.experiments.training: optimiser schedule, the tf.data feed, the multi-worker loop, early-stopping warm-up."""

import keras
import numpy as np
import pytest

from keras_ser.errors import ParameterError
from keras_ser.experiments import training
from keras_ser.experiments.training import make_optimizer
from keras_ser.recipe import load_recipe


def test_legacy_decay_schedule_matches_keras2_formula():
    recipe = load_recipe("zhao2019_attention_blstm_fcn")
    optimizer = make_optimizer(recipe["train"])
    for step in (0, 1, 1000, 250000):
        expected = 1e-3 / (1 + 1e-6 * step)
        assert float(optimizer._learning_rate(step)) == pytest.approx(expected, rel=1e-6)
    nadam = make_optimizer(load_recipe("zhang2021_dcnn_blstmwa")["stage1"])
    assert isinstance(nadam, keras.optimizers.Nadam)
    assert float(nadam.learning_rate) == pytest.approx(1e-4) and nadam.beta_1 == 0.9


def test_multi_worker_training_uses_the_distribute_loop(monkeypatch, tmp_path):
    calls = []
    real_fit = __import__("keras_ser.distribute", fromlist=["fit"]).fit

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(training, "multi_worker", lambda: True)
    monkeypatch.setattr("keras_ser.distribute.fit", spy)
    train = load_recipe("zhao2018_attention_blstm_fcn", ["train.epochs=2", "train.verbose=0"])["train"]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    x = np.random.default_rng(0).standard_normal((8, 3)).astype("float32")
    y = np.array([0, 1] * 4)
    history, epochs_run, best = training.fit_model(
        model, train, (x, y), (x, y), class_weight={0: 1.0, 1: 3.0}, log_dir=tmp_path)
    assert len(calls) == 1 and calls[0]["class_weight"] == {0: 1.0, 1: 3.0}
    assert epochs_run == best == 2 and len(history["loss"]) == 2
    with pytest.raises(ParameterError, match="ccc"):
        training.fit_model(model, dict(train, loss="ccc"), (x, y), None, class_weight=None, log_dir=tmp_path)


def test_early_stopping_warm_up_never_picks_an_early_epoch(tmp_path):
    # lr 0: the validation loss is the same every epoch, so the best epoch is the first one considered.
    train = dict(load_recipe("zhao2018_attention_blstm_fcn", ["train.verbose=0"])["train"],
                 learning_rate=0.0, epochs=5, monitor="val_loss", patience=10)
    x = np.random.default_rng(0).standard_normal((8, 3)).astype("float32")
    y = np.array([0, 1] * 4)
    for warm_up, expected in ((0, 1), (2, 3), (9, 5)):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
        _, epochs_run, best = training.fit_model(model, dict(train, start_from_epoch=warm_up), (x, y), (x, y),
                                                   class_weight=None, log_dir=tmp_path)
        assert (epochs_run, best) == (5, expected), warm_up
    with pytest.raises(ParameterError, match="start_from_epoch"):
        load_recipe("zhao2018_attention_blstm_fcn", ["train.start_from_epoch=-1"])


def test_fit_model_trains_from_the_seeded_array_pipeline(monkeypatch, tmp_path):
    feeds = []
    real = training.array_dataset

    def spy(x, y, batch_size, **kwargs):
        if y is not None:  # fit's feeds, not the validation-UA predictions
            feeds.append(kwargs.get("shuffle_seed"))
        return real(x, y, batch_size, **kwargs)

    monkeypatch.setattr(training, "array_dataset", spy)
    train = dict(load_recipe("zhao2018_attention_blstm_fcn", ["train.verbose=0"])["train"],
                 epochs=3, early_stopping=False, learning_rate=0.05, batch_size=4)
    x = np.random.default_rng(0).standard_normal((12, 3)).astype("float32")
    y = np.array([0, 1, 1] * 4)

    def weights_after(seed, class_weight=None):
        training.set_seed(seed)
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
        before = [w.copy() for w in model.get_weights()]
        training.fit_model(model, train, (x, y), (x, y), class_weight=class_weight, log_dir=tmp_path)
        return before, model.get_weights()

    _, first = weights_after(0)
    assert feeds[0] is not None and feeds[1] is None  # training rows shuffled, validation rows in order
    _, again = weights_after(0)
    assert feeds[2] == feeds[0] and all(np.array_equal(a, b) for a, b in zip(first, again))
    weights_after(1)
    assert feeds[4] != feeds[0]
    # class weights still reach the loss through the dataset: all-zero weights leave the model untouched
    before, after = weights_after(0, class_weight={0: 0.0, 1: 0.0})
    assert all(np.array_equal(a, b) for a, b in zip(before, after))


def test_predict_arrays_gives_keras_predictions_in_order_for_one_or_two_inputs():
    keras.utils.set_random_seed(0)
    audio, words = keras.Input((3,)), keras.Input((2,))
    hidden = keras.layers.Dense(4, activation="tanh")(keras.layers.Concatenate()([audio, words]))
    two_inputs = keras.Model([audio, words], keras.layers.Dense(3, activation="softmax")(hidden))
    one_input = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3, activation="softmax")])
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(11, 3)).astype("float32"), rng.normal(size=(11, 2)).astype("float32")
    np.testing.assert_allclose(training.predict_arrays(two_inputs, (x, w), 4),
                               np.asarray(two_inputs([x, w])), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(training.predict_arrays(one_input, x, 4), np.asarray(one_input(x)),
                               rtol=1e-6, atol=1e-6)
