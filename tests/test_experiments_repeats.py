"""experiment.repeats (runs per fold, zhang2021_dcnn Sec. 3.2) and the stage-2 schedule of two-stage recipes.

The runs train a tiny stand-in network (tests/model_helper.py) on the zhao2019 front end of a
three-speaker, three-class EMO-DB manifest; the schedule tests train zhang2021_dcnn's stage-2
network at tiny widths on random fc7 sequences.
"""

import json

import keras
import numpy as np
import pytest

from keras_ser import report
from keras_ser.errors import ParameterError
from keras_ser.experiments import runner, two_stage
from keras_ser.experiments.run_dir import read_predictions
from keras_ser.experiments.runner import repeat_seed, run_experiment
from keras_ser.models import build
from keras_ser.recipe import load_recipe, recipe_repeats

from corpus_helper import emodb_manifest
from model_helper import register_tiny_logmel_model

TINY = register_tiny_logmel_model()
FOLD = "speaker_03"


@pytest.fixture(scope="module")
def manifest(emodb_wavs, tmp_path_factory):
    """Speakers 03, 08 and 09; anger, neutral and sadness; two utterances each."""
    return emodb_manifest(emodb_wavs, tmp_path_factory.mktemp("repeats"), ("03", "08", "09"), 2)


def _run(manifest, out, repeats, monkeypatch=None, results=None):
    """Train fold speaker_03 of the tiny recipe; return the seeds of the networks trained in this call."""
    trained = []
    if monkeypatch is not None:
        real = runner._train_network

        def spy(*args, **kwargs):
            trained.append(kwargs["seed"])
            return real(*args, **kwargs)

        monkeypatch.setattr(runner, "_train_network", spy)
    run_experiment("zhao2019_attention_blstm_fcn", corpus=manifest, out=out, folds=[FOLD], progress=False,
                   results=results, overrides=[f"model.name={TINY}", "train.epochs=2", "train.verbose=0",
                                               "train.batch_size=4", f"experiment.repeats={repeats}"])
    return trained


def _json(path):
    return json.loads(path.read_text())


def test_repeats_must_be_a_whole_number_of_at_least_one():
    for bad in ("0", "-1", "2.5", "true", '"3"'):
        with pytest.raises(ParameterError, match=r"experiment\.repeats"):
            load_recipe("zhao2018_attention_blstm_fcn", [f"experiment.repeats={bad}"])
    with pytest.raises(ParameterError, match=r"experiment\.repeats=2 .*'features_svm'"):
        load_recipe("zhao2019_features_compare", ["experiment.repeats=2"])
    for overrides in ([], ["experiment.repeats=1"]):
        recipe = load_recipe("zhao2018_attention_blstm_fcn", overrides)
        assert recipe["experiment"]["repeats"] == 1 and recipe_repeats(recipe) == 1
    # A recipe recorded before the setting existed trained one network per fold.
    del recipe["experiment"]["repeats"]
    assert recipe_repeats(recipe) == 1
    assert recipe_repeats(load_recipe("zhao2018_attention_blstm_fcn", ["experiment.repeats=3"])) == 3
    for name in ("zhang2021_dcnn_blstmwa", "zhang2021_dcnn_blstm", "zhang2021_dcnn_blstmwa_c1", "zhang2021_2cnn_lstm"):
        assert recipe_repeats(load_recipe(name)) == 3, name


def test_repeat_seeds_are_distinct_and_derived_from_the_experiment_seed():
    seeds = [repeat_seed(42, k) for k in range(1, 6)]
    assert seeds[0] == 42 and len(set(seeds)) == 5
    assert seeds == [repeat_seed(42, k) for k in range(1, 6)]
    assert repeat_seed(43, 2) not in seeds and all(0 <= s < 2 ** 32 for s in seeds)


