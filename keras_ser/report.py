"""``python -m keras_ser.report``: one results table per paper from a ``results/`` folder.

Usage::

    python -m keras_ser.report [RESULTS_DIR] [--out FILE] [--chart FILE] [--verbose|--quiet] [--version]

Reads every run that ``python -m keras_ser.train --results RESULTS_DIR`` mirrored
(``RESULTS_DIR/<recipe>/<corpus>/``, see :mod:`keras_ser.experiments.results`) and writes
``RESULTS_DIR/README.md`` and the bar chart ``RESULTS_DIR/results.png``:

* one table per paper (zhao2019, zhao2018, zhang2021_multicnn, zhang2021_dcnn,
  tzirakis2021: from the recipe name's prefix, else its ``[recipe] paper`` field), one
  row per recipe and corpus (per fusion level for a fusion recipe): the paper's table and
  row, corpus, protocol, folds done of the protocol's folds, our UA / WA / macro-F1 pooled
  over the test predictions of all folds with the standard deviation over folds, the
  validation UA pooled over the validation predictions (under ``experiment.repeats``, the
  mean over the runs of each run's pooled figures: zhang2021_dcnn Sec. 3.2), the paper's
  figure, the weights used, the training precision and the summed per-fold wall time;
* a run with folds missing is marked "partial: k of n folds" and its numbers are put in
  brackets and italics: they cover only those folds; under ``experiment.repeats``, the
  finished runs of an unfinished fold are counted beside it ("speaker_03: 1 of 3 runs");
* for each paper, its main system against the SVM baselines run on the same corpus and
  protocol, with the one-tailed two-proportion z-test on accuracy
  (:func:`keras_ser.metrics.accuracy_z_test`, zhao2019 Sec. IV-C), on the test
  utterances of the folds both runs have: all of them when both are complete, else the
  folds the partial run has, marked "k of n folds (partial)". A paper whose main system
  has no run yet is represented by the stand-in listed after it in :data:`MAIN_SYSTEMS`;
* for each paper, its shipped recipes for a corpus that results/ has runs on but with no
  run of their own there (:func:`recipes_without_run`), so that a row not run yet is seen
  missing rather than silently absent.

Every number is recomputed from the folds' ``metrics.json`` and ``predictions.csv``, so
the table never disagrees with the files committed beside it.

Example
-------
>>> from keras_ser.report import main
>>> main(["results"])  # doctest: +SKIP

One module on purpose: the command, its tables, the z-tests and the chart all read the
same recomputed per-recipe scores.
"""

import argparse
import csv
import pathlib
import sys

import numpy as np

from keras_ser import _cli
from keras_ser.errors import DataError, KerasSERError
from keras_ser.experiments.reports import repeat_summary
from keras_ser.experiments.results import VARIANT_SEPARATOR, fold_problem
from keras_ser.experiments.run_dir import (RunDir, atomic_path, corpus_display_name, read_json, read_predictions,
                                           repeat_dir, write_text)
from keras_ser.metrics import accuracy_z_test, classification_scores, regression_scores
from keras_ser.recipe import available_recipes, load_recipe, recipe_repeats

#: Paper key -> (the file number that opened ``[recipe] paper`` in runs recorded before the recipes
#: named papers by key, citation).
PAPERS = {
    "zhao2019": ("000", "Zhao, Bao, Zhao, Zhang, Cummins, Ren, Schuller. IEEE Access 7, 2019"),
    "zhao2018": ("004", "Zhao, Zheng, Zhang, Wang, Zhao, Li. Interspeech 2018"),
    "zhang2021_multicnn": ("001", "Zhang, Tao, Chuang, Zhao. Speech Communication 127, 2021"),
    "zhang2021_dcnn": ("002", "Zhang, Gou, Shang, Shen, Wu, Dai. Frontiers in Physiology 12, 2021"),
    "tzirakis2021": ("003", "Tzirakis, Nguyen, Zafeiriou, Schuller. ICASSP 2021"),
}

