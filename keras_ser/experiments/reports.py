"""Run reports: ``results.json``, ``results.md``, ``confusion.png``, ``curves.png``.

Built from the files each finished fold left in ``RUN_DIR/folds/<fold>/``
(``metrics.json``, ``predictions.csv``, ``history.json``), so a report can be
rebuilt at any time and covers exactly the folds that are done.

Two summaries are given, since the papers use both:

* **pooled**: WA / UA / macro-F1 over all test predictions of all folds together
  (one confusion matrix over the corpus; the usual reading of zhao2019 and zhao2018);
* **fold mean**: the mean and standard deviation over folds of each fold's UA and
  WA (zhang2021_dcnn Sec. 3.2: "the UAR of all speakers", reported as mean +- std).

Under ``experiment.repeats`` (:func:`keras_ser.experiments.runner.run_repeats`) a fold's
UA and WA are the means of its runs', and its ``predictions.csv`` holds the runs' mean
probabilities, so "pooled" is the pooled score of those means; ``repeats`` in
``results.json`` adds each run's own pooled and fold-mean scores over the folds
(:func:`repeat_summary`) and their mean and standard deviation over the runs.

Regression runs (``train.loss = "ccc"``, tzirakis2021) report the CCC of each dimension
instead: **pooled** over all folds' test utterances (their ``predictions.csv`` joined), and
the **fold mean** of each fold's CCC, beside the paper's figures (:func:`aggregate_regression`).

Imports :mod:`~keras_ser.experiments.run_dir` and :mod:`~keras_ser.experiments.resume` only, of this package.

Example
-------
>>> from keras_ser.experiments.reports import write_reports
>>> results = write_reports("runs/zhao2019_attention_blstm_fcn")  # doctest: +SKIP

One module on purpose: every report of a run directory is built from the same per-fold
files, classification and regression alike.
"""

import numpy as np

from keras_ser.experiments.resume import effective_overrides
from keras_ser.experiments.run_dir import (RunDir, atomic_path, corpus_display_name, fold_status, read_json,
                                           read_predictions, read_regression_predictions, write_json, write_text)
from keras_ser.metrics import classification_scores, regression_scores
from keras_ser.recipe import reported_rows, weights_statement

#: The files ``train --skip-bad`` left out, in the run directory: ``[{"path", "reason"}, ...]``
#: (written by :func:`keras_ser.experiments.runner.screen_corpus`'s caller).
SKIPPED_FILES = "skipped.json"

#: A cross-corpus run's corpora, label map, dropped labels and validation speakers
#: (written by the runner, :mod:`keras_ser.data.cross_corpus`).
CROSS_CORPUS_FILE = "cross_corpus.json"


#: Corpora whose regression targets are derived, not annotated: what results.md says of them.
DERIVED_TARGETS = {
    "emodb_dimensional": (
        "arousal / valence derived from categorical labels (each EMO-DB emotion's coordinates in "
        "keras_ser.data.emodb.DERIVED_DIMENSIONAL: Russell & Mehrabian 1977; neutral at the origin), "
        "not annotated; every utterance of a class has the same target. EMO-DB-2s audio"),
}


def _load_folds(run_dir, fold_names, label_names, finished=None):
    if finished is None:
        def finished(name):
            return fold_status(run_dir.root, name, label_names)[0]
    return [read_json(run_dir.metrics(name)) for name in fold_names if finished(name)]


def validation_ua(fold):
    """The UA a fold's decisions were taken on, on its validation speaker(s); None without any.

    A network fold records its scores on the validation speakers at the kept epoch
    (``validation_scores``); an SVM fold, the validation UA of each regularisation value it
    tried (``params.validation_ua``), of which the chosen one is the best. Settings are compared
    by this figure, never by the test speakers' scores.
    """
    recorded = (fold.get("validation_scores") or {}).get("ua")
    if recorded is not None:
        return float(recorded)
    tried = (fold.get("params") or {}).get("validation_ua")
    return float(max(tried.values())) if tried else None