def test_repeats_train_each_fold_with_its_own_seed_and_report_the_mean(manifest, tmp_path):
    out = tmp_path / "three"
    _run(manifest, out, 3)
    fold_dir = out / "folds" / FOLD
    runs = [_json(fold_dir / f"repeat_{k}" / "metrics.json") for k in (1, 2, 3)]
    assert [r["seed"] for r in runs] == [repeat_seed(42, k) for k in (1, 2, 3)]
    probabilities = [read_predictions(fold_dir / f"repeat_{k}" / "predictions.csv")[3] for k in (1, 2, 3)]
    assert not np.allclose(probabilities[0], probabilities[1]), "another seed must train another network"

    fold = _json(fold_dir / "metrics.json")
    assert fold["repeats"] == 3 and [r["seed"] for r in fold["per_repeat"]] == [r["seed"] for r in runs]
    for key in ("ua", "wa", "macro_f1"):
        assert fold["scores"][key] == pytest.approx(np.mean([r["scores"][key] for r in runs]))
    # predictions.csv holds the runs' mean probabilities; "predicted" is their argmax.
    ids, labels, predicted, mean = read_predictions(fold_dir / "predictions.csv")
    np.testing.assert_allclose(mean, np.mean(probabilities, axis=0), atol=1e-5)
    names = _json(out / "labels.json")
    assert predicted == [names[i] for i in mean.argmax(-1)]
    assert fold["ensemble_scores"]["n"] == len(ids) == fold["scores"]["n"]

    # The fold's model is the run with the best validation UA, linked, and says which it is.
    val_ua = [r["validation_scores"]["ua"] for r in runs]
    chosen = int(np.argmax(val_ua)) + 1
    assert fold["model_repeat"] == chosen and fold["best_epoch"] == runs[chosen - 1]["best_epoch"]
    assert _json(fold_dir / "model" / "meta.json")["repeat"] == chosen
    assert ((fold_dir / "model" / "model.keras").read_bytes()
            == (fold_dir / f"repeat_{chosen}" / "model" / "model.keras").read_bytes())

    results = _json(out / "results.json")
    summary = results["repeats"]
    assert summary["count"] == 3 and [r["repeat"] for r in summary["per_run"]] == [1, 2, 3]
    for k, run in enumerate(runs):
        assert summary["per_run"][k]["pooled"]["ua"] == pytest.approx(run["scores"]["ua"])  # one fold
        assert summary["per_run"][k]["fold_mean"]["wa"] == pytest.approx(run["scores"]["wa"])
    assert summary["mean"]["pooled"]["ua"] == pytest.approx(np.mean([r["scores"]["ua"] for r in runs]))
    assert results["fold_mean"]["ua"] == pytest.approx(summary["mean"]["fold_mean"]["ua"])
    markdown = (out / "results.md").read_text()
    assert "3 runs per fold" in markdown and "| run 3: pooled / mean over folds |" in markdown
    assert " / ".join(f"{100 * r['scores']['ua']:.1f}" for r in runs) in markdown

    # The same seed gives the same metrics: run 1 is the run a recipe without repeats trains.
    single = tmp_path / "single"
    _run(manifest, single, 1)
    assert not (single / "folds" / FOLD / "repeat_1").exists()
    assert _json(single / "folds" / FOLD / "metrics.json")["scores"] == runs[0]["scores"]
    assert "repeats" not in _json(single / "results.json")
    assert _json(single / "config.json")["recipe"]["experiment"]["repeats"] == 1