#: Each paper's main system, the row set against the SVM baselines, then the systems that stand
#: in for it, in order, while it has no scored run: zhang2021_dcnn's Table 2 row without speed
#: perturbation is the same DCNN-BLSTMwA trained on unperturbed speech only.
MAIN_SYSTEMS = {
    "zhao2019": ("zhao2019_attention_blstm_fcn",),
    "zhao2018": ("zhao2018_attention_blstm_fcn",),
    "zhang2021_multicnn": ("zhang2021_multicnn_fusion (score-level)",),
    "zhang2021_dcnn": ("zhang2021_dcnn_blstmwa", "zhang2021_dcnn_blstmwa_speed1"),
    "tzirakis2021": ("tzirakis2021_semantic",),
}

#: SVM runs that dissect a trained system rather than stand beside it as a baseline: the z-tests
#: leave them out (zhang2021_dcnn_fc7_svm reads the DCNN-BLSTMwA's own fc7 and attention vector).
DIAGNOSTICS = ("zhang2021_dcnn_fc7_svm",)

#: Model names whose network starts from an ImageNet backbone in the paper (weights: ``backbone_weights``).
BACKBONE_MODELS = ("zhang2021_multicnn_2d", "zhang2021_dcnn", "zhang2021_alexnet")

#: Significance level of the z-test column.
ALPHA = 0.05


def paper_key(recipe):
    """The paper of a recipe: its name's prefix, else its ``[recipe] paper`` field ("zhao2019 Zhao ..."), else "other"."""
    name = recipe["recipe"]["name"]
    for key in sorted(PAPERS, key=len, reverse=True):
        if name.startswith(key + "_") or name == key:
            return key
    field = str(recipe["recipe"].get("paper", "")).strip()
    for key, (number, _) in PAPERS.items():
        if field.startswith(number) or field.startswith(key):
            return key
    return "other"


RANDOM_INIT = "random init (no ImageNet weights)"

#: Keys naming an ImageNet CNN's starting weights in a recipe table (``weights``; ``backbone_weights``
#: before recipes had the setting).
WEIGHTS_KEYS = ("weights", "backbone_weights")


def _weights_text(weights):
    """``None`` / ``"none"``: random initialisation; ``"imagenet"``; else the weight file."""
    if weights in (None, "", "none"):
        return RANDOM_INIT
    return "ImageNet" if weights == "imagenet" else str(weights)


def _without_file_number(table):
    """A recorded table reference without the paper's file number older runs put first ("000 Table 7" -> "Table 7")."""
    number, _, rest = str(table).partition(" ")
    return rest if rest and number in {legacy for legacy, _ in PAPERS.values()} else str(table)


def _recorded_weights(table):
    return next((table[key] for key in WEIGHTS_KEYS if table.get(key) not in (None, "")), None)


def weights_used(recipe):
    """The starting weights of a run's ImageNet CNN as its recipe records them; "n/a" without such a CNN.

    A CNN recipe that records no weights setting comes from before the setting existed,
    when every CNN started from random weights.
    """
    kind = recipe["experiment"]["kind"]
    if kind == "features_svm":
        features = recipe.get("features", {})
        name = str(features.get("name", ""))
        if name.startswith("embedding:"):
            return f"embeddings of {name.split(':', 1)[1]}"
        return _weights_text(_recorded_weights(features)) if name.endswith("_fc7") else "n/a"
    if kind == "fusion":
        members = recipe.get("fusion", {}).get("members", [])
        cnn = [m for m in members if m.startswith(BACKBONE_MODELS)]
        return f"{', '.join(cnn)}: see its member run" if cnn else "n/a"
    if kind == "two_stage":
        # Stage 2 trains from scratch on the fc7 features of the stage-1 CNN.
        name, options = recipe["stage1"]["model"], recipe["stage1"].get("model_options", {})
    else:
        name, options = recipe.get("model", {}).get("name", ""), recipe.get("model", {})
    weights = _recorded_weights(options)
    if not (name.startswith(BACKBONE_MODELS) or weights is not None):
        return "n/a"
    text = _weights_text(weights)
    # A random start other than Keras' defaults (zhang2021_dcnn Table 4's, alexnet_initializers).
    initializer = options.get("initializer", "keras")
    if text == RANDOM_INIT and initializer != "keras":
        return f"random init, {initializer} initializer (no ImageNet weights)"
    return text