def aggregate(run_dir, label_names, fold_names, finished=None):
    """Pooled and fold-mean scores over the finished folds among ``fold_names``.

    ``finished(name) -> bool`` decides which folds count (default
    :func:`~keras_ser.experiments.run_dir.fold_status`); folds restored from
    ``results/`` have scores but no saved model (:mod:`keras_ser.experiments.results`).
    """
    run_dir = RunDir(run_dir)
    folds = _load_folds(run_dir, fold_names, label_names, finished)
    if any("ccc" in f["scores"] for f in folds):
        return aggregate_regression(run_dir, label_names, fold_names, folds)
    index = {name: k for k, name in enumerate(label_names)}
    y_true, y_pred = [], []
    for fold in folds:
        _, labels, predicted, _ = read_predictions(run_dir.predictions(fold["fold"]))
        y_true += [index[v] for v in labels]
        y_pred += [index[v] for v in predicted]
    result = {"folds_done": [f["fold"] for f in folds], "folds_total": len(fold_names), "per_fold": folds}
    if not folds:
        return result
    result["pooled"] = classification_scores(y_true, y_pred, label_names)
    fold_ua = np.array([f["scores"]["ua"] for f in folds])
    fold_wa = np.array([f["scores"]["wa"] for f in folds])
    result["fold_mean"] = {
        "ua": float(fold_ua.mean()), "ua_std": float(fold_ua.std()),
        "wa": float(fold_wa.mean()), "wa_std": float(fold_wa.std()),
    }
    validation = [v for v in map(validation_ua, folds) if v is not None]
    if validation:
        result["validation"] = {"ua": float(np.mean(validation)), "ua_std": float(np.std(validation)),
                                "folds": len(validation)}
    epochs = [f["epochs_run"] for f in folds if f.get("epochs_run") is not None]
    if epochs:
        result["epochs_run"] = {"min": min(epochs), "max": max(epochs), "mean": float(np.mean(epochs))}
    result["wall_s"] = float(sum(f.get("wall_s", 0.0) for f in folds))
    if any("per_repeat" in f for f in folds):
        result["repeats"] = repeat_summary(folds, label_names)
    return result


def aggregate_regression(run_dir, dimensions, fold_names, folds):
    """:func:`aggregate` of a regression run, from its finished folds' ``metrics.json`` (``folds``).

    ``pooled``: :func:`keras_ser.metrics.regression_scores` of every fold's test
    utterances together (each fold's ``predictions.csv``); ``fold_mean``: the mean and
    standard deviation over folds of each dimension's CCC and of ``ccc_mean``;
    ``validation``: the mean of the folds' validation ``ccc_mean``.
    """
    result = {"task": "regression", "folds_done": [f["fold"] for f in folds], "folds_total": len(fold_names),
              "per_fold": folds}
    if not folds:
        return result
    targets, values = [], []
    for fold in folds:
        _, _, fold_targets, fold_values = read_regression_predictions(run_dir.predictions(fold["fold"]))
        targets.append(fold_targets)
        values.append(fold_values)
    result["pooled"] = regression_scores(np.concatenate(targets), np.concatenate(values), dimensions)
    per_dim = {dim: np.array([f["scores"]["ccc"][dim] for f in folds]) for dim in dimensions}
    means = np.array([f["scores"]["ccc_mean"] for f in folds])
    result["fold_mean"] = {"ccc": {dim: float(v.mean()) for dim, v in per_dim.items()},
                           "ccc_std": {dim: float(v.std()) for dim, v in per_dim.items()},
                           "ccc_mean": float(means.mean()), "ccc_mean_std": float(means.std())}
    validation = [f["validation_scores"]["ccc_mean"] for f in folds if "ccc_mean" in (f.get("validation_scores") or {})]
    if validation:
        result["validation"] = {"ccc_mean": float(np.mean(validation)), "ccc_mean_std": float(np.std(validation)),
                                "folds": len(validation)}
    epochs = [f["epochs_run"] for f in folds if f.get("epochs_run") is not None]
    if epochs:
        result["epochs_run"] = {"min": min(epochs), "max": max(epochs), "mean": float(np.mean(epochs))}
    result["wall_s"] = float(sum(f.get("wall_s", 0.0) for f in folds))
    return result


def _ccc(value):
    return "-" if value is None else f"{value:.3f}"


