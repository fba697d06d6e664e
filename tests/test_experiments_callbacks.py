"""Callback factories of experiment trackers (keras_ser.experiments.training), on a tiny real run."""

import keras
import pytest

from keras_ser.errors import ParameterError
from keras_ser.experiments import training

#: What record_calls saw: one entry per call, with the epochs its callback saw.
CALLS = []


class _EpochLog(keras.callbacks.Callback):
    def __init__(self, entry):
        super().__init__()
        self.entry = entry

    def on_epoch_end(self, epoch, logs=None):
        self.entry["epochs"].append((epoch, sorted(logs or {})))


def record_calls(recipe, fold, fold_dir):
    """A tracker standing in for MLflow: records its arguments and every epoch's log keys."""
    entry = {"recipe": recipe["recipe"]["name"], "model": recipe["model"]["name"], "fold": fold.name,
             "fold_dir": fold_dir, "epochs": []}
    CALLS.append(entry)
    return [_EpochLog(entry)]


def test_cli_factory_gets_recipe_fold_and_fold_dir_and_runs_every_epoch(tmp_path, emodb_dir):
    from test_train import TINY, TINY_ARGS

    from keras_ser.train import main

    CALLS.clear()
    out = tmp_path / "run"
    try:
        assert main(["--recipe", "zhao2019_attention_blstm_fcn", "--out", str(out), "--no-progress",
                     "--folds", "03,08", "--callbacks", f"{__name__}:record_calls", *TINY_ARGS]) == 0
    finally:
        training.unregister_callback_factory(record_calls)
    assert [(c["recipe"], c["model"], c["fold"], c["fold_dir"]) for c in CALLS] == [
        ("zhao2019_attention_blstm_fcn", TINY, name, out / "folds" / name) for name in ("speaker_03", "speaker_08")]
    for call in CALLS:
        assert [epoch for epoch, _ in call["epochs"]] == [0, 1]
        # Added after keras_ser's own callbacks, so the validation UA is already in the logs.
        assert all("val_ua" in keys and "loss" in keys for _, keys in call["epochs"])
    # Unregistered: a resumed run with nothing left to train, and a fit outside a fold, call nothing.
    CALLS.clear()
    assert training.tracker_callbacks() == []
    assert main(["--recipe", "zhao2019_attention_blstm_fcn", "--out", str(out), "--no-progress",
                 "--folds", "03", *TINY_ARGS]) == 0
    assert CALLS == []


def test_registered_factory_is_checked_and_named():
    def bad(recipe, fold, fold_dir):
        return "not callbacks"

    assert training.register_callback_factory(bad) is bad
    try:
        with training.fold_context({"recipe": {"name": "r"}}, None, None):
            with pytest.raises(ParameterError, match="bad must return a list of keras.callbacks.Callback"):
                training.tracker_callbacks()
    finally:
        training.unregister_callback_factory(bad)
    with training.fold_context({}, None, None):
        assert training.tracker_callbacks() == []
    with pytest.raises(ParameterError, match="must be callable"):
        training.register_callback_factory("module:function")


@pytest.mark.parametrize("spec, message", [
    ("no_colon", "expected module:function"),
    ("keras_ser_no_such_module:f", "cannot import 'keras_ser_no_such_module'"),
    ("json:no_such_function", "'json' has no attribute 'no_such_function'"),
    ("keras_ser:__version__", "'__version__' is not callable"),
])
def test_load_callback_factory_errors_name_the_spec(spec, message):
    with pytest.raises(ParameterError, match=f"callback factory '{spec}'.*{message}"):
        training.load_callback_factory(spec)
    assert training.load_callback_factory(f"{__name__}:record_calls") is record_calls