def precision_used(config):
    """The training precision recorded in ``config.json`` (resolved policy, else the recipe's), "float32" if absent."""
    resolved = config.get("precision")
    if isinstance(resolved, dict) and resolved:
        values = {str(v) for v in resolved.values()}
        return values.pop() if len(values) == 1 else ", ".join(f"{k} {v}" for k, v in resolved.items())
    return str(config.get("recipe", {}).get("train", {}).get("precision", "float32"))


def _paper_row(recipe, corpus, level=None):
    """The ``[[paper.reported]]`` row to show beside ours: the fusion level's, on our corpus if the paper has it."""
    rows = list(recipe.get("paper", {}).get("reported", []))
    if level:
        rows = [r for r in rows if f"{level}-level" in str(r.get("table", "")).lower()] or rows
    if not rows:
        return None
    # Rows that state their weights (pretrained or not) are matched to ours.
    pretrained = weights_used(recipe) not in (RANDOM_INIT, "n/a")
    rows = [r for r in rows if "weights" not in r or (r["weights"] != "none") == pretrained] or rows
    ours = "emo-db" if corpus == "emodb" else str(corpus).lower()
    return next((r for r in rows if ours in str(r.get("corpus", "")).lower()), rows[0])


def _paper_table(recipe, reported):
    """The "paper table / row" cell: the reported row's table, else the recipe's description."""
    if reported:
        return _without_file_number(reported.get("table", "-"))
    return recipe["recipe"].get("description") or "-"


def _paper_figure(row):
    """``("UA 87.9 +- 6.9, ...", value for the chart, its measure)`` of a reported row."""
    if row is None:
        return "-", None, None
    numbers = {k: v for k, v in row.items() if k not in ("table", "corpus", "protocol", "weights")}
    text = ", ".join(f"{k} {v}" for k, v in numbers.items())
    for measure in ("UA", "accuracy", "WA"):
        if isinstance(numbers.get(measure), (int, float)):
            return text, float(numbers[measure]), measure
    return text, None, None