def _regression_lines(results, dimensions):
    """The "Ours" section of a regression run's ``results.md``: CCC per dimension."""
    pooled, mean = results["pooled"], results["fold_mean"]
    head = " | ".join(f"CCC {dim}" for dim in dimensions)
    rule = " --- |" * (len(dimensions) + 1)
    lines = ["", "## Ours", "", f"| summary | {head} | mean CCC |", "| --- |" + rule,
             "| pooled over folds (all test utterances) | " + " | ".join(_ccc(pooled["ccc"][d]) for d in dimensions)
             + f" | {_ccc(pooled['ccc_mean'])} |",
             "| mean +- std over folds | " + " | ".join(f"{_ccc(mean['ccc'][d])} +- {_ccc(mean['ccc_std'][d])}"
                                                       for d in dimensions)
             + f" | {_ccc(mean['ccc_mean'])} +- {_ccc(mean['ccc_mean_std'])} |"]
    if results.get("validation"):
        v = results["validation"]
        lines.append(f"| validation speaker(s), mean +- std over {v['folds']} folds |" + " |" * len(dimensions)
                     + f" {_ccc(v['ccc_mean'])} +- {_ccc(v['ccc_mean_std'])} |")
    lines += ["", "CCC (tzirakis2021 eq. 8) of one value per utterance: the mean of the model's per-frame "
              "outputs over the utterance's frames that hold audio, against the mean of its per-frame targets.",
              "", f"| fold | test speaker(s) | n | {head} | mean CCC | val mean CCC | epochs (best) | wall s |",
              "| --- | --- | --- |" + " --- |" * (len(dimensions) + 4)]
    for f in results["per_fold"]:
        epochs = "-" if f.get("epochs_run") is None else f"{f['epochs_run']} ({f['best_epoch']})"
        lines.append(f"| {f['fold']} | {', '.join(f.get('test_speakers', []))} | {f['scores']['n']} | "
                     + " | ".join(_ccc(f["scores"]["ccc"][d]) for d in dimensions)
                     + f" | {_ccc(f['scores']['ccc_mean'])} | "
                     f"{_ccc((f.get('validation_scores') or {}).get('ccc_mean'))} | {epochs} | {f.get('wall_s', '')} |")
    return lines


def repeat_summary(folds, label_names):
    """Each run's scores over the folds, and their mean, under ``experiment.repeats``.

    Run ``k`` is repeat ``k`` of every fold: its **pooled** scores come from the sum of
    those runs' confusion matrices (every test utterance once), its **fold mean** is the
    mean of their UA and WA. ``mean`` holds the mean and standard deviation of each over
    the runs; the mean of the runs' fold means equals the fold mean of the folds' scores
    (each the mean of its runs').

    Parameters
    ----------
    folds : list of dict
        ``metrics.json`` of the finished folds, each with ``per_repeat``.
    label_names : list of str

    Returns
    -------
    dict
        ``count``, ``per_run`` (``repeat``, ``seeds`` by fold, ``pooled``, ``fold_mean``) and ``mean``.
    """
    count = min(len(f.get("per_repeat", [])) for f in folds)
    per_run = []
    for k in range(count):
        runs = [f["per_repeat"][k] for f in folds]
        confusion = np.sum([np.asarray(r["scores"]["confusion"], np.int64) for r in runs], axis=0)
        y_true = np.repeat(np.repeat(np.arange(len(label_names)), len(label_names)), confusion.ravel())
        y_pred = np.repeat(np.tile(np.arange(len(label_names)), len(label_names)), confusion.ravel())
        pooled = classification_scores(y_true, y_pred, label_names)
        per_run.append({
            "repeat": k + 1,
            "seeds": {f["fold"]: f["per_repeat"][k].get("seed") for f in folds},
            "pooled": {key: pooled[key] for key in ("ua", "wa", "macro_f1", "n")},
            "fold_mean": {key: float(np.mean([r["scores"][key] for r in runs])) for key in ("ua", "wa")},
        })

    def spread(part, keys):
        values = {key: [run[part][key] for run in per_run] for key in keys}
        out = {key: float(np.mean(v)) for key, v in values.items()}
        out.update({f"{key}_std": float(np.std(v)) for key, v in values.items()})
        return out

    return {"count": count, "per_run": per_run,
            "mean": {"pooled": spread("pooled", ("ua", "wa", "macro_f1")),
                     "fold_mean": spread("fold_mean", ("ua", "wa"))}}


def _pct(value):
    return "-" if value is None else f"{100 * value:.1f}"


def _paper_rows(rows):
    lines = []
    for row in rows:
        numbers = ", ".join(
            f"{k} {v}" for k, v in row.items() if k not in ("table", "corpus", "protocol")
        )
        lines.append(f"| {row.get('table', '')} | {row.get('corpus', '')} | {row.get('protocol', '')} | {numbers} |")
    return lines


