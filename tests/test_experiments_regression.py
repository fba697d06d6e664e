"""Regression training (train.loss = "ccc", tzirakis2021) through the runner, predict and export.

The run is tzirakis2021's paralinguistic network, tiny, on EMO-DB-2s with arousal / valence derived
from the categorical labels (corpus ``emodb_dimensional``): two LOSO folds, two epochs.
"""

import csv
import dataclasses
import json
import shutil

import keras
import numpy as np
import pytest

from keras_ser.data import label_names, load_corpus, make_folds
from keras_ser.data.emodb import DERIVED_DIMENSIONAL
from keras_ser.errors import DataError, ParameterError
from keras_ser.experiments import runner
from keras_ser.experiments.run_dir import fold_status
from keras_ser.experiments.training import frame_targets
from keras_ser.ccc import ccc_loss
from keras_ser.models import build
from keras_ser.recipe import load_recipe

RECIPE = "tzirakis2021_paralinguistic_emodb_dimensional"
TINY = ["train.epochs=2", "train.verbose=0", "model.filters=[4, 4, 4]", "model.lstm_units=8"]
FOLDS = ["03", "08"]


def _numpy_ccc(x, y):
    # tzirakis2021 eq. 8 with population moments, written out independently of keras_ser.metrics.
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    covariance = np.mean((x - x.mean()) * (y - y.mean()))
    return 2 * covariance / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)


def _read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("regression") / "run"
    results = runner.run_experiment(load_recipe(RECIPE, TINY), out=out, folds=FOLDS, progress=False)
    return out, results


def test_emodb_dimensional_targets_are_the_table_values_of_each_label():
    utterances = load_corpus("emodb_dimensional")
    assert len(utterances) == 535
    assert label_names("emodb_dimensional") == ["arousal", "valence"]
    for u in utterances:
        for dim in ("arousal", "valence"):
            times, values = u.continuous[dim]
            assert values.tolist() == [DERIVED_DIMENSIONAL[u.label][dim]], u.id
    # The categorical corpus stays as it was.
    assert load_corpus("emodb")[0].continuous is None
    with pytest.raises(ParameterError, match="targets must be one of"):
        load_corpus("emodb", targets="circumplex")


def test_frame_targets_sample_the_label_track_at_frame_starts():
    track = {"arousal": (np.array([0.0, 0.1, 0.2]), np.array([0.0, 1.0, 3.0])),
             "valence": (np.array([0.0]), np.array([-0.5]))}
    utterance = dataclasses.replace(load_corpus("emodb")[0], continuous=track)
    targets = frame_targets(utterance, ["arousal", "valence"], 0.05, 6)
    np.testing.assert_allclose(targets[:, 0], [0.0, 0.5, 1.0, 2.0, 3.0, 3.0])
    np.testing.assert_allclose(targets[:, 1], [-0.5] * 6)


def test_ccc_loss_of_one_batch_equals_numpy_eq8():
    keras.utils.set_random_seed(0)
    model = build("tzirakis2021_paralinguistic", num_outputs=2, filters=[8, 8, 8], lstm_units=4, dropout=0.0)
    model.get_layer("predictions").bias.assign([0.1, -0.2])
    model.compile(optimizer="adam", loss=ccc_loss)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 5, 2205)).astype("float32")
    y = rng.uniform(-1, 1, size=(4, 5, 2)).astype("float32")
    predicted = model.predict(x, verbose=0).reshape(-1, 2)
    expected = np.mean([1 - _numpy_ccc(y.reshape(-1, 2)[:, k], predicted[:, k]) for k in range(2)])
    assert abs(expected - 1.0) > 1e-3  # a non-trivial batch
    assert model.evaluate(x, y, batch_size=4, verbose=0) == pytest.approx(expected, abs=1e-5)


