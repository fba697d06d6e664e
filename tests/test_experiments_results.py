"""keras_ser.experiments.results: ``train --results`` mirrors finished folds and resumes from them.

One tiny real run (two EMO-DB folds, the 8-unit stand-in network of test_train, two
epochs) is shared by the tests of this module; the reruns replace the fold runner by one
that fails, so that training a fold again cannot go unnoticed.
"""

import json
import shutil

import pytest

from keras_ser.errors import DataError
from keras_ser.experiments import results as results_module
from keras_ser.experiments import runner
from keras_ser.experiments.results import (MIRRORED_FILES, ResultsMirror, config_differences, corpus_differences,
                                           portable_config)
from keras_ser.frontend import presets
from keras_ser.train import main
from test_train import TINY_ARGS

RECIPE = "zhao2019_attention_blstm_fcn"
FOLDS = ("speaker_03", "speaker_08")


def _train(out, results, extra=(), folds="03,08"):
    return main(["--recipe", RECIPE, "--out", str(out), "--no-progress", "--folds", folds,
                 "--results", str(results)] + TINY_ARGS + list(extra))


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory, emodb_dir):
    """A two-fold run with ``--results``: ``(run directory, results/ root)``."""
    base = tmp_path_factory.mktemp("mirrored")
    assert _train(base / "run", base / "results") == 0
    return base / "run", base / "results"


@pytest.fixture()
def no_training(monkeypatch):
    """Make any fold training fail the test."""
    def run_fold(recipe, fold, *args, **kwargs):
        raise AssertionError(f"fold {fold.name} was trained again")

    monkeypatch.setattr(runner, "run_fold", run_fold)


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_mirror_holds_exactly_the_small_report_files(mirrored):
    run, results = mirrored
    stored = results / RECIPE / "emodb"
    expected = ["config.json", "confusion.png", "labels.json", "results.json", "results.md"] + [
        f"folds/{fold}/{name}" for fold in FOLDS
        for name in ("history.json", "metrics.json", "predictions.csv", "val_predictions.csv")]
    assert _files(stored) == sorted(expected)
    # The run directory itself has the model directories and logs that results/ must not.
    assert (run / "folds" / "speaker_03" / "model" / "model.keras").is_file()
    assert (run / "folds" / "speaker_03" / "embeddings.npz").is_file()
    assert all(name.rsplit("/", 1)[-1] in MIRRORED_FILES for name in _files(stored))
    assert max(p.stat().st_size for p in stored.rglob("*")) < 200_000
    # Byte-identical copies of the run directory's files; config.json without the corpus files' times.
    for name in _files(stored):
        if name == "config.json":
            assert json.loads((stored / name).read_text()) == portable_config(json.loads((run / name).read_text()))
        else:
            assert (stored / name).read_bytes() == (run / name).read_bytes(), name
    assert json.loads((stored / "results.json").read_text())["folds_done"] == list(FOLDS)


def test_a_rerun_with_a_fresh_run_directory_trains_no_fold(mirrored, tmp_path, no_training, capsys):
    _, results = mirrored
    stored = results / RECIPE / "emodb"
    before = {name: ((stored / name).stat().st_mtime_ns, (stored / name).read_bytes()) for name in _files(stored)}
    fresh = tmp_path / "fresh"
    assert _train(fresh, results) == 0
    assert "2 finished fold(s) restored" in capsys.readouterr().err
    # Nothing in results/ changed, not even a time stamp: the folds were neither retrained nor rewritten.
    metrics = [name for name in before if name.endswith("metrics.json")]
    assert len(metrics) == 2
    for name in metrics + ["config.json", "results.json"]:
        assert ((stored / name).stat().st_mtime_ns, (stored / name).read_bytes()) == before[name], name
    # The fresh run directory reports the restored folds, with the original pooled scores.
    restored = json.loads((fresh / "results.json").read_text())
    original = json.loads(before["results.json"][1])
    assert restored["folds_done"] == list(FOLDS) and restored["pooled"] == original["pooled"]
    assert not (fresh / "folds" / "speaker_03" / "model").exists()


