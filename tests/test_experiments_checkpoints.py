"""keras_ser.experiments.checkpoints: a fit interrupted after an epoch and run again ends as an uninterrupted one."""

import json
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ser.errors import ParameterError
from keras_ser.experiments import training
from keras_ser.experiments.checkpoints import clear_folder, fit_checkpoints
from keras_ser.experiments.precision import policy_scope
from keras_ser.recipe import load_recipe

from corpus_helper import emodb_manifest

TRAIN = dict(load_recipe("zhao2018_attention_blstm_fcn", ["train.verbose=0"])["train"],
             epochs=7, batch_size=4, learning_rate=0.05, early_stopping=True, monitor="val_loss", patience=2)


def _data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((22, 5)).astype("float32")
    y = rng.integers(0, 3, 22)
    return (x, y), (x[:9] + 0.5, y[:9])


def _model(policy="float32"):
    # Dropout: its random generator's state is part of what must be saved.
    keras.utils.set_random_seed(0)
    with policy_scope(policy):
        return keras.Sequential([keras.Input((5,)), keras.layers.Dense(16, activation="relu"),
                                 keras.layers.Dropout(0.5),
                                 keras.layers.Dense(3, activation="softmax", dtype="float32")])


class _Epochs(keras.callbacks.Callback):
    """Counts the epochs a fit runs; raises KeyboardInterrupt at the end of epoch ``stop`` (1-based)."""

    def __init__(self, log, stop=None):
        super().__init__()
        self.log, self.stop = log, stop

    def on_epoch_end(self, epoch, logs=None):
        self.log.append(epoch + 1)
        if epoch + 1 == self.stop:
            raise KeyboardInterrupt


def _fit(tmp_path, train=TRAIN, *, checkpoints=None, stop=None, policy="float32", strategy=None):
    """fit_model on a fresh model; returns (history, epochs run, best epoch, weights, epochs trained)."""
    log = []
    factory = training.register_callback_factory(lambda *_: [_Epochs(log, stop)])
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model = _model(policy)
    train_data, val_data = _data()
    try:
        with training.fold_context({}, None, tmp_path), strategy.scope():
            if checkpoints is None:
                out = training.fit_model(model, train, train_data, val_data, class_weight={0: 1.0, 1: 2.0, 2: 1.0},
                                         log_dir=tmp_path / "tb")
            else:
                with fit_checkpoints(checkpoints, 0):
                    out = training.fit_model(model, train, train_data, val_data,
                                             class_weight={0: 1.0, 1: 2.0, 2: 1.0}, log_dir=tmp_path / "tb")
    finally:
        training.unregister_callback_factory(factory)
    return (*out, model.get_weights(), log)


# mixed_float16: Keras wraps the optimiser in a LossScaleOptimizer, whose loss scale is state too;
# mirrored (--strategy mirrored): the strategy distributes the shuffled dataset.
@pytest.mark.parametrize("policy, mirrored", [("float32", False), ("mixed_float16", False), ("float32", True)],
                         ids=["float32", "mixed_float16", "mirrored"])
def test_interrupted_fit_resumes_to_the_uninterrupted_result(tmp_path, policy, mirrored):
    strategy = tf.distribute.MirroredStrategy() if mirrored else None
    history, epochs_run, best, weights, trained = _fit(tmp_path, policy=policy, strategy=strategy)
    assert 3 < epochs_run and trained == list(range(1, epochs_run + 1))
    folder = tmp_path / "checkpoints"
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path, checkpoints=folder, stop=3, policy=policy, strategy=strategy)
    assert (folder / "fit_1.npz").is_file()

    resumed_history, resumed_epochs, resumed_best, resumed_weights, resumed_trained = _fit(
        tmp_path, checkpoints=folder, policy=policy, strategy=strategy)
    # Only the epochs after the saved one were trained, and the end is the same to the bit:
    # weights (early stopping's best ones), every logged value, the epochs and the best epoch.
    assert resumed_trained == list(range(4, epochs_run + 1))
    assert (resumed_epochs, resumed_best) == (epochs_run, best)
    assert resumed_history == history
    for a, b in zip(weights, resumed_weights):
        np.testing.assert_array_equal(a, b)

    # The finished fit is loaded, not trained again.
    again = _fit(tmp_path, checkpoints=folder, policy=policy, strategy=strategy)
    assert again[4] == [] and again[0] == history and (again[1], again[2]) == (epochs_run, best)
    for a, b in zip(weights, again[3]):
        np.testing.assert_array_equal(a, b)