def test_the_results_table_scores_the_mean_of_the_runs_not_their_ensemble(manifest, tmp_path):
    mirror = tmp_path / "results"
    _run(manifest, tmp_path / "run", 3, results=mirror)
    fold = next(mirror.glob("*/*/folds")) / FOLD
    runs = [_json(fold / f"repeat_{k}" / "metrics.json") for k in (1, 2, 3)]
    (row,) = report.collect(mirror)
    # zhang2021_dcnn Sec. 3.2: a speaker's result is the average of its three runs (one fold here).
    for key in ("ua", "wa", "macro_f1"):
        assert row["pooled"][key] == pytest.approx(np.mean([r["scores"][key] for r in runs]))
    assert row["val_ua"] == pytest.approx(np.mean([r["validation_scores"]["ua"] for r in runs]))
    # The z-tests count the fold's correct test predictions as their mean over the runs.
    correct = [np.sum(np.equal(*read_predictions(fold / f"repeat_{k}" / "predictions.csv")[1:3])) for k in (1, 2, 3)]
    assert row["fold_correct"][FOLD] == (pytest.approx(np.mean(correct)), row["pooled"]["n"])
    # The mean probabilities of predictions.csv, an ensemble of the runs, are scored apart.
    _, true, predicted, _ = read_predictions(fold / "predictions.csv")
    assert row["ensemble"]["wa"] == pytest.approx(np.mean(np.asarray(true) == np.asarray(predicted)))
    cells = [line for line in report.markdown([row]).splitlines() if line.startswith(f"| {row['system']} |")]
    assert len(cells) == 1 and f"*[{100 * row['pooled']['ua']:.1f} ± " in cells[0]


def test_resume_after_an_interrupted_repeat_trains_only_the_missing_one(manifest, tmp_path, monkeypatch):
    out, mirror = tmp_path / "resume", tmp_path / "results"
    assert _run(manifest, out, 3, monkeypatch, mirror) == [repeat_seed(42, k) for k in (1, 2, 3)]
    fold_dir = out / "folds" / FOLD
    before = _json(fold_dir / "metrics.json")
    stamps = {k: (fold_dir / f"repeat_{k}" / "metrics.json").stat().st_mtime_ns for k in (1, 2)}
    # As if the process was killed while training repeat 3: its metrics.json, written last, is missing,
    # and the fold's own files were never written.
    (fold_dir / "repeat_3" / "metrics.json").unlink()
    for name in ("metrics.json", "predictions.csv"):
        (fold_dir / name).unlink()

    assert _run(manifest, out, 3, monkeypatch) == [repeat_seed(42, 3)]
    assert {k: (fold_dir / f"repeat_{k}" / "metrics.json").stat().st_mtime_ns for k in (1, 2)} == stamps
    after = _json(fold_dir / "metrics.json")
    assert after["scores"] == before["scores"] and after["per_repeat"][2]["scores"] == before["per_repeat"][2]["scores"]
    # A finished fold trains nothing.
    assert _run(manifest, out, 3, monkeypatch) == []
    # results/ keeps every run's scores; a new run directory restores the fold from it, reports included.
    stored = mirror / "zhao2019_attention_blstm_fcn"
    assert len(list(stored.glob(f"*/folds/{FOLD}/repeat_*/metrics.json"))) == 3
    moved = tmp_path / "elsewhere"
    assert _run(manifest, moved, 3, monkeypatch, mirror) == []
    assert _json(moved / "results.json")["repeats"] == _json(out / "results.json")["repeats"]


def test_a_fold_cut_short_goes_on_from_the_runs_results_kept_on_another_machine(manifest, tmp_path, monkeypatch):
    mirror = tmp_path / "results"
    real, calls = runner._train_network, []

    def dies_in_run_3(*args, **kwargs):
        calls.append(kwargs["seed"])
        if len(calls) == 3:
            raise KeyboardInterrupt  # the machine went away while run 3 trained
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "_train_network", dies_in_run_3)
    with pytest.raises(KeyboardInterrupt):
        _run(manifest, tmp_path / "first", 3, results=mirror)
    monkeypatch.setattr(runner, "_train_network", real)
    stored = next(mirror.glob(f"zhao2019_attention_blstm_fcn/*/folds/{FOLD}"))
    # results/ kept runs 1 and 2 as each ended; the fold itself is not finished there.
    assert sorted(p.parent.name for p in stored.glob("repeat_*/metrics.json")) == ["repeat_1", "repeat_2"]
    assert not (stored / "metrics.json").exists()
    assert not list(stored.rglob("model")) and not list(stored.rglob(".restored"))
    # The results table counts the protocol's folds from the start and the finished runs of this one.
    report.main([str(mirror), "--quiet"])
    assert "| partial: 0 of 3 folds; speaker_03: 2 of 3 runs |" in (mirror / "README.md").read_text()

    # Another machine: a fresh run directory with the committed results/ trains run 3 only.
    second = tmp_path / "second"
    assert _run(manifest, second, 3, monkeypatch, mirror) == [repeat_seed(42, 3)]
    fold_dir = second / "folds" / FOLD
    fold = _json(fold_dir / "metrics.json")
    assert fold["restored_repeats"] == [1, 2] and fold["model_repeat"] == 3
    assert _json(fold_dir / "model" / "meta.json")["repeat"] == 3
    assert [(fold_dir / f"repeat_{k}" / ".restored").is_file() for k in (1, 2, 3)] == [True, True, False]
    # The same scores as the three runs trained in one go (same seeds, same data).
    reference = tmp_path / "reference"
    _run(manifest, reference, 3)
    expected = _json(reference / "folds" / FOLD / "metrics.json")
    assert [r["scores"] for r in fold["per_repeat"]] == [r["scores"] for r in expected["per_repeat"]]
    assert fold["scores"] == expected["scores"]
    assert _json(stored / "metrics.json")["scores"] == expected["scores"]
    assert _json(second / "results.json")["repeats"] == _json(reference / "results.json")["repeats"]