def test_a_changed_config_is_refused_naming_the_keys(mirrored, tmp_path, no_training, capsys):
    _, results = mirrored
    assert _train(tmp_path / "other", results, ["train.epochs=3", "train.patience=4"]) == 2
    error = capsys.readouterr().err
    assert "different configuration" in error
    assert "recipe.train.epochs: 2 -> 3" in error and "recipe.train.patience: 20 -> 4" in error
    assert "overrides" in error


def test_a_front_end_revision_since_the_run_refuses_its_folds(mirrored, tmp_path, no_training, monkeypatch,
                                                              capsys):
    run, results = mirrored
    # zhao2019's front end computes no deltas: revision 1, in the config and in the saved network's meta.
    assert json.loads((results / RECIPE / "emodb" / "config.json").read_text())["frontend_revision"] == 1
    assert json.loads((run / "folds" / "speaker_03" / "model" / "meta.json").read_text())["frontend_revision"] == 1
    copied = tmp_path / "results"
    shutil.copytree(results, copied)
    change = presets.Revision(3, "0000000", "a change to every front end", lambda settings: True)
    monkeypatch.setattr(presets, "REVISIONS", presets.REVISIONS + (change,))
    assert _train(tmp_path / "other", copied) == 2
    error = capsys.readouterr().err
    assert "frontend_revision: 1 -> 3 (the front end's code has changed" in error


def test_a_damaged_fold_in_results_is_trained_again_and_replaced(mirrored, tmp_path, monkeypatch, capsys):
    _, results = mirrored
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    damaged = copy / RECIPE / "emodb" / "folds" / "speaker_08" / "predictions.csv"
    damaged.write_text("\n".join(damaged.read_text().splitlines()[:5]) + "\n")
    trained = []
    real_run_fold = runner.run_fold

    def run_fold(recipe, fold, *args, **kwargs):
        trained.append(fold.name)
        return real_run_fold(recipe, fold, *args, **kwargs)

    monkeypatch.setattr(runner, "run_fold", run_fold)
    assert _train(tmp_path / "run", copy) == 0
    assert trained == ["speaker_08"]
    assert "fold speaker_08 in" in capsys.readouterr().err
    # Retrained (deterministically, so identical to the original) and mirrored over the damaged copy.
    original = results / RECIPE / "emodb" / "folds" / "speaker_08" / "predictions.csv"
    assert damaged.read_bytes() == original.read_bytes()


def test_a_fold_needing_files_results_does_not_keep_is_trained_again(mirrored, tmp_path, monkeypatch, capsys):
    # Feature-level fusion needs each member fold's embeddings.npz, which results/ does not keep.
    _, results = mirrored
    from keras_ser.recipe import load_recipe

    class Trained(Exception):
        pass

    def run_fold(recipe, fold, *args, **kwargs):
        raise Trained(fold.name)

    monkeypatch.setattr(runner, "run_fold", run_fold)
    mirror = ResultsMirror(results / RECIPE / "emodb", require=("embeddings.npz",))
    with pytest.raises(Trained, match="speaker_03"):
        runner.run_experiment(load_recipe(RECIPE, TINY_ARGS), out=tmp_path / "member", folds=["03"],
                              overrides=TINY_ARGS, progress=False, results=mirror)
    notes = capsys.readouterr().err
    assert "fold speaker_03: " in notes and "embeddings.npz, which results/ does not keep" in notes
    assert "speaker_08" not in notes  # a fold this run does not train is not reported as missing
    fusion = load_recipe("zhang2021_multicnn_fusion")
    assert ResultsMirror(tmp_path).member("zhang2021_multicnn_1d", fusion).require == ("embeddings.npz",)
    fusion["fusion"]["level"] = "score"
    assert ResultsMirror(tmp_path).member("zhang2021_multicnn_1d", fusion).require == ()