def results_markdown(results, recipe, label_names):
    """The text of ``results.md``."""
    experiment = recipe["experiment"]
    repeats = results.get("repeats")
    corpus = corpus_display_name(results["corpus"])
    lines = [
        f"# {recipe['recipe']['name']}",
        "",
        f"{recipe['recipe'].get('description', '')}",
        "",
        f"- Paper: {recipe['recipe'].get('paper', '')}",
        f"- Corpus: **{results.get('corpus_display', corpus)}**; "
        f"protocol: **{results.get('protocol', experiment['protocol'])}** "
        f"({len(results['folds_done'])} of {results['folds_total']} folds done)",
        f"- Seed: {experiment['seed']}" + (
            f"; {repeats['count']} runs per fold (experiment.repeats, seeds derived from it): a fold's WA / UA "
            "are the mean of its runs', its predictions.csv holds their mean probabilities, which the pooled "
            "row scores" if repeats else ""),
        f"- {weights_statement(recipe)}",
    ]
    if results.get("overrides"):
        lines.append("- Recipe settings overridden for this run: "
                     + ", ".join(f"`{override}`" for override in results["overrides"]))
    cross = results.get("cross_corpus")
    if cross:
        lines.append(
            f"- Cross-corpus: trained on all of {cross['train_corpus']} (validation speakers "
            f"{', '.join(cross['validation_speakers']) or 'none'}), tested on all of {cross['test_corpus']}; "
            f"label map {cross['label_map'] or 'none (shared class names)'}"
            + (f"; dropped test utterances per label {cross['dropped']}" if cross["dropped"] else ""))

    if experiment["kind"] in ("neural", "two_stage"):
        for label, table in _training_tables(recipe):
            lines.append(
                f"- {label}: {table['optimizer']}, lr {table['learning_rate']:g}"
                + (f", decay {table['decay']:g}" if table.get("decay") else "")
                + f", batch {table['batch_size']}, at most {table['epochs']} epochs"
                + (f", gradient-norm clipping {table['clipnorm']:g}" if table.get("clipnorm") else "")
                + (", loss mean of 1 - CCC over the dimensions (tzirakis2021 eq. 8)" if table.get("loss") == "ccc"
                   else f", class weights {table['class_weight']}")
                + f", early stopping on the validation speaker(s): {table['early_stopping']}"
                + (f" (monitor {table['monitor']})" if table["early_stopping"] else "")
            )
        if "epochs_run" in results:
            e = results["epochs_run"]
            lines.append(f"- Epochs actually run per fold: min {e['min']}, mean {e['mean']:.1f}, max {e['max']}")
    if experiment["kind"] == "features_svm" and results.get("per_fold"):
        params = [f.get("params", {}) for f in results["per_fold"]]
        features = sorted({p.get("features", "") for p in params} - {""})
        if features:
            # The weights statement ("random-init, NOT pretrained") lives in this description.
            lines.append(f"- Features: {'; '.join(features)}")
        chosen = [f"{p['parameter']}={p['value']:g}" for p in params if "value" in p]
        if chosen:
            lines.append(f"- Classifier: {params[0].get('classifier')}, "
                         f"regularisation chosen on the validation speaker(s) per fold: {', '.join(chosen)}")
    if results.get("fusion"):
        lines.append(f"- Fusion lambdas tuned on: **{results['fusion']['tune_on']}**")
    if results.get("derived_targets"):
        lines.append(f"- Targets: **{results['derived_targets']}**")
    if corpus == "EMO-DB-2s":
        lines.append("- EMO-DB-2s is the 2.000 s cut/padded copy of EMO-DB: not directly comparable with "
                     "published full-length EMO-DB numbers.")
    if results["folds_done"] and "pooled" in results and results.get("task") == "regression":
        lines += _regression_lines(results, label_names)
    elif results["folds_done"] and "pooled" in results:
        pooled, mean = results["pooled"], results["fold_mean"]
        lines += [
            "",
            "## Ours",
            "",
            "| summary | WA % | UA % | macro-F1 % |",
            "| --- | --- | --- | --- |",
            f"| pooled over folds | {_pct(pooled['wa'])} | {_pct(pooled['ua'])} | {_pct(pooled['macro_f1'])} |",
            f"| mean +- std over folds | {_pct(mean['wa'])} +- {_pct(mean['wa_std'])} | "
            f"{_pct(mean['ua'])} +- {_pct(mean['ua_std'])} | |",
        ]
        if repeats:
            lines += _repeat_rows(repeats)
        if results.get("validation"):
            v = results["validation"]
            lines.append(f"| validation speaker(s), mean +- std over {v['folds']} folds "
                         f"(what settings are chosen on) | | {_pct(v['ua'])} +- {_pct(v['ua_std'])} | |")
        per_run = " | UA % per run" if repeats else ""
        lines += [
            "",
            f"| fold | test speaker(s) | n | WA % | UA %{per_run} | val UA % | epochs (best) | wall s |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |" + (" --- |" if repeats else ""),
        ]
        for f in results["per_fold"]:
            epochs = "-" if f.get("epochs_run") is None else f"{f['epochs_run']} ({f['best_epoch']})"
            runs = (" | " + " / ".join(_pct(r["scores"]["ua"]) for r in f.get("per_repeat", []))) if repeats else ""
            lines.append(
                f"| {f['fold']} | {', '.join(f.get('test_speakers', []))} | {f['scores']['n']} | "
                f"{_pct(f['scores']['wa'])} | {_pct(f['scores']['ua'])}{runs} | {_pct(validation_ua(f))} | "
                f"{epochs} | {f.get('wall_s', '')} |"
            )
        lines += ["", "| class | recall % | F1 % | support |", "| --- | --- | --- | --- |"]
        for name in label_names:
            c = pooled["per_class"][name]
            lines.append(f"| {name} | {_pct(c['recall'])} | {_pct(c['f1'])} | {c['support']} |")
    paper = recipe.get("paper", {})
    lines += ["", "## The paper's own numbers for this row", ""]
    if paper.get("note"):
        lines += [paper["note"], ""]
    # A random-init run is set beside the paper's figure without pre-training where it has one.
    lines += ["| table | corpus | protocol | reported |", "| --- | --- | --- | --- |"]
    lines += _paper_rows(reported_rows(recipe))
    if "skipped_files" in results:
        lines += _skipped_section(results["skipped_files"])
    return "\n".join(lines) + "\n"