def test_a_fold_whose_runs_all_finished_elsewhere_is_completed_without_training(manifest, tmp_path, monkeypatch):
    mirror, first = tmp_path / "results", tmp_path / "first"
    _run(manifest, first, 2, results=mirror)
    stored = next(mirror.glob(f"zhao2019_attention_blstm_fcn/*/folds/{FOLD}"))
    expected = _json(stored / "metrics.json")
    # As if the machine went away after the last run, before the fold's own files were written.
    for name in ("metrics.json", "predictions.csv", "val_predictions.csv", "history.json"):
        (stored / name).unlink()

    second = tmp_path / "second"
    assert _run(manifest, second, 2, monkeypatch, mirror) == []
    fold = _json(second / "folds" / FOLD / "metrics.json")
    assert fold["restored_repeats"] == [1, 2] and fold["scores"] == expected["scores"]
    # No run was trained here, so the fold has no model; its scores count, as a restored fold's do.
    assert not (second / "folds" / FOLD / "model").exists()
    assert _json(stored / "metrics.json")["scores"] == expected["scores"]
    assert _json(second / "results.json")["folds_done"] == [FOLD]
    # Resuming that run directory again trains nothing either.
    assert _run(manifest, second, 2, monkeypatch, mirror) == []


def test_each_runs_pooled_scores_cover_every_fold():
    from keras_ser.experiments.reports import repeat_summary
    from keras_ser.metrics import classification_scores

    names = ["a", "b", "c"]
    rng = np.random.default_rng(1)
    truth = {"f1": rng.integers(0, 3, 9), "f2": rng.integers(0, 3, 5)}
    guesses = {(fold, k): rng.integers(0, 3, len(y)) for fold, y in truth.items() for k in (1, 2)}
    folds = [{"fold": fold, "per_repeat": [
        {"repeat": k, "seed": k, "scores": classification_scores(y, guesses[fold, k], names)} for k in (1, 2)]}
        for fold, y in truth.items()]
    summary = repeat_summary(folds, names)
    for k in (1, 2):
        pooled = classification_scores(np.concatenate(list(truth.values())),
                                       np.concatenate([guesses["f1", k], guesses["f2", k]]), names)
        run = summary["per_run"][k - 1]
        assert run["pooled"]["ua"] == pytest.approx(pooled["ua"]) and run["pooled"]["n"] == 14
        assert run["pooled"]["macro_f1"] == pytest.approx(pooled["macro_f1"])
        assert run["fold_mean"]["ua"] == pytest.approx(np.mean([f["per_repeat"][k - 1]["scores"]["ua"] for f in folds]))
    assert summary["mean"]["pooled"]["wa"] == pytest.approx(np.mean([r["pooled"]["wa"] for r in summary["per_run"]]))


# ---------------------------------------------------------------------------- stage-2 schedule