def test_config_and_corpus_differences():
    stored = {"recipe": {"train": {"epochs": 2, "lr": 1e-3}}, "seed": 1, "data_dir": "/a", "folds": ["03"],
              "corpus_fingerprint": {"utterances": [["u1", "/a/u1.wav", "anger", "03", 10, 5]]}}
    current = {"recipe": {"train": {"epochs": 3, "lr": 1e-3}, "model": {"units": 4}}, "seed": 1,
               "data_dir": "/b", "folds": ["08"]}
    assert config_differences(stored, current) == ["recipe.model.units: (absent) -> 4",
                                                   "recipe.train.epochs: 2 -> 3"]
    # A schema key a run did not record counts as its default, and the refusal says so.
    older = {"recipe": {"train": {"epochs": 2}}}
    assert config_differences(older, {"recipe": {"train": {"epochs": 2, "precision": "mixed_bfloat16"}}}) == [
        'recipe.train.precision: (not recorded: "float32") -> "mixed_bfloat16"']
    moved = {"corpus_fingerprint": {"utterances": [["u1", "/elsewhere/u1.wav", "anger", "03", 10, 99]]}}
    assert corpus_differences(stored, moved) == []
    assert corpus_differences(stored, {}) == []  # a config written before fingerprints were
    relabelled = {"corpus_fingerprint": {"utterances": [["u1", "/a/u1.wav", "sadness", "03", 10, 5],
                                                        ["u2", "/a/u2.wav", "anger", "03", 9, 5]]}}
    assert corpus_differences(stored, relabelled) == ["u2: added", "u1: label anger -> sadness"]
    resized = {"corpus_fingerprint": {"utterances": [["u1", "/b/u1.wav", "anger", "03", 11, 5]]}}
    assert corpus_differences(stored, resized) == ["u1: file size changed (/b/u1.wav)"]
    # Digests are compared when both sides have one; a fingerprint without digests compares sizes.
    digested = {"corpus_fingerprint": {"utterances": [["u1", "/a/u1.wav", "anger", "03", 10, 5, "00ff"]]}}
    edited = {"corpus_fingerprint": {"utterances": [["u1", "/b/u1.wav", "anger", "03", 10, 7, "00fe"]]}}
    assert corpus_differences(stored, digested) == []
    assert corpus_differences(digested, edited) == ["u1: content changed (/b/u1.wav)"]


def test_a_changed_corpus_is_refused(mirrored, tmp_path):
    run, results = mirrored
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    config_path = copy / RECIPE / "emodb" / "config.json"
    config = json.loads(config_path.read_text())
    config["corpus_fingerprint"]["utterances"][0][2] = "not-a-label"
    config_path.write_text(json.dumps(config))
    with pytest.raises(DataError, match="differs from the one the results"):
        ResultsMirror(copy / RECIPE / "emodb").check_config(run)


def test_a_corpus_copied_anew_does_not_rewrite_the_results_config(mirrored, tmp_path):
    run, results = mirrored
    stored = results / RECIPE / "emodb" / "config.json"
    records = json.loads(stored.read_text())["corpus_fingerprint"]["utterances"]
    assert len(records) == 535 and all(r[5] is None and len(r[6]) == 32 for r in records)
    run_records = json.loads((run / "config.json").read_text())["corpus_fingerprint"]["utterances"]
    assert [r[:5] + r[6:] for r in run_records] == [r[:5] + r[6:] for r in records]
    assert all(isinstance(r[5], int) for r in run_records)  # the run directory keeps the times

    # The same run on a corpus copied anew: every file has a new time, the same content.
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    before = (copy / RECIPE / "emodb" / "config.json").read_bytes()
    moved = tmp_path / "run"
    moved.mkdir()
    config = json.loads(before)
    for k, record in enumerate(config["corpus_fingerprint"]["utterances"]):
        record[5] = 1796459579520115000 + k
    (moved / "config.json").write_text(json.dumps(config))
    mirror = ResultsMirror(copy / RECIPE / "emodb")
    mirror.check_config(moved)
    assert (copy / RECIPE / "emodb" / "config.json").read_bytes() == before
    # A file whose content changed is still refused.
    config["corpus_fingerprint"]["utterances"][0][6] = "0" * 32
    (moved / "config.json").write_text(json.dumps(config))
    with pytest.raises(DataError, match="content changed"):
        mirror.check_config(moved)


def test_results_dir_names_a_manifest_by_its_file():
    recipe = {"recipe": {"name": "r"}, "experiment": {"corpus": "manifest:/data/my corpus.csv"}}
    assert results_module.results_dir("results", recipe).as_posix() == "results/r/manifest_my_corpus"