def _training_tables(recipe):
    """(label, table) of each optimiser setting a network run used, in training order."""
    if recipe["experiment"]["kind"] != "two_stage":
        return [("Training", recipe["train"])]
    tables = [("Stage 1 (segment network)", recipe["stage1"])]
    encoder = recipe.get("encoder")
    if encoder is not None and encoder["schedule"] == "separate":
        tables += [(f"Stage 2 encoder (up to layer {encoder['layer']!r}, own softmax)", encoder),
                   ("Stage 2 classifier (layers after it, encoder frozen)", recipe["train"])]
    else:
        tables.append(("Stage 2 (whole network)", recipe["train"]))
    return tables


def _repeat_rows(repeats):
    """Rows of the "Ours" table for each run and their mean (``experiment.repeats``)."""
    lines = []
    for run in repeats["per_run"]:
        pooled, mean = run["pooled"], run["fold_mean"]
        lines.append(f"| run {run['repeat']}: pooled / mean over folds | {_pct(pooled['wa'])} / {_pct(mean['wa'])} | "
                     f"{_pct(pooled['ua'])} / {_pct(mean['ua'])} | {_pct(pooled['macro_f1'])} |")
    pooled, mean = repeats["mean"]["pooled"], repeats["mean"]["fold_mean"]
    lines.append(f"| mean +- std over the {repeats['count']} runs: pooled | {_pct(pooled['wa'])} +- "
                 f"{_pct(pooled['wa_std'])} | {_pct(pooled['ua'])} +- {_pct(pooled['ua_std'])} | "
                 f"{_pct(pooled['macro_f1'])} +- {_pct(pooled['macro_f1_std'])} |")
    lines.append(f"| mean +- std over the {repeats['count']} runs: mean over folds | {_pct(mean['wa'])} +- "
                 f"{_pct(mean['wa_std'])} | {_pct(mean['ua'])} +- {_pct(mean['ua_std'])} | |")
    return lines