def test_checkpoint_of_other_settings_is_set_aside(tmp_path, capsys):
    folder = tmp_path / "checkpoints"
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path, checkpoints=folder, stop=2)
    other = dict(TRAIN, batch_size=5)
    history, epochs_run, _, weights, trained = _fit(tmp_path, other, checkpoints=folder)
    assert "set aside as fit_1.stale.npz" in capsys.readouterr().err
    assert trained[0] == 1 and (folder / "fit_1.stale.npz").is_file()
    reference = _fit(tmp_path, other)
    assert reference[0] == history
    for a, b in zip(reference[3], weights):
        np.testing.assert_array_equal(a, b)


def test_unreadable_checkpoint_is_set_aside(tmp_path, capsys):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    (folder / "fit_1.npz").write_bytes(b"half written")
    *_, trained = _fit(tmp_path, checkpoints=folder)
    assert "cannot be read" in capsys.readouterr().err and trained[0] == 1


def test_clear_folder_keeps_only_checkpoints(tmp_path):
    fold = tmp_path / "speaker_03"
    (fold / "checkpoints").mkdir(parents=True)
    (fold / "checkpoints" / "fit_1.npz").write_bytes(b"x")
    (fold / "model").mkdir()
    (fold / "history.json").write_text("{}")
    clear_folder(fold)
    assert sorted(p.name for p in fold.iterdir()) == ["checkpoints"]
    (fold / "checkpoints" / "fit_1.npz").unlink()
    (fold / "checkpoints").rmdir()
    (fold / "metrics.json").write_text("{}")
    clear_folder(fold)
    assert not fold.exists()


@pytest.mark.parametrize("minutes", [-1, "10", True, float("nan")])
def test_checkpoint_interval_is_validated(tmp_path, minutes):
    with pytest.raises(ParameterError, match="checkpoint_minutes"):
        with fit_checkpoints(tmp_path, minutes):
            pass


# ---------------------------------------------------------------------------- a whole fold


@pytest.fixture(scope="module")
def manifest(emodb_wavs, tmp_path_factory):
    return emodb_manifest(emodb_wavs, tmp_path_factory.mktemp("checkpoints"), ("03", "08", "09"), 2)


# zhang2021_dcnn at tiny widths: three fits per fold (stage 1, the stage-2 encoder, the DNN).
TWO_STAGE = ["--recipe", "zhang2021_dcnn_blstmwa", "stage1.epochs=2", "encoder.epochs=3", "train.epochs=2",
             "stage1.verbose=0", "encoder.verbose=0", "train.verbose=0", "experiment.repeats=1",
             "stage1.model_options.weights=none", "frontend.image_size=67", "stage1.model_options.image_size=67",
             "stage1.model_options.fc_units=[8, 8]", "stage1.model_options.filters=[4, 4, 4, 4, 4]",
             "stage1.speed_perturbation=[1.0]", "train.speed_perturbation=[1.0]", "model.lstm_units=4",
             "model.dnn_units=[8]", "--folds", "03", "--no-progress"]