def _four_speaker_manifest(tmp_path, emodb_dir):
    """A manifest of two EMO-DB utterances (anger, neutral) of each of four speakers."""
    rows = ["path,label,speaker,gender"]
    for speaker, gender in {"03": "male", "08": "female", "09": "female", "10": "male"}.items():
        for code, label in {"W": "anger", "N": "neutral"}.items():
            rows.append(f"{sorted((emodb_dir / 'wav').glob(f'{speaker}???{code}?.wav'))[0]},{label},{speaker},{gender}")
    manifest = tmp_path / "corpus.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest


@pytest.fixture()
def score_stand_in(monkeypatch):
    """Replace fold training by a stand-in writing seeded random scores (no models); returns its log."""
    import numpy as np

    from keras_ser.experiments.run_dir import write_json, write_predictions
    from keras_ser.metrics import classification_scores

    trained = []

    def run_fold(recipe, fold, label_names, fold_dir, **_):
        trained.append((recipe["recipe"]["name"], fold.name))
        rng = np.random.default_rng(len(trained))
        for part, utterances in (("predictions.csv", fold.test), ("val_predictions.csv", fold.validation)):
            scores = rng.dirichlet(np.ones(len(label_names)), len(utterances))
            write_predictions(fold_dir / part, [u.id for u in utterances], [u.label for u in utterances],
                              [label_names[k] for k in scores.argmax(1)], scores, label_names)
        if recipe["experiment"]["save_features"]:  # what feature-level fusion reads
            np.savez(fold_dir / "embeddings.npz", train_x=rng.normal(size=(len(fold.train), 4)),
                     test_x=rng.normal(size=(len(fold.test), 4)), train_ids=[u.id for u in fold.train],
                     test_ids=[u.id for u in fold.test])
        y_true = [label_names.index(u.label) for u in fold.test]
        write_json(fold_dir / "metrics.json", {"fold": fold.name, "epochs_run": None, "best_epoch": None,
                                               "scores": classification_scores(y_true, [0] * len(y_true),
                                                                               label_names)})

    monkeypatch.setattr(runner, "run_fold", run_fold)
    return trained


def test_score_level_fusion_resumes_from_the_members_scores_alone(tmp_path, emodb_dir, score_stand_in, capsys):
    from keras_ser.report import collect

    trained = score_stand_in
    manifest = _four_speaker_manifest(tmp_path, emodb_dir)
    overrides = ["fusion.level=score", "experiment.save_models=false"]
    argv = ["--recipe", "zhang2021_multicnn_fusion", "--corpus", f"manifest:{manifest}", "--no-progress",
            "--results", str(tmp_path / "results")] + overrides
    assert main(argv + ["--out", str(tmp_path / "first")]) == 0
    assert len(trained) == 3 * 4
    stored = tmp_path / "results" / "zhang2021_multicnn_fusion" / "manifest_corpus"
    fused = (stored / "score" / "folds" / "speaker_03" / "predictions.csv").read_bytes()
    assert (stored / "members" / "zhang2021_multicnn_3d" / "folds" / "speaker_10" / "val_predictions.csv").is_file()

    trained.clear()
    assert main(argv + ["--out", str(tmp_path / "second")]) == 0
    assert trained == []
    err = capsys.readouterr().err
    assert err.count("4 finished fold(s) restored") == 3
    assert "fused fold(s) restored" not in err  # every fold is fused again from the restored scores
    second = tmp_path / "second" / "score" / "folds" / "speaker_03" / "predictions.csv"
    assert second.read_bytes() == fused  # the same fusion from the restored scores
    row = next(r for r in collect(tmp_path / "results") if r["system"] == "zhang2021_multicnn_fusion (score-level)")
    assert row["paper"] == "zhang2021_multicnn" and row["complete"] and row["folds_done"] == [
        "speaker_03", "speaker_08", "speaker_09", "speaker_10"]
    assert row["paper_table"] == "Table 7, Score-level (1D, 2D, 3D)"