def _skipped_section(skipped):
    """The "Skipped files" section of a ``--skip-bad`` run: each file left out and why."""
    lines = ["", "## Skipped files", "",
             f"`--skip-bad` left out {len(skipped)} file(s) that keras_ser.audio.load refused; "
             "they are in no fold.", ""]
    if skipped:
        lines += ["| file | reason |", "| --- | --- |"]
        lines += [f"| {s['path']} | {s['reason'].replace('|', '/')} |" for s in skipped]
    return lines


def plot_confusion(path, confusion, label_names, title):
    """Row-normalised confusion matrix (recall per true class) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(confusion, np.float64)
    rows = matrix.sum(axis=1, keepdims=True)
    normalised = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * len(label_names), 0.8 + 0.8 * len(label_names)))
    ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(label_names)):
        for j in range(len(label_names)):
            ax.text(j, i, f"{normalised[i, j]:.2f}\n({int(matrix[i, j])})", ha="center", va="center",
                    fontsize=7, color="white" if normalised[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(label_names)), label_names, rotation=45, ha="right")
    ax.set_yticks(range(len(label_names)), label_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def plot_curves(path, histories, title):
    """Training curves of every fold: loss (train, validation) and validation UA."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("loss", "val_loss"), ("val_ccc",) if any("val_ccc" in h for h in histories.values()) else ("val_ua",)]
    fig, axes = plt.subplots(1, len(panels), figsize=(11, 4))
    for ax, keys in zip(axes, panels):
        for fold, history in histories.items():
            for key in keys:
                if key in history:
                    style = "--" if key.startswith("val_") and len(keys) > 1 else "-"
                    ax.plot(range(1, len(history[key]) + 1), history[key], style, linewidth=1,
                            label=f"{fold} {key}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(" / ".join(keys))
        if histories:
            ax.legend(fontsize=6, ncol=2)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def write_reports(run_dir, recipe=None, label_names=None, fold_names=None, extra=None, finished=None):
    """(Re)write ``results.json``, ``results.md``, ``confusion.png`` and ``curves.png``.

    Parameters
    ----------
    run_dir : path
    recipe, label_names, fold_names : optional
        Default to what ``config.json`` / ``labels.json`` / ``folds/`` hold.
    extra : dict, optional
        Merged into ``results.json`` (e.g. the fusion settings).
    finished : callable, optional
        ``finished(fold_name) -> bool``, see :func:`aggregate`.

    Returns
    -------
    dict
        The content of ``results.json``.
    """
    layout = RunDir(run_dir)
    run_dir = layout.root
    config = read_json(layout.config)
    recipe = recipe or config["recipe"]
    label_names = label_names or read_json(layout.labels)
    if fold_names is None:
        fold_names = layout.fold_names()
    results = {
        "recipe": recipe["recipe"]["name"],
        "corpus": config["corpus"],
        "corpus_display": corpus_display_name(config["corpus"]),
        "protocol": recipe["experiment"]["protocol"],
        "seed": recipe["experiment"]["seed"],
        "labels": list(label_names),
        **aggregate(run_dir, label_names, fold_names, finished),
        **(extra or {}),
        "paper": recipe.get("paper", {}),
    }
    overrides = effective_overrides(config.get("overrides") or [])
    if overrides:
        results["overrides"] = overrides
    if config["corpus"] in DERIVED_TARGETS:
        results["derived_targets"] = DERIVED_TARGETS[config["corpus"]]
    if (run_dir / SKIPPED_FILES).is_file():  # train --skip-bad
        results["skipped_files"] = read_json(run_dir / SKIPPED_FILES)
    if (run_dir / CROSS_CORPUS_FILE).is_file():  # experiment.test_corpus
        cross = read_json(run_dir / CROSS_CORPUS_FILE)
        results.update(protocol="cross-corpus", cross_corpus=cross, corpus_display=(
            f"{corpus_display_name(cross['train_corpus'])} -> {corpus_display_name(cross['test_corpus'])}"))
    write_json(run_dir / "results.json", results)
    write_text(run_dir / "results.md", results_markdown(results, recipe, label_names))
    title = f"{results['recipe']} on {results['corpus_display']} ({results['protocol']})"
    if "pooled" in results and results.get("task") != "regression":
        plot_confusion(run_dir / "confusion.png", results["pooled"]["confusion"], label_names, title)
    histories = {}
    for name in results["folds_done"]:
        path = layout.history(name)
        if path.is_file():
            histories[name] = read_json(path)
    if histories:
        plot_curves(run_dir / "curves.png", histories, title)
    return results