def _fold_run(manifest, out, *, interrupt_fit=None):
    """Run the tiny two-stage fold with a checkpoint after every epoch; return (exit status, epochs trained per fit).

    ``interrupt_fit``: stop (as Ctrl-C does) at the end of that fit's first epoch (1-based).
    """
    from keras_ser.train import main

    fits = []

    def factory(*_):
        fits.append([])
        return [_Epochs(fits[-1], 1 if len(fits) == interrupt_fit else None)]

    training.register_callback_factory(factory)
    try:
        status = main([*TWO_STAGE, "--corpus", manifest, "--out", str(out), "experiment.checkpoint_minutes=0"])
    finally:
        training.unregister_callback_factory(factory)
    return status, fits


def test_a_fold_stopped_in_its_second_fit_resumes_to_the_uninterrupted_result(manifest, tmp_path, capsys):
    status, fits = _fold_run(manifest, tmp_path / "whole")
    assert status == 0 and fits == [[1, 2], [1, 2, 3], [1, 2]]
    whole = tmp_path / "whole" / "folds" / "speaker_03"

    out = tmp_path / "resumed"
    began = time.monotonic()
    status, fits = _fold_run(manifest, out, interrupt_fit=2)
    interrupted_s = time.monotonic() - began
    fold = out / "folds" / "speaker_03"
    assert status == 130 and fits == [[1, 2], [1]]
    assert sorted(p.name for p in (fold / "checkpoints").iterdir()) == ["fit_1.npz", "fit_2.npz"]
    capsys.readouterr()
    # Each checkpoint records its fit's training time; stand in hours for it, as a long fit would have.
    earlier = {}
    for name, hours in (("fit_1.npz", 2), ("fit_2.npz", 1)):
        seconds = _meta(fold / "checkpoints" / name)["fit_seconds"]
        assert 0 < seconds < interrupted_s
        _set_meta(fold / "checkpoints" / name, fit_seconds=3600.0 * hours)
        earlier[name] = 3600.0 * hours

    began = time.monotonic()
    status, fits = _fold_run(manifest, out)
    resumed_s = time.monotonic() - began
    # Stage 1 is loaded, not trained; the encoder goes on from its second epoch; the DNN trains.
    assert status == 0 and fits == [[2, 3], [1, 2]], fits
    assert "fit_1.npz: finished fit restored at epoch 2" in capsys.readouterr().err
    assert (fold / "predictions.csv").read_bytes() == (whole / "predictions.csv").read_bytes()
    assert (fold / "history.json").read_text() == (whole / "history.json").read_text()
    assert not (fold / "checkpoints").exists()
    # The fold's wall time counts the training done before the interruption (the restored
    # checkpoints' time) and this process's.
    wall_s = json.loads((fold / "metrics.json").read_text())["wall_s"]
    assert sum(earlier.values()) < wall_s < sum(earlier.values()) + resumed_s


def _meta(path):
    with np.load(path, allow_pickle=False) as saved:
        return json.loads(str(saved["meta"]))


def _set_meta(path, **changes):
    with np.load(path, allow_pickle=False) as saved:
        arrays = {key: saved[key] for key in saved.files}
    arrays["meta"] = np.array(json.dumps(dict(json.loads(str(arrays["meta"])), **changes)))
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def test_the_interval_is_a_recipe_setting_that_a_run_may_change_on_resume():
    from keras_ser.experiments.resume import config_differences

    with pytest.raises(ParameterError, match=r"experiment\.checkpoint_minutes must be >= 0"):
        load_recipe("zhao2018_attention_blstm_fcn", ["experiment.checkpoint_minutes=-1"])
    default = load_recipe("zhao2018_attention_blstm_fcn")
    assert default["experiment"]["checkpoint_minutes"] == 10.0
    often = load_recipe("zhao2018_attention_blstm_fcn", ["experiment.checkpoint_minutes=0"])
    assert config_differences({"recipe": default}, {"recipe": often}) == []
    other = load_recipe("zhao2018_attention_blstm_fcn", ["train.epochs=3"])
    assert config_differences({"recipe": default}, {"recipe": other}) == ["recipe.train.epochs: 100 -> 3"]