def test_tiny_run_scores_are_the_ccc_of_its_predictions(run):
    out, results = run
    targets, values = {"arousal": [], "valence": []}, {"arousal": [], "valence": []}
    for name in ("speaker_03", "speaker_08"):
        folder = out / "folds" / name
        metrics = json.loads((folder / "metrics.json").read_text())
        rows = _read_csv(folder / "predictions.csv")
        assert list(rows[0]) == ["id", "true_arousal", "pred_arousal", "true_valence", "pred_valence"]
        assert metrics["scores"]["n"] == len(rows) == metrics["n_test"]
        labels = {u.id: u.label for u in load_corpus("emodb")}
        for dim in ("arousal", "valence"):
            true = [float(r[f"true_{dim}"]) for r in rows]
            pred = [float(r[f"pred_{dim}"]) for r in rows]
            # The utterance target is the table value of its label (constant over its frames).
            np.testing.assert_allclose(true, [DERIVED_DIMENSIONAL[labels[r["id"]]][dim] for r in rows], atol=1e-6)
            assert metrics["scores"]["ccc"][dim] == pytest.approx(_numpy_ccc(true, pred), abs=1e-6)
            targets[dim] += true
            values[dim] += pred
        assert metrics["scores"]["ccc_mean"] == pytest.approx(np.mean(list(metrics["scores"]["ccc"].values())))
        assert "ccc_mean" in metrics["validation_scores"]
        history = json.loads((folder / "history.json").read_text())
        assert "val_ccc" in history and len(history["loss"]) == 2
        assert fold_status(out, name) == (True, None)
    for dim in ("arousal", "valence"):
        assert results["pooled"]["ccc"][dim] == pytest.approx(_numpy_ccc(targets[dim], values[dim]), abs=1e-6)
    text = (out / "results.md").read_text()
    assert "derived from categorical labels" in text
    assert "| pooled over folds (all test utterances) |" in text
    assert "CCC_arousal 0.508" in text  # the paper's figure beside ours
    assert "gradient-norm clipping 5" in text and "monitor val_ccc" in text
    assert not (out / "confusion.png").exists()


def test_resume_skips_a_finished_regression_fold_and_redoes_a_damaged_one(run, tmp_path, monkeypatch):
    out, _ = run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    trained = []
    original = runner.run_regression_fold

    def counting(recipe, fold, *args):
        trained.append(fold.name)
        return original(recipe, fold, *args)

    monkeypatch.setattr(runner, "run_regression_fold", counting)
    recipe = load_recipe(RECIPE, TINY)
    runner.run_experiment(recipe, out=copy, folds=FOLDS, progress=False)
    assert trained == []
    # A damaged predictions.csv (a NaN value) makes the fold unfinished: it is trained again.
    path = copy / "folds" / "speaker_08" / "predictions.csv"
    lines = path.read_text().splitlines()
    lines[1] = ",".join(lines[1].split(",")[:-1] + ["nan"])
    path.write_text("\n".join(lines) + "\n")
    finished, reason = fold_status(copy, "speaker_08")
    assert not finished and "line 2 is damaged" in reason
    runner.run_experiment(recipe, out=copy, folds=FOLDS, progress=False)
    assert trained == ["speaker_08"]
    assert fold_status(copy, "speaker_08") == (True, None)


def test_regression_fold_status_needs_every_dimension(run, tmp_path):
    out, _ = run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    metrics_path = copy / "folds" / "speaker_03" / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    del metrics["scores"]["ccc"]["valence"]
    metrics_path.write_text(json.dumps(metrics))
    finished, reason = fold_status(copy, "speaker_03")
    assert not finished and "lacks the scores ccc" in reason


@pytest.mark.parametrize("damage, message", [
    (lambda c: {**c, "valence": (c["valence"][0], np.array([np.nan]))}, "NaN"),
    (lambda c: {"arousal": c["arousal"]}, "no continuous label 'valence'"),
])
def test_nan_or_missing_target_is_refused(damage, message, tmp_path, monkeypatch):
    utterances = load_corpus("emodb_dimensional")
    bad = dataclasses.replace(utterances[5], continuous=damage(utterances[5].continuous))
    utterances[5] = bad
    monkeypatch.setattr(runner, "load_corpus", lambda *args, **kwargs: list(utterances))
    with pytest.raises(DataError, match=message) as error:
        runner.run_experiment(load_recipe(RECIPE, TINY), out=tmp_path / "run", folds=FOLDS, progress=False)
    assert bad.id in str(error.value)
    assert not (tmp_path / "run" / "folds").exists()


def test_categorical_corpus_and_repeats_are_refused(tmp_path):
    with pytest.raises(DataError, match="no continuous labels.*emodb_dimensional"):
        runner.run_experiment(load_recipe(RECIPE, TINY + ["experiment.corpus=emodb"]), out=tmp_path / "a",
                              folds=FOLDS, progress=False)
    with pytest.raises(ParameterError, match="repeats"):
        runner.check_supported(load_recipe(RECIPE, ["experiment.repeats=2"]))