def _stand_in_trainer(tmp_path, emodb_dir):
    """``(train(recipe, out, *args), results)``: runs ``train`` on the four-speaker corpus into ``results``."""
    manifest = _four_speaker_manifest(tmp_path, emodb_dir)
    results = tmp_path / "results"
    # The stand-in saves no model, so no fold counts as finished unless models are not asked for.
    common = ["--corpus", f"manifest:{manifest}", "--no-progress", "--results", str(results),
              "experiment.save_models=false"]

    def train(recipe, out, *extra):
        assert main(["--recipe", recipe, "--out", str(tmp_path / out)] + common + list(extra)) == 0

    return train, results


def test_score_level_fusion_takes_folds_from_members_run_on_their_own(tmp_path, emodb_dir, score_stand_in,
                                                                       capsys):
    trained = score_stand_in
    train, results = _stand_in_trainer(tmp_path, emodb_dir)
    # The members on their own: 1D on two folds, 2D (random weights, in a variant folder) on all
    # four, 3D with another seed, whose scores the fusion (seed 42) must not take.
    train("zhang2021_multicnn_1d", "1d", "--folds", "03,08")
    train("zhang2021_multicnn_2d", "2d", "--results-variant", "random_init", "model.weights=none")
    train("zhang2021_multicnn_3d", "3d", "experiment.seed=7")
    own_2d = (results / "zhang2021_multicnn_2d" / "manifest_corpus__random_init" / "folds" / "speaker_09"
              / "predictions.csv").read_bytes()
    trained.clear()
    capsys.readouterr()

    train("zhang2021_multicnn_fusion", "fusion", "fusion.level=score", "zhang2021_multicnn_2d:model.weights=none")
    assert sorted(trained) == sorted([("zhang2021_multicnn_1d", "speaker_09"), ("zhang2021_multicnn_1d", "speaker_10")]
                                     + [("zhang2021_multicnn_3d", f"speaker_{s}") for s in ("03", "08", "09", "10")])
    err = capsys.readouterr().err
    assert "2 finished fold(s) restored from" in err and "4 finished fold(s) restored from" in err
    member_2d = results / "zhang2021_multicnn_fusion" / "manifest_corpus" / "members" / "zhang2021_multicnn_2d"
    assert (member_2d / "folds" / "speaker_09" / "predictions.csv").read_bytes() == own_2d
    fused = results / "zhang2021_multicnn_fusion" / "manifest_corpus" / "score" / "folds"
    assert sorted(p.name for p in fused.iterdir()) == ["speaker_03", "speaker_08", "speaker_09", "speaker_10"]

    # Feature-level fusion needs the members' embeddings, which results/ does not keep: nothing is taken.
    trained.clear()
    train("zhang2021_multicnn_fusion", "fusion_features", "--results-variant", "features", "fusion.level=feature",
          "zhang2021_multicnn_2d:model.weights=none", "--folds", "03")
    assert sorted(name for name, _ in trained) == ["zhang2021_multicnn_1d", "zhang2021_multicnn_2d",
                                                   "zhang2021_multicnn_3d"]


def test_a_member_run_on_its_own_takes_the_folds_a_fusion_trained_for_it(tmp_path, emodb_dir, score_stand_in,
                                                                         capsys):
    trained = score_stand_in
    train, results = _stand_in_trainer(tmp_path, emodb_dir)
    # Feature-level fusion trains its members' fold 03 (it needs their embeddings).
    train("zhang2021_multicnn_fusion", "fusion", "--results-variant", "random_init_feature", "fusion.level=feature",
          "zhang2021_multicnn_2d:model.weights=none", "--folds", "03")
    member_fold = (results / "zhang2021_multicnn_fusion" / "manifest_corpus__random_init_feature" / "members"
                   / "zhang2021_multicnn_2d" / "folds" / "speaker_03" / "predictions.csv").read_bytes()
    trained.clear()
    capsys.readouterr()

    # The 2D network on its own with the member's settings trains only the other three folds ...
    train("zhang2021_multicnn_2d", "2d", "--results-variant", "random_init", "model.weights=none")
    assert sorted(trained) == [("zhang2021_multicnn_2d", f"speaker_{s}") for s in ("08", "09", "10")]
    assert "1 finished fold(s) restored from" in capsys.readouterr().err
    own = results / "zhang2021_multicnn_2d" / "manifest_corpus__random_init" / "folds" / "speaker_03"
    assert (own / "predictions.csv").read_bytes() == member_fold
    # ... and a member run with other settings (the 3D network with another seed) takes nothing.
    trained.clear()
    train("zhang2021_multicnn_3d", "3d", "experiment.seed=7")
    assert len(trained) == 4


