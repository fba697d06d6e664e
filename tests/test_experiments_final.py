"""train --final: the deployable model on every speaker (keras_ser.experiments.final), on tiny real runs."""

import json
import time

import keras
import numpy as np
import pytest

from keras_ser.experiments import training
from keras_ser.train import main

EMODB_UTTERANCES = 535


def _run(out, folds, extra=()):
    from test_train import TINY_ARGS

    # Options first: argparse takes no option after the key=value overrides.
    options = [a for a in extra if a.startswith("--")]
    return main(["--recipe", "zhao2019_attention_blstm_fcn", "--out", str(out), "--no-progress",
                 "--folds", folds, *options, *TINY_ARGS, *[a for a in extra if a not in options]])


def _raw_features(utterances):
    from keras_ser import audio
    from keras_ser.frontend import FrontEnd

    raw = FrontEnd("zhao2019")
    return [raw(audio.load(u.path, sr=16000)[None]).numpy()[0] for u in utterances]


@pytest.fixture(scope="module")
def corpus(emodb_dir):
    from keras_ser.data import load_corpus

    utterances = load_corpus("emodb", emodb_dir)
    assert len(utterances) == EMODB_UTTERANCES
    return utterances


def test_final_speaker_model_is_the_run_default_for_predict_and_export(tmp_path, emodb_dir, corpus):
    import tensorflow as tf

    from keras_ser.export import export
    from keras_ser.experiments.run_dir import resolve_model_dir
    from keras_ser.frontend import feature_statistics
    from keras_ser.predict import Predictor

    seen = []

    def record(recipe, fold, fold_dir):
        seen.append((fold.name, len(fold.train), len({u.speaker for u in fold.train}), fold_dir))
        return []

    run = tmp_path / "run"
    training.register_callback_factory(record)
    try:
        assert _run(run, "03,08", ["--final", "train.epochs=3"]) == 0
    finally:
        training.unregister_callback_factory(record)
    # The folds, then one fit on all 535 utterances of the 10 speakers.
    assert [s[0] for s in seen] == ["speaker_03", "speaker_08", "final"]
    assert seen[-1][1:] == (EMODB_UTTERANCES, 10, run / "final")

    info = json.loads((run / "final" / "final.json").read_text())
    best = {name: json.loads((run / "folds" / name / "metrics.json").read_text())["best_epoch"]
            for name in ("speaker_03", "speaker_08")}
    assert info["fold_best_epochs"] == best
    # The median of two best epochs, rounded half up (e.g. 2 and 3 give 3).
    assert info["epochs"] == int(np.floor(np.median(list(best.values())) + 0.5))
    assert info["n_train"] == EMODB_UTTERANCES and len(info["speakers"]) == 10
    history = json.loads((run / "final" / "history.json").read_text())
    assert len(history["loss"]) == info["epochs"] and not any(k.startswith("val_") for k in history)

    # The fallback statistics are those of every speaker's frames pooled.
    model_dir = run / "final" / "model"
    settings = json.loads((model_dir / "frontend.json").read_text())
    meta = json.loads((model_dir / "meta.json").read_text())
    assert settings["standardize"] == "speaker" and meta["fold"] == "final"
    mean, std = feature_statistics(_raw_features(corpus))
    np.testing.assert_allclose(settings["feature_mean"], mean, rtol=1e-5)
    np.testing.assert_allclose(settings["feature_std"], std, rtol=1e-5)

    # predict RUN and export RUN use it; --fold still picks a fold model.
    assert resolve_model_dir(run, policy="deployable")[0] == model_dir
    assert resolve_model_dir(run, policy="best_validation")[0].parent.name.startswith("speaker_")
    predictor = Predictor.from_path(run)
    assert predictor.model_dir == model_dir and "every speaker" in predictor.reason
    assert "whole training set" in predictor.statistics_source
    assert Predictor.from_path(run, "speaker_03").model_dir == run / "folds" / "speaker_03" / "model"
    export(run, tmp_path / "serving" / "1")
    loaded = tf.saved_model.load(str(tmp_path / "serving" / "1"))
    np.testing.assert_allclose(loaded.signatures["metadata"]()["speaker_mean"].numpy(), mean, rtol=1e-5)
    wave = predictor.predict_files([corpus[0].path])
    from keras_ser import audio
    served = loaded.signatures["serving_default"](waveform=tf.constant(audio.load(corpus[0].path, sr=16000)[None]))
    np.testing.assert_allclose(served["probabilities"].numpy(), wave, atol=1e-5)

    # The same command again retrains nothing; a finished final model is kept.
    stamp = (model_dir / "model.keras").stat().st_mtime_ns
    assert _run(run, "03,08", ["--final", "train.epochs=3"]) == 0
    assert (model_dir / "model.keras").stat().st_mtime_ns == stamp