def load_run(folder, system=None, level=None):
    """One table row from a run folder of ``results/``.

    Parameters
    ----------
    folder : path
        ``results/<recipe>/<corpus>`` (or its ``score`` / ``feature`` level of a fusion run).
    system : str, optional
        The row's name (default: the recipe name).
    level : {"score", "feature"}, optional
        The fusion level, to pick the paper's matching row.

    Returns
    -------
    dict
    """
    folder = pathlib.Path(folder)
    run = RunDir(folder)
    config = read_json(run.config)
    if not isinstance(config, dict) or "recipe" not in config:
        raise DataError(f"{run.config} holds no recipe")
    recipe = config["recipe"]
    parent_config = read_json(folder.parent / "config.json") if level else config
    labels = read_json(run.labels)
    summary = read_json(folder / "results.json") if (folder / "results.json").is_file() else {}
    names = sorted(set(run.fold_names()) | set(summary.get("folds_done", [])))
    done = [name for name in names if fold_problem(run.fold(name), name, labels) is None]
    total = summary.get("folds_total")
    repeats = recipe_repeats(recipe)
    # experiment.repeats: the finished runs of folds not finished yet (results/ keeps each as it ends).
    runs_in_progress = {}
    for name in (n for n in names if n not in done):
        finished = sum(fold_problem(repeat_dir(run.fold(name), k), name, labels) is None
                       for k in range(1, repeats + 1))
        if finished:
            runs_in_progress[name] = finished
    corpus = config.get("corpus", recipe["experiment"]["corpus"])
    # train --results-variant: results/<recipe>/<corpus>__<variant>
    variant = (folder.parent if level else folder).name.partition(VARIANT_SEPARATOR)[2]
    row = {
        "paper": paper_key(recipe), "recipe": recipe, "variant": variant or None,
        "system": (system or recipe["recipe"]["name"]) + (f" [{variant}]" if variant else ""),
        "kind": recipe["experiment"]["kind"], "folder": folder, "corpus": corpus,
        "corpus_display": corpus_display_name(corpus), "protocol": recipe["experiment"]["protocol"],
        "folds_done": done, "folds_total": total, "runs_in_progress": runs_in_progress, "repeats": repeats,
        "complete": total is not None and len(done) == total,
        "weights": weights_used(recipe), "precision": precision_used(parent_config),
    }
    reported = _paper_row(recipe, corpus, level)
    row["paper_table"] = _paper_table(recipe, reported)
    row["paper_corpus"] = reported.get("corpus", "") if reported else ""
    row["paper_figure"], row["paper_value"], row["paper_measure"] = _paper_figure(reported)
    if not done:
        return row
    if recipe["train"].get("loss") == "ccc":
        return _regression_row(row, run, done, labels)
    index = {name: k for k, name in enumerate(labels)}
    y_true, y_pred, val_true, val_pred, fold_scores, wall, fold_metrics = [], [], [], [], [], [], []
    row["fold_correct"] = {}
    for name in done:
        metrics = read_json(run.metrics(name))
        fold_metrics.append(metrics)
        fold_scores.append(metrics["scores"])
        if metrics.get("wall_s") is not None:
            wall.append(float(metrics["wall_s"]))
        _, true, predicted, _ = read_predictions(run.predictions(name))
        y_true += [index[v] for v in true]
        y_pred += [index[v] for v in predicted]
        row["fold_correct"][name] = (float(np.sum(np.asarray(true) == np.asarray(predicted))), len(true))
        if run.val_predictions(name).is_file():
            _, true, predicted, _ = read_predictions(run.val_predictions(name))
            val_true += [index[v] for v in true]
            val_pred += [index[v] for v in predicted]
    pooled = classification_scores(y_true, y_pred, labels)
    row["pooled"] = {k: pooled[k] for k in ("ua", "wa", "macro_f1", "n")}
    row["std"] = {k: float(np.std([s[k] for s in fold_scores if s.get(k) is not None]))
                  for k in ("ua", "wa", "macro_f1")}
    if val_true:
        row["val_ua"] = classification_scores(val_true, val_pred, labels)["ua"]
    if repeats > 1 and all(m.get("per_repeat") for m in fold_metrics):
        _mean_of_runs(row, fold_metrics, labels)
    if wall:
        row["wall_s"] = float(sum(wall))
    return row


def _mean_of_runs(row, fold_metrics, labels):
    """Score a row under ``experiment.repeats`` by the mean of its runs, as zhang2021_dcnn does.

    zhang2021_dcnn Sec. 3.2: "for each speaker, we test three times and take the average
    accuracy as the speaker's result". The row's UA / WA / F1 become the mean over the runs
    of each run's pooled scores, and its validation UA likewise; the z-test counts each fold's
    mean over its runs of correct test predictions. The scores of the runs' mean probabilities (the
    folds' ``predictions.csv``: an ensemble of the runs, usually more accurate than one) are
    kept as ``row["ensemble"]``.
    """
    test = repeat_summary(fold_metrics, labels)["mean"]["pooled"]
    n = row["pooled"]["n"]
    row["ensemble"] = row["pooled"]
    row["pooled"] = {"ua": test["ua"], "wa": test["wa"], "macro_f1": test["macro_f1"], "n": n}
    # Each fold's mean over its runs of the correct count (a run's WA times the fold's utterances).
    for m in fold_metrics:
        runs = [r["scores"] for r in m["per_repeat"]]
        row["fold_correct"][m["fold"]] = (float(np.mean([r["wa"] * r["n"] for r in runs])), runs[0]["n"])
    if all(r.get("validation_scores") for m in fold_metrics for r in m["per_repeat"]):
        validation = [{"fold": m["fold"], "per_repeat": [{"scores": r["validation_scores"]}
                                                         for r in m["per_repeat"]]} for m in fold_metrics]
        row["val_ua"] = repeat_summary(validation, labels)["mean"]["pooled"]["ua"]