def test_predict_and_export_return_the_continuous_values(run, tmp_path):
    import tensorflow as tf

    from keras_ser import audio
    from keras_ser.export import export
    from keras_ser.predict import Predictor

    out, _ = run
    model_dir = out / "folds" / "speaker_03" / "model"
    predictor = Predictor(model_dir)
    assert predictor.regression and predictor.labels == ["arousal", "valence"]
    rows = _read_csv(out / "folds" / "speaker_03" / "predictions.csv")[:3]
    paths = [next(u.path for u in load_corpus("emodb") if u.id == r["id"]) for r in rows]
    values = predictor.predict_files(paths)
    # predict gives the values the run wrote for the same utterances.
    expected = [[float(r["pred_arousal"]), float(r["pred_valence"])] for r in rows]
    np.testing.assert_allclose(values, expected, atol=1e-5)
    export(model_dir, tmp_path / "saved")
    loaded = tf.saved_model.load(str(tmp_path / "saved"))
    waves = np.stack([audio.load(p, sr=predictor.sample_rate) for p in paths])
    served = loaded.signatures["serving_default"](waveform=tf.constant(waves))
    np.testing.assert_allclose(served["values"].numpy(), values, atol=1e-5)
    assert [v.decode() for v in served["label_names"].numpy()[0]] == ["arousal", "valence"]
    assert loaded.signatures["metadata"]()["task"].numpy() == b"regression"


def test_sewa_partitions_feed_the_official_protocol(tmp_path):
    import soundfile

    base = tmp_path / "sewa"
    (base / "audio").mkdir(parents=True)
    (base / "labels").mkdir()
    for name in ("Train_01", "Train_02", "Devel_01", "Test_01"):
        soundfile.write(base / "audio" / f"{name}.wav", np.full(1600, 0.1, np.float32), 16000)
        (base / "labels" / f"{name}.csv").write_text(f"{name};0.00;0.1;0.2;0.3\n{name};0.10;0.2;0.3;0.4\n")
    utterances = load_corpus("sewa", tmp_path)
    assert {u.id: u.split for u in utterances} == {"Train_01": "train", "Train_02": "train",
                                                   "Devel_01": "validation", "Test_01": "test"}
    assert utterances[0].continuous["liking"][1].tolist() == [0.3, 0.4]
    (fold,) = make_folds("official", utterances)
    assert sorted(u.id for u in fold.train) == ["Train_01", "Train_02"]
    assert [u.id for u in fold.validation] == ["Devel_01"] and [u.id for u in fold.test] == ["Test_01"]


def test_results_mirror_keeps_and_restores_a_regression_fold(tmp_path, monkeypatch):
    recipe = load_recipe(RECIPE, TINY + ["train.epochs=1"])
    first = runner.run_experiment(recipe, out=tmp_path / "run1", folds=["03"], progress=False,
                                  results=tmp_path / "results")
    mirrored = tmp_path / "results" / RECIPE / "emodb_dimensional"
    assert (mirrored / "folds" / "speaker_03" / "predictions.csv").is_file()
    assert "derived from categorical labels" in (mirrored / "results.md").read_text()

    def refuse(*args):
        raise AssertionError("a fold restored from results/ was trained again")

    monkeypatch.setattr(runner, "run_regression_fold", refuse)
    second = runner.run_experiment(recipe, out=tmp_path / "run2", folds=["03"], progress=False,
                                   results=tmp_path / "results")
    assert second["folds_done"] == ["speaker_03"]
    assert second["pooled"] == first["pooled"]


def test_predict_picks_the_regression_fold_with_the_best_validation_ccc(run):
    from keras_ser.predict import Predictor

    out, _ = run
    validation = {name: json.loads((out / "folds" / name / "metrics.json").read_text())["validation_scores"]["ccc_mean"]
                  for name in ("speaker_03", "speaker_08")}
    best = max(validation, key=validation.get)
    predictor = Predictor.from_path(out)
    assert predictor.model_dir == out / "folds" / best / "model"
    assert f"best validation mean CCC {validation[best]:.4f}" in predictor.reason