def test_feature_level_fusion_reports_the_folds_fused_in_another_run_directory(tmp_path, emodb_dir, score_stand_in,
                                                                              capsys):
    # Each fold of a long feature-level fusion run may be trained in its own run directory (another
    # machine, another day); results/ keeps the fused scores but not the members' embeddings.
    trained = score_stand_in
    train, results = _stand_in_trainer(tmp_path, emodb_dir)
    args = ("--results-variant", "features", "fusion.level=feature", "zhang2021_multicnn_2d:model.weights=none")
    train("zhang2021_multicnn_fusion", "first", *args, "--folds", "03")
    stored = results / "zhang2021_multicnn_fusion" / "manifest_corpus__features" / "feature"
    first_fold = (stored / "folds" / "speaker_03" / "predictions.csv").read_bytes()
    trained.clear()
    capsys.readouterr()

    train("zhang2021_multicnn_fusion", "second", *args, "--folds", "08")
    assert sorted(trained) == [(m, "speaker_08") for m in ("zhang2021_multicnn_1d", "zhang2021_multicnn_2d",
                                                           "zhang2021_multicnn_3d")]
    assert "1 feature-level fused fold(s) restored from" in capsys.readouterr().err
    for reports_dir in (tmp_path / "second" / "feature", stored):
        report = json.loads((reports_dir / "results.json").read_text())
        assert report["folds_done"] == ["speaker_03", "speaker_08"] and report["folds_total"] == 4
        assert "(2 of 4 folds done)" in (reports_dir / "results.md").read_text()
    assert (stored / "folds" / "speaker_03" / "predictions.csv").read_bytes() == first_fold
    # The pooled scores are those of both folds' predictions together.
    from keras_ser.experiments.run_dir import read_predictions
    from keras_ser.metrics import classification_scores

    labels = json.loads((stored / "labels.json").read_text())
    y_true, y_pred = [], []
    for fold in ("speaker_03", "speaker_08"):
        _, true, predicted, _ = read_predictions(stored / "folds" / fold / "predictions.csv")
        y_true += [labels.index(v) for v in true]
        y_pred += [labels.index(v) for v in predicted]
    expected = classification_scores(y_true, y_pred, labels)
    assert report["pooled"]["ua"] == pytest.approx(expected["ua"]) and report["pooled"]["n"] == len(y_true) == 4

    # The next fold in the same directory: fold 03, restored by the run before, is still reported.
    train("zhang2021_multicnn_fusion", "second", *args, "--folds", "09")
    for reports_dir in (tmp_path / "second" / "feature", stored):
        report = json.loads((reports_dir / "results.json").read_text())
        assert report["folds_done"] == ["speaker_03", "speaker_08", "speaker_09"]
        assert "(3 of 4 folds done)" in (reports_dir / "results.md").read_text()


def test_scores_config_differences_compare_recipes_not_overrides():
    from keras_ser.experiments.results import scores_config_differences

    def config(seed, weights, save_features, overrides):
        return {"recipe": {"experiment": {"seed": seed, "save_features": save_features, "save_models": True},
                           "model": {"weights": weights}}, "overrides": overrides, "strategy": "default"}

    own = config(42, "none", False, ["model.weights=none"])
    member = config(42, "none", True, ["model.weights=none", "experiment.seed=42", "experiment.save_features=true"])
    assert scores_config_differences(own, member) == []
    assert config_differences(own, member) != []  # a resume of the same run would refuse it
    assert scores_config_differences(own, config(7, "none", True, [])) == ["recipe.experiment.seed: 42 -> 7"]
    assert scores_config_differences(own, config(42, "imagenet", False, [])) == [
        'recipe.model.weights: "none" -> "imagenet"']