def _stage2(overrides, monkeypatch, log_dir):
    """Train a tiny zhang2021_dcnn stage 2 by the recipe's schedule; record every fit."""
    recipe = load_recipe("zhang2021_dcnn_blstmwa", ["encoder.epochs=2", "train.epochs=2", "encoder.verbose=0",
                                                    "train.verbose=0", *overrides])
    fits = []
    real = two_stage.fit_model

    def recording(model, cfg, *args, **kwargs):
        entry = {"model": model.name, "trainable": sorted({w.path.split("/")[0] for w in model.trainable_weights}),
                 "settings": (cfg["learning_rate"], cfg["batch_size"], cfg["epochs"]),
                 "before": {layer.name: [np.array(w) for w in layer.get_weights()] for layer in model.layers}}
        out = real(model, cfg, *args, **kwargs)
        entry["after"] = {layer.name: [np.array(w) for w in layer.get_weights()] for layer in model.layers}
        fits.append(entry)
        return out

    monkeypatch.setattr(two_stage, "fit_model", recording)
    keras.utils.set_random_seed(0)
    head = build(recipe["model"]["name"], num_classes=3, feature_dim=6, lstm_units=4, dnn_units=(8,))
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((12, 4, 6)).astype("float32"), rng.integers(0, 3, 12)
    result = two_stage.train_stage2(recipe, head, (x, y), (x[:3], y[:3]), (None, None), log_dir)
    return recipe, head, fits, result


def test_separate_schedule_trains_the_encoder_first_then_only_the_dnn(monkeypatch, tmp_path):
    recipe, head, fits, (history, _, _, encoder) = _stage2([], monkeypatch, tmp_path)
    assert recipe["encoder"]["schedule"] == "separate"
    assert [f["model"] for f in fits] == ["encoder_trainer", "zhang2021_dcnn_blstmwa"]
    first, second = fits
    # Sec. 3.2: the BLSTM-Attention model at batch 128, lr 1e-4; then the DNN at batch 16, lr 5e-6.
    assert first["settings"] == (1e-4, 128, 2) and second["settings"] == (5e-6, 16, 2)
    assert {"blstm", "attention", "encoder_softmax"} <= set(first["trainable"])
    assert not {"dnn1", "predictions"} & set(first["trainable"])
    assert second["trainable"] == ["dnn1", "predictions"]
    # The frozen encoder keeps the weights its own training gave it; the DNN moved.
    for name in ("blstm", "attention"):
        for a, b in zip(first["after"][name], second["after"][name]):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(second["after"]["dnn1"][0], second["before"]["dnn1"][0])
    assert len(encoder["history"]["loss"]) == 2 and len(history["loss"]) == 2


def test_joint_schedule_trains_the_whole_stage_2_network_once(monkeypatch, tmp_path):
    _, head, fits, (_, _, _, encoder) = _stage2(["encoder.schedule=joint"], monkeypatch, tmp_path)
    assert encoder is None and len(fits) == 1
    assert fits[0]["model"] == "zhang2021_dcnn_blstmwa" and fits[0]["settings"] == (5e-6, 16, 2)
    assert {"blstm", "attention", "dnn1", "predictions"} <= set(fits[0]["trainable"])


def test_encoder_layer_must_exist_and_leave_a_dnn_to_train(monkeypatch, tmp_path):
    with pytest.raises(ParameterError, match=r"encoder\.layer='nope'.*no such layer"):
        _stage2(["encoder.layer=nope"], monkeypatch, tmp_path)
    with pytest.raises(ParameterError, match=r"encoder\.layer='predictions'.*nothing is left"):
        _stage2(["encoder.layer=predictions"], monkeypatch, tmp_path)
    with pytest.raises(ParameterError, match=r"schedule must be one of"):
        load_recipe("zhang2021_dcnn_blstmwa", ["encoder.schedule=both"])
    with pytest.raises(ParameterError, match=r"\[encoder\] trains the stage-2 network"):
        load_recipe("zhao2018_attention_blstm_fcn", ["encoder.epochs=2"])