def test_final_global_model_uses_training_set_statistics(tmp_path, emodb_dir, corpus):
    from keras_ser.frontend import feature_statistics

    run = tmp_path / "global"
    assert _run(run, "03", ["--final", "frontend.standardize=global"]) == 0
    settings = json.loads((run / "final" / "model" / "frontend.json").read_text())
    assert settings["standardize"] == "global"
    mean, std = feature_statistics(_raw_features(corpus))
    np.testing.assert_allclose(settings["feature_mean"], mean, rtol=1e-5)
    np.testing.assert_allclose(settings["feature_std"], std, rtol=1e-5)
    # The fold model's statistics leave its test speaker out, the final model's do not.
    fold = json.loads((run / "folds" / "speaker_03" / "model" / "frontend.json").read_text())
    assert np.abs(np.subtract(fold["feature_mean"], mean)).max() > 1e-3
    model = keras.saving.load_model(run / "final" / "model" / "model.keras")
    assert model.output_shape[-1] == 7


def test_final_is_refused_for_other_kinds_and_before_any_fold(tmp_path, emodb_dir, capsys):
    from keras_ser.experiments.final import final_epochs
    from keras_ser.errors import ParameterError

    assert main(["--recipe", "zhao2019_features_egemaps", "--out", str(tmp_path / "svm"), "--no-progress",
                 "--folds", "03", "--final"]) == 2
    assert "--final trains neural recipes" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    with pytest.raises(ParameterError, match="no finished fold"):
        final_epochs(tmp_path / "empty", ["speaker_03"])


def test_interrupted_final_model_resumes_to_the_uninterrupted_one(tmp_path, emodb_dir, capsys):
    import shutil

    from test_experiments_checkpoints import _Epochs, _meta, _set_meta

    # checkpoint_minutes=0: a checkpoint after every epoch, as a long final fit has every 10 minutes.
    # Without early stopping the fold's best epoch, and so the final model's epochs, is 3.
    args = ["--final", "train.epochs=3", "train.early_stopping=false", "experiment.checkpoint_minutes=0"]
    whole = tmp_path / "whole"
    assert _run(whole, "03", args) == 0
    assert json.loads((whole / "final" / "final.json").read_text())["epochs"] == 3

    # The same finished fold, its final model stopped after one epoch.
    run = tmp_path / "resumed"
    shutil.copytree(whole / "folds", run / "folds")
    shutil.copy(whole / "config.json", run / "config.json")
    trained = []

    def stop_final(recipe, fold, fold_dir):
        trained.append(fold.name)
        return [_Epochs([], stop=1)] if fold.name == "final" else []  # Ctrl-C after epoch 1

    training.register_callback_factory(stop_final)
    try:
        assert _run(run, "03", args) == 130
    finally:
        training.unregister_callback_factory(stop_final)
    assert trained == ["final"]  # the finished fold is not trained again
    checkpoint = run / "final" / "checkpoints" / "fit_1.npz"
    assert not (run / "final" / "final.json").exists() and checkpoint.is_file()
    _set_meta(checkpoint, fit_seconds=3600.0)  # stands in for an hour of training before the stop
    assert _meta(checkpoint)["epochs"] == 1
    capsys.readouterr()

    began = time.monotonic()
    assert _run(run, "03", args) == 0
    resumed_s = time.monotonic() - began
    assert "fit_1.npz: interrupted fit restored at epoch 1" in capsys.readouterr().err
    # The same model to the bit: history and weights.
    assert (run / "final" / "history.json").read_text() == (whole / "final" / "history.json").read_text()
    resumed = keras.saving.load_model(run / "final" / "model" / "model.keras")
    uninterrupted = keras.saving.load_model(whole / "final" / "model" / "model.keras")
    for a, b in zip(uninterrupted.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not (run / "final" / "checkpoints").exists()
    # Its wall time counts the hour trained before the stop and this process's training.
    wall_s = json.loads((run / "final" / "final.json").read_text())["wall_s"]
    assert 3600.0 < wall_s < 3600.0 + resumed_s