def _regression_row(row, run, done, dimensions):
    """A regression run's row (CCC loss, tzirakis2021): CCC per dimension pooled over its folds' predictions."""
    true, predicted, fold_means, wall = [], [], [], []
    for name in done:
        metrics = read_json(run.metrics(name))
        fold_means.append(metrics["scores"]["ccc_mean"])
        if metrics.get("wall_s") is not None:
            wall.append(float(metrics["wall_s"]))
        with open(run.predictions(name), newline="", encoding="utf-8") as handle:
            for line in csv.DictReader(handle):
                true.append([float(line[f"true_{d}"]) for d in dimensions])
                predicted.append([float(line[f"pred_{d}"]) for d in dimensions])
    row["regression"] = regression_scores(true, predicted, dimensions)
    row["ccc_mean_std"] = float(np.std(fold_means))
    if wall:
        row["wall_s"] = float(sum(wall))
    return row


def _ccc(row):
    scores = row["regression"]
    text = (", ".join(f"{d} {v:.3f}" for d, v in scores["ccc"].items())
            + f"; mean {scores['ccc_mean']:.3f} ± {row['ccc_mean_std']:.3f}")
    return text if row["complete"] else f"*[{text}]*"


def collect(results_root):
    """Every run row under ``results_root`` (``<recipe>/<corpus>/``; fusion runs give one row per level)."""
    results_root = pathlib.Path(results_root)
    if not results_root.is_dir():
        raise DataError(f"results folder {results_root} does not exist")
    rows = []
    for config_path in sorted(results_root.glob("*/*/config.json")):
        folder = config_path.parent
        config = read_json(config_path)
        recipe = config.get("recipe") if isinstance(config, dict) else None
        if not recipe:
            raise DataError(f"{config_path} holds no recipe")
        if recipe["experiment"]["kind"] == "fusion":
            for level in ("score", "feature"):
                if (folder / level / "config.json").is_file():
                    rows.append(load_run(folder / level, f"{recipe['recipe']['name']} ({level}-level)", level))
        else:
            rows.append(load_run(folder))
    return rows


def recipes_without_run(rows, names=None):
    """The shipped recipes, per paper, for a corpus ``rows`` have runs on but with no run of their own.

    Parameters
    ----------
    rows : list of dict
        From :func:`collect`.
    names : sequence of str, optional
        The recipes to look at (default :func:`keras_ser.recipe.available_recipes`).

    Returns
    -------
    dict
        Paper key -> list of ``(recipe name, corpus, paper table / row)``, in recipe-name order:
        the table and row its run would show (:func:`_paper_row`).
    """
    corpora = {r["corpus"] for r in rows}
    ran = {(r["recipe"]["recipe"]["name"], r["corpus"]) for r in rows}
    missing = {}
    for name in available_recipes() if names is None else names:
        recipe = load_recipe(name)
        corpus = recipe["experiment"]["corpus"]
        if corpus not in corpora or (name, corpus) in ran:
            continue
        table = _paper_table(recipe, _paper_row(recipe, corpus))
        missing.setdefault(paper_key(recipe), []).append((name, corpus, table))
    return missing


def _without_run_text(missing):
    """The paragraph listing a paper's recipes with no run (:func:`recipes_without_run`), or ``[]``."""
    if not missing:
        return []
    by_corpus = {}
    for name, corpus, table in missing:
        by_corpus.setdefault(corpus, []).append(f"`{name}` ({table})")
    return [" ".join(f"Recipes for {corpus_display_name(corpus)} with no run in results/ yet: "
                     f"{', '.join(entries)}." for corpus, entries in by_corpus.items()), ""]


def _pct(value):
    return "-" if value is None else f"{100 * value:.1f}"


def _ours(row, key):
    if "pooled" not in row:
        return "-"
    text = f"{_pct(row['pooled'][key])} ± {_pct(row['std'][key])}"
    return text if row["complete"] else f"*[{text}]*"


def _folds(row):
    total = "?" if row["folds_total"] is None else row["folds_total"]
    text = f"{len(row['folds_done'])} / {total}"
    if row["complete"]:
        return text
    runs = "".join(f"; {name}: {count} of {row['repeats']} runs" for name, count in row["runs_in_progress"].items())
    return f"partial: {len(row['folds_done'])} of {total} folds{runs}"


def _wall(row):
    seconds = row.get("wall_s")
    if seconds is None:
        return "-"
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def _ordered(rows, key):
    main = MAIN_SYSTEMS.get(key, ())
    return sorted(rows, key=lambda r: (_system_name(r) not in main, r["kind"] == "features_svm",
                                       r["system"], r["corpus"]))


