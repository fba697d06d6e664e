"""keras_ser.experiments.training: optimiser schedule, the tf.data feed, the multi-worker loop, early-stopping
warm-up, the one-pass validation."""

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
    # training rows shuffled; validation rows in order, one pass per epoch
    assert feeds[0] is not None and feeds[1:] == [None] * 3
    _, again = weights_after(0)
    assert feeds[4] == feeds[0] and all(np.array_equal(a, b) for a, b in zip(first, again))
    weights_after(1)
    assert feeds[8] != feeds[0]
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


def _fit_history(loss, metrics, y, y_val, validation, seed=0):
    """Three epochs of a small dense model; validation scored by Keras (``"keras"``) or ValidationPass."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(14, 3)).astype("float32")
    # Large inputs saturate the softmax: Keras computes its loss from the logits (cross-entropies
    # above the -log(1e-7) that clipped probabilities allow), and so must ValidationPass.
    x_val = 30 * rng.normal(size=(11, 3)).astype("float32")
    keras.utils.set_random_seed(seed)
    units, activation = (3, "softmax") if loss == "sparse_categorical_crossentropy" else (2, None)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(units, activation=activation)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss, metrics=metrics)
    kwargs = ({"validation_data": training.array_dataset(x_val, y_val, 4)} if validation == "keras"
              else {"callbacks": [training.ValidationPass(x_val, y_val, 4, ua=False)]})
    history = model.fit(training.array_dataset(x, y, 4, shuffle_seed=3), epochs=3, verbose=0, shuffle=False,
                        **kwargs)
    return history.history


@pytest.mark.parametrize("task", ["classification", "ccc"])
def test_validation_pass_gives_keras_validation_loss_and_metrics_to_the_last_bit(task):
    rng = np.random.default_rng(2)
    if task == "classification":
        loss, metrics = "sparse_categorical_crossentropy", lambda: ["accuracy"]
        y, y_val = rng.integers(0, 3, 14), rng.integers(0, 3, 11)
    else:
        loss = training.ccc_loss
        metrics = lambda: [training.ConcordanceCorrelation(num_outputs=2)]  # noqa: E731
        y, y_val = rng.normal(size=(14, 2)).astype("float32"), rng.normal(size=(11, 2)).astype("float32")
    by_keras = _fit_history(loss, metrics(), y, y_val, "keras")
    by_pass = _fit_history(loss, metrics(), y, y_val, "pass")
    val_keys = sorted(k for k in by_keras if k.startswith("val_"))
    assert len(val_keys) == 2 and sorted(k for k in by_pass if k.startswith("val_")) == val_keys
    for key in by_keras:  # 11 rows in batches of 4: the short last batch is weighted as Keras does
        assert by_pass[key] == by_keras[key], key


def test_validation_pass_scores_segments_per_utterance(tmp_path):
    from sklearn.metrics import recall_score

    rng = np.random.default_rng(0)
    owner = np.repeat(np.arange(6), [3, 1, 4, 2, 2, 5])
    y_utt = np.array([0, 1, 2, 0, 1, 2])
    x = rng.normal(size=(len(owner), 3)).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3, activation="softmax")])
    train = dict(load_recipe("zhao2018_attention_blstm_fcn", ["train.verbose=0"])["train"],
                 learning_rate=0.0, epochs=2, early_stopping=False, batch_size=5)
    history, _, _ = training.fit_model(model, train, (x, y_utt[owner]), (x, y_utt[owner]), class_weight=None,
                                       log_dir=tmp_path, val_utterance=(y_utt, owner))
    scores = np.asarray(model(x))
    per_utterance = np.stack([scores[owner == u].mean(0) for u in range(6)])
    expected = recall_score(y_utt, per_utterance.argmax(-1), average="macro")
    segment_level = recall_score(y_utt[owner], scores.argmax(-1), average="macro")
    assert expected != pytest.approx(segment_level)  # the data tell the two levels apart
    assert history["val_ua"] == pytest.approx([expected] * 2)
    assert history["val_accuracy"] == pytest.approx([np.mean(scores.argmax(-1) == y_utt[owner])] * 2)


def test_a_fold_drops_the_retracing_warning_that_new_models_trigger():
    # TensorFlow counts traces per code object, so the step functions of a run's new models (one
    # per fold, plus wrappers) read as retraces of one function. A fresh detector of TensorFlow's
    # own (the process-wide one stops after two warnings) writes the real warning.
    import logging

    import tensorflow as tf
    from tensorflow.python.eager.polymorphic_function import polymorphic_function

    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())

    def trace_five_times():
        detector = polymorphic_function._FrequentTracingDetector()
        for _ in range(polymorphic_function.FREQUENT_TRACING_WARNING_THRESHOLD):
            detector.called_with_tracing("one_step_on_data_distributed", omit_warning=False)

    tf.get_logger().addHandler(handler)
    try:
        trace_five_times()
        assert any("triggered tf.function retracing" in m for m in messages)
        messages.clear()
        with training.fold_context({}, None, None):
            trace_five_times()
            tf.get_logger().warning("another TensorFlow warning")
        assert messages == ["another TensorFlow warning"]
        trace_five_times()  # the filter ends with the fold
        assert any("triggered tf.function retracing" in m for m in messages)
    finally:
        tf.get_logger().removeHandler(handler)