def _system_name(row):
    """The row's system without its ``[variant]`` suffix (``train --results-variant``)."""
    suffix = f" [{row['variant']}]" if row.get("variant") else ""
    return row["system"][:-len(suffix)] if suffix and row["system"].endswith(suffix) else row["system"]


def main_rows(rows, key):
    """The name and rows of ``key``'s main system that the z-tests compare with the SVM baselines.

    The first name of ``MAIN_SYSTEMS[key]`` with a scored classification row, where its
    port to the row's corpus counts too (``<main>_<corpus>``, e.g. ``tzirakis2021_semantic_emodb``
    for tzirakis2021's SEWA system run on EMO-DB). Per corpus and protocol, the run without a
    results variant when there is one, else each of its variants (``zhang2021_multicnn_fusion
    (score-level) [random_init]`` where no ImageNet weights exist).

    Returns
    -------
    (str or None, list of dict)
        The name used (None when no listed system has a scored row) and its rows.
    """
    for name in MAIN_SYSTEMS.get(key, ()):
        found = [r for r in rows if r["paper"] == key and "fold_correct" in r
                 and _system_name(r) in (name, f"{name}_{r['corpus']}")]
        if not found:
            continue
        chosen = []
        for setting in dict.fromkeys((r["corpus"], r["protocol"]) for r in found):
            same = [r for r in found if (r["corpus"], r["protocol"]) == setting]
            chosen += [r for r in same if not r.get("variant")] or same
        return name, chosen
    return None, []


def z_tests(rows, key):
    """The paper's main system (:func:`main_rows`) against each SVM baseline on the same corpus and protocol.

    The SVM runs of :data:`DIAGNOSTICS` are not baselines and are left out.

    Both are scored on the test utterances of the folds they share: every fold when both runs
    are complete; when one is partial, the folds it has, so that the comparison is paired on
    the same speakers (marked partial in the table). Under ``experiment.repeats`` a fold counts
    the mean over its runs of the correct predictions, as its scores do.

    Returns
    -------
    list of dict
        ``main``, ``baseline`` (rows) and, when they share folds with the same test
        utterances, ``folds`` (their names), ``n`` (their test utterances), ``wa_main``,
        ``wa_baseline`` (accuracy on them) and ``z`` and ``p`` of
        :func:`keras_ser.metrics.accuracy_z_test`; otherwise ``reason``.
    """
    tests = []
    for a in main_rows(rows, key)[1]:
        for b in rows:
            if (b["kind"] != "features_svm" or _system_name(b) in DIAGNOSTICS
                    or (b["corpus"], b["protocol"]) != (a["corpus"], a["protocol"])):
                continue
            test = {"main": a, "baseline": b}
            tests.append(test)
            folds = sorted(set(a.get("fold_correct", {})) & set(b.get("fold_correct", {})))
            if not folds:
                test["reason"] = "not tested: no fold in common"
                continue
            sizes = [(name, a["fold_correct"][name][1], b["fold_correct"][name][1]) for name in folds]
            mismatch = next(((name, n_a, n_b) for name, n_a, n_b in sizes if n_a != n_b), None)
            if mismatch:
                test["reason"] = f"not tested: {mismatch[0]} has {mismatch[1]} vs {mismatch[2]} test utterances"
                continue
            n = sum(n_a for _, n_a, _ in sizes)
            correct_a = sum(a["fold_correct"][name][0] for name in folds)
            correct_b = sum(b["fold_correct"][name][0] for name in folds)
            test.update(folds=folds, n=n, wa_main=correct_a / n, wa_baseline=correct_b / n)
            # A mean over runs need not be whole: the test counts it to the nearest utterance.
            test["z"], test["p"] = accuracy_z_test(int(round(correct_a)), n, int(round(correct_b)), n)
    return tests


def _tested_folds(test):
    """The z-test table's folds cell: "10 / 10", or "2 of 10 (partial): speaker_03, speaker_08"."""
    a, b = test["main"], test["baseline"]
    total = a["folds_total"] if a["folds_total"] is not None else b["folds_total"]
    total = "?" if total is None else total
    if a["complete"] and b["complete"] and len(test["folds"]) == total:
        return f"{total} / {total}"
    return f"{len(test['folds'])} of {total} (partial): " + ", ".join(test["folds"])


def markdown(rows, chart_name=None):
    """The text of ``results/README.md``."""
    lines = [
        "# Results",
        "",
        "Generated by `python -m keras_ser.report results/` from the runs that "
        "`python -m keras_ser.train --recipe NAME --results results/` mirrored here "
        "(`<recipe>/<corpus>/`: config, per-fold metrics and predictions, reports). "
        "Ours: UA / WA / macro-F1 % pooled over the test predictions of all folds, ± the standard "
        "deviation of the per-fold figures; validation UA pooled over the validation speakers' "
        "predictions. A recipe that trains several runs per fold (`experiment.repeats`, "
        "zhang2021_dcnn's three) is scored by the mean over its runs of these figures, as the paper "
        "averages its runs (the runs' averaged probabilities, an ensemble, are in its `results.md`). "
        "A run with folds missing reads \"partial: k of n folds\" and its numbers, "
        "in *[brackets]*, cover only those folds. The paper's figure is its own corpus and protocol "
        "(often not EMO-DB): see each run's `results.md`. EMO-DB-2s is the 2-second cut of EMO-DB, "
        "not directly comparable with published full-length EMO-DB numbers.",
        "",
    ]
    if chart_name:
        lines += [f"![ours against the paper's figure]({chart_name})", ""]
    header = ("| system | paper table / row | corpus | protocol | folds | UA % | WA % | F1 % | val UA % "
              "| paper's figure | weights | precision | wall time |")
    without_run = recipes_without_run(rows)
    for key, (_, citation) in list(PAPERS.items()) + [("other", ("", "recipes of no listed paper"))]:
        paper_rows = _ordered([r for r in rows if r["paper"] == key], key)
        if key == "other" and not paper_rows:
            continue
        lines += [f"## {key}", "", f"{citation}.", ""]
        if not paper_rows:
            lines += ["No run in results/ yet.", ""] + _without_run_text(without_run.get(key))
            continue
        regression = [r for r in paper_rows if "regression" in r]
        paper_rows = [r for r in paper_rows if "regression" not in r]
        if regression:
            lines += ["Regression runs (CCC loss): concordance correlation per dimension pooled over the test "
                      "predictions of all folds; the mean over dimensions ± its standard deviation over folds.", "",
                      "| system | paper table / row | corpus | protocol | folds | CCC ours | paper's figure | "
                      "wall time |", "| " + " | ".join(["---"] * 8) + " |"]
            for r in regression:
                paper_figure = r["paper_figure"] + (f" ({r['paper_corpus']})" if r["paper_corpus"] else "")
                lines.append(f"| {r['system']} | {r['paper_table']} | {r['corpus_display']} | {r['protocol']} | "
                             f"{_folds(r)} | {_ccc(r)} | {paper_figure} | {_wall(r)} |")
            lines.append("")
        if not paper_rows:
            lines += _without_run_text(without_run.get(key))
            continue
        lines += [header, "| " + " | ".join(["---"] * 13) + " |"]
        for r in paper_rows:
            paper_figure = r["paper_figure"] + (f" ({r['paper_corpus']})" if r["paper_corpus"] else "")
            val = _pct(r.get("val_ua")) if r["complete"] or r.get("val_ua") is None else f"*[{_pct(r['val_ua'])}]*"
            lines.append(
                f"| {r['system']} | {r['paper_table']} | {r['corpus_display']} | {r['protocol']} | {_folds(r)} | "
                f"{_ours(r, 'ua')} | {_ours(r, 'wa')} | {_ours(r, 'macro_f1')} | {val} | {paper_figure} | "
                f"{r['weights']} | {r['precision']} | {_wall(r)} |"
            )
        lines.append("")
        lines += _without_run_text(without_run.get(key))
        if key == "other":
            continue
        tests = z_tests(rows, key)
        names = MAIN_SYSTEMS[key]
        used = main_rows(rows, key)[0] or names[0]
        heading = f"Main system ({names[0]})"
        if used != names[0]:
            heading = f"Main system ({names[0]}; no run yet, so its stand-in {used})"
        lines += [f"{heading} against the SVM baselines, same corpus and protocol: one-tailed two-proportion "
                  f"z-test on accuracy (WA) over the test utterances of the folds both runs have, "
                  f"H1: ours is more accurate.", ""]
        if not tests:
            lines += ["No pair in results/ yet (the main system or an SVM baseline on its corpus "
                      "and protocol is missing).", ""]
            continue
        lines += ["| main system | SVM baseline | corpus | folds tested | WA % ours | WA % baseline | z "
                  "| p (one-tailed) |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for t in tests:
            a, b = t["main"], t["baseline"]
            if "reason" in t:
                lines.append(f"| {a['system']} | {b['system']} | {a['corpus_display']} | - | - | - | {t['reason']} | |")
                continue
            z = f"{t['z']:.2f}"
            p = f"{t['p']:.3g}" + (f" (< {ALPHA:g})" if t["p"] < ALPHA else "")
            lines.append(f"| {a['system']} | {b['system']} | {a['corpus_display']} | {_tested_folds(t)} | "
                         f"{_pct(t['wa_main'])} | {_pct(t['wa_baseline'])} | "
                         f"{z} | {p} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def plot(rows, path):
    """Bar chart: our pooled UA (hatched when partial) beside the paper's figure, one pair of bars per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in rows if "pooled" in r]
    height = max(2.5, 0.45 * len(shown) + 1.5)
    fig, ax = plt.subplots(figsize=(9, height))
    y = np.arange(len(shown))
    ours = [100 * r["pooled"]["ua"] for r in shown]
    paper = [r["paper_value"] if r["paper_value"] is not None else 0.0 for r in shown]
    ax.barh(y - 0.2, ours, 0.4, label="ours, pooled UA (hatched: partial run)", color="tab:blue")
    for k, r in enumerate(shown):
        if not r["complete"]:
            ax.barh(y[k] - 0.2, ours[k], 0.4, color="none", edgecolor="white", hatch="//")
    ax.barh(y + 0.2, paper, 0.4, label="paper's figure (its corpus; UA, else accuracy)", color="tab:orange")
    ax.set_yticks(y, [f"{r['system']} ({r['corpus_display']})" for r in shown], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("%")
    ax.set_xlim(0, 100)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def write_report(results_root, out=None, chart=None):
    """Write ``README.md`` and ``results.png`` of ``results_root``; return the rows.

    Parameters
    ----------
    results_root : path
    out, chart : path, optional
        Default ``results_root/README.md`` and ``results_root/results.png``.
    """
    results_root = pathlib.Path(results_root)
    out = pathlib.Path(out) if out else results_root / "README.md"
    chart = pathlib.Path(chart) if chart else results_root / "results.png"
    rows = collect(results_root)
    plot(rows, chart)
    try:
        chart_name = chart.resolve().relative_to(out.parent.resolve()).as_posix()
    except ValueError:
        chart_name = str(chart.resolve())
    write_text(out, markdown(rows, chart_name))
    return rows


def build_parser():
    """The argument parser of ``python -m keras_ser.report``."""
    parser = argparse.ArgumentParser(
        prog="python -m keras_ser.report",
        description="Write the results table (README.md) and chart (results.png) of a results/ folder.",
    )
    parser.add_argument("results", nargs="?", default="results", help="the results/ folder (default results)")
    parser.add_argument("--out", help="the table's file (default RESULTS/README.md)")
    parser.add_argument("--chart", help="the chart's PNG file (default RESULTS/results.png)")
    return _cli.add_common_arguments(parser)


def main(argv=None):
    """Entry point; returns the process exit status (0; 2 on a keras_ser error)."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        rows = write_report(args.results, args.out, args.chart)
    except KerasSERError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not args.quiet:
        partial = sum(not r["complete"] for r in rows)
        print(f"{len(rows)} run(s), {partial} partial: wrote {args.out or pathlib.Path(args.results) / 'README.md'} "
              f"and {args.chart or pathlib.Path(args.results) / 'results.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
