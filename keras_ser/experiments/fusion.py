"""Score- and feature-level fusion of member runs (zhang2021_multicnn Sec. 2.5, eq. 1; Sec. 3.4.4, Table 7).

* Score level: ``score = sum_i lambda_i score_i`` over the members' utterance-level
  scores, the lambdas searched exhaustively on a grid of step 0.1 in [0, 1] with
  ``sum_i lambda_i = 1`` (eq. 1). zhang2021_multicnn keeps the lambdas with "the best emotion
  classification performance", i.e. it tunes them on the test data. Here they are
  tuned on each fold's validation speaker(s) by default (``tune_on="validation"``);
  ``tune_on="test"`` reproduces the paper. The report states which was used.
* Feature level: each member's final-FC activations are average-pooled over an
  utterance's segments, concatenated across members and classified by a linear SVM.
  The SVM's ``C`` is not given in zhang2021_multicnn; ``svm_c`` (default 1.0, scikit-learn's) is a
  parameter and features are z-scored with training statistics first.

The tuning criterion is accuracy (WA), the measure zhang2021_multicnn reports; ties go to the first
grid point in lexicographic order.

The members themselves are run by :mod:`keras_ser.experiments.runner` (into
``RUN_DIR/members/<name>``, see :func:`member_runs`); :func:`fuse_members` then
fuses their finished folds. Imports :mod:`~keras_ser.experiments.run_dir` and
:mod:`~keras_ser.experiments.reports` only, of this package.

Example
-------
>>> import numpy as np
>>> from keras_ser.experiments.fusion import lambda_grid, fuse_scores
>>> len(lambda_grid(3))        # 0.1 steps, three members, summing to 1
66
>>> fuse_scores([np.eye(2), np.ones((2, 2)) / 2], (0.6, 0.4)).tolist()
[[0.8, 0.2], [0.2, 0.8]]
"""

import itertools
import pathlib

import numpy as np
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from keras_ser.data import load_corpus
from keras_ser.errors import DataError, ParameterError
from keras_ser.experiments import reports
from keras_ser.experiments.run_dir import RunDir, read_predictions, write_json, write_predictions, write_text
from keras_ser.metrics import classification_scores
from keras_ser.recipe import load_recipe, member_overrides


def lambda_grid(members, step=0.1):
    """Every weight tuple on a ``step`` grid in [0, 1] summing to 1 (eq. 1).

    Returns
    -------
    list of tuple of float
        In lexicographic order of the integer grid.
    """
    if members < 1:
        raise ParameterError(f"fusion needs at least one member, got {members}")
    n = round(1.0 / step)
    if not 0 < step <= 1 or abs(n * step - 1.0) > 1e-9:
        raise ParameterError(f"step must divide 1, got {step!r}")
    return [
        tuple(k / n for k in combo)
        for combo in itertools.product(range(n + 1), repeat=members)
        if sum(combo) == n
    ]


def fuse_scores(scores, lambdas):
    """Weighted sum ``sum_i lambda_i scores_i`` of equally shaped score arrays."""
    if len(scores) != len(lambdas):
        raise ParameterError(f"{len(scores)} score arrays but {len(lambdas)} weights")
    shapes = {np.shape(s) for s in scores}
    if len(shapes) != 1:
        raise ParameterError(f"member scores differ in shape: {sorted(shapes)}")
    return sum(w * np.asarray(s, np.float64) for w, s in zip(lambdas, scores))


def tune_lambdas(scores, y_true, step=0.1):
    """The grid point with the highest accuracy of the fused scores on ``y_true``.

    Returns
    -------
    (tuple of float, float)
        Best weights and their accuracy.
    """
    y_true = np.asarray(y_true)
    best, best_accuracy = None, -1.0
    for lambdas in lambda_grid(len(scores), step):
        accuracy = float(np.mean(fuse_scores(scores, lambdas).argmax(-1) == y_true))
        if accuracy > best_accuracy:
            best, best_accuracy = lambdas, accuracy
    return best, best_accuracy


def score_level_fusion(val_scores, y_val, test_scores, y_test, *, tune_on="validation", step=0.1):
    """Tune eq. 1's weights on validation (or, as zhang2021_multicnn did, test) and fuse the test scores.

    Returns
    -------
    dict
        ``lambdas``, ``tuned_accuracy`` (on the tuning set), ``tune_on``,
        ``probabilities`` (fused test scores) and ``y_pred``.
    """
    if tune_on not in ("validation", "test"):
        raise ParameterError(f"tune_on must be 'validation' or 'test', got {tune_on!r}")
    if tune_on == "validation":
        if val_scores is None or len(y_val) == 0:
            raise DataError("score-level fusion tuned on validation needs validation speakers in every fold")
        lambdas, accuracy = tune_lambdas(val_scores, y_val, step)
    else:
        lambdas, accuracy = tune_lambdas(test_scores, y_test, step)
    fused = fuse_scores(test_scores, lambdas)
    return {"lambdas": list(lambdas), "tuned_accuracy": accuracy, "tune_on": tune_on,
            "probabilities": fused, "y_pred": fused.argmax(-1)}


def feature_level_fusion(train_features, y_train, test_features, *, c=1.0, seed=0, num_classes=None):
    """Concatenate the members' pooled features and classify with a linear SVM (zhang2021_multicnn Table 7).

    Parameters
    ----------
    train_features, test_features : list of arrays ``[n, d_i]``
        One array per member, rows aligned across members.
    y_train : array of int
    c : float
        The SVM's ``C``.
    num_classes : int or None
        Number of classes; by default one more than the largest label in ``y_train``.

    Returns
    -------
    (np.ndarray, np.ndarray)
        Predicted class indices and decision values ``[n_test, num_classes]`` of the test
        rows: with two classes, scikit-learn's single margin ``d`` becomes ``(-d, d)``; a
        class absent from ``y_train`` scores ``-inf``.
    """
    x_train = np.concatenate([np.asarray(f, np.float64) for f in train_features], axis=1)
    x_test = np.concatenate([np.asarray(f, np.float64) for f in test_features], axis=1)
    classifier = make_pipeline(StandardScaler(), LinearSVC(C=c, random_state=seed, max_iter=5000))
    classifier.fit(x_train, y_train)
    margins = np.asarray(classifier.decision_function(x_test), np.float64)
    if margins.ndim == 1:
        margins = np.stack([-margins, margins], axis=1)
    classes = classifier.classes_
    scores = np.full((len(x_test), num_classes or int(classes.max()) + 1), -np.inf)
    scores[:, classes] = margins
    return classifier.predict(x_test), scores


def _member_fold(run_dir, fold_name, label_names):
    fold_dir = RunDir(run_dir).fold(fold_name)
    index = {name: k for k, name in enumerate(label_names)}
    out = {}
    for part, filename in (("test", "predictions.csv"), ("validation", "val_predictions.csv")):
        path = fold_dir / filename
        if path.is_file():
            ids, labels, _, probabilities = read_predictions(path)
            out[part] = (ids, np.array([index[v] for v in labels]), probabilities)
    embeddings = fold_dir / "embeddings.npz"
    if embeddings.is_file():
        out["embeddings"] = dict(np.load(embeddings))
    return out


def member_runs(recipe, overrides=()):
    """The member recipes of a fusion recipe and the overrides each runs with.

    Members run with the fusion run's seed and the ``key=value`` overrides that
    apply to them (``[train]``, ``[model]`` ... keys, and ``<name>:key=value`` for
    that member only, see :func:`keras_ser.recipe.member_overrides`), plus
    ``experiment.save_features=true`` for feature-level fusion.

    Returns
    -------
    list of (str, dict, list of str)
        Member name, its resolved recipe and its overrides.
    """
    shared = [o for o in overrides if not str(o).split("=")[0].startswith(("fusion.", "recipe.", "paper."))]
    shared += [f"experiment.seed={recipe['experiment']['seed']}", "experiment.save_features=true"]
    runs = []
    for name in recipe["fusion"]["members"]:
        own = member_overrides(shared, name)
        runs.append((name, load_recipe(name, own), own))
    return runs


def fusion_levels(recipe):
    """The fusion levels ``recipe`` reports: ``("score",)``, ``("feature",)`` or both."""
    level = recipe["fusion"]["level"]
    return ("score", "feature") if level == "both" else (level,)


def fusable_folds(recipe, members):
    """The folds every member of ``recipe`` has finished (member name -> its ``results.json``)."""
    first = members[recipe["fusion"]["members"][0]]
    return [f for f in first["folds_done"] if all(f in r["folds_done"] for r in members.values())]


def fuse_members(recipe, run_dir, members, *, corpus, data_dir=None, restored=None):
    """Fuse the folds every member has finished; write the levels' reports and the combined results.

    Parameters
    ----------
    recipe : dict
        The fusion recipe.
    run_dir : path
        The fusion run; members live in ``run_dir/members/<name>``.
    members : dict
        Member name -> its ``results.json`` content.
    corpus, data_dir : str
        The members' corpus (feature-level fusion reads the training labels).
    restored : dict, optional
        Level -> folds already fused in ``run_dir/<level>/folds`` whose members this run
        does not have (copied from ``results/``): reported with the folds fused here.

    Returns
    -------
    dict
        The content of ``results.json``, with the first level's summary on top.
    """
    fusion = recipe["fusion"]
    run_dir = pathlib.Path(run_dir)
    first = members[fusion["members"][0]]
    label_names = first["labels"]
    # Only folds every member has finished can be fused (an interrupted member resumes later).
    fold_names = fusable_folds(recipe, members)
    levels = fusion_levels(recipe)
    summary = {}
    for fold_name in fold_names:
        parts = [_member_fold(run_dir / "members" / name, fold_name, label_names) for name in fusion["members"]]
        ids, y_test, _ = parts[0]["test"]
        for part in parts[1:]:
            if part["test"][0] != ids:
                raise DataError(f"fold {fold_name}: fusion members predicted different test utterances")
        val = [p.get("validation") for p in parts]
        y_val = val[0][1] if val[0] is not None else np.array([], np.int64)
        fold_info = {}
        for level in levels:
            fold_dir = run_dir / level / "folds" / fold_name
            fold_dir.mkdir(parents=True, exist_ok=True)
            if level == "score":
                result = score_level_fusion(
                    [v[2] for v in val] if all(v is not None for v in val) else None, y_val,
                    [p["test"][2] for p in parts], y_test, tune_on=fusion["tune_on"], step=fusion["step"],
                )
                probabilities, y_pred = result["probabilities"], result["y_pred"]
                fold_info = {"lambdas": result["lambdas"], "tuned_accuracy": result["tuned_accuracy"]}
            else:
                if any("embeddings" not in p for p in parts):
                    raise DataError(f"fold {fold_name}: a member saved no embeddings.npz for feature-level fusion")
                y_train = None
                train_x, test_x = [], []
                for part, name in zip(parts, fusion["members"]):
                    emb = part["embeddings"]
                    train_x.append(emb["train_x"])
                    test_x.append(emb["test_x"])
                    if list(emb["test_ids"]) != ids:
                        raise DataError(f"fold {fold_name}: member {name} embeddings are not aligned")
                    y_train = _train_labels(emb["train_ids"], corpus, data_dir, label_names)
                y_pred, probabilities = feature_level_fusion(train_x, y_train, test_x, c=fusion["svm_c"],
                                                             seed=recipe["experiment"]["seed"],
                                                             num_classes=len(label_names))
                fold_info = {"svm_c": fusion["svm_c"]}
            write_predictions(fold_dir / "predictions.csv", ids, [label_names[k] for k in y_test],
                              [label_names[k] for k in y_pred], np.asarray(probabilities), label_names)
            metrics = {"fold": fold_name, "scores": classification_scores(y_test, y_pred, label_names),
                       "epochs_run": None, "best_epoch": None, **fold_info}
            write_json(fold_dir / "metrics.json", metrics)
            summary.setdefault(level, {})[fold_name] = fold_info
    results = {}
    for level in levels:
        level_dir = run_dir / level
        write_json(level_dir / "config.json", {"recipe": recipe, "corpus": corpus})
        write_json(level_dir / "labels.json", label_names)
        extra = {"fusion": {"level": level, "tune_on": fusion["tune_on"] if level == "score" else None,
                            "members": fusion["members"], "per_fold": summary.get(level, {})},
                 "folds_total": first["folds_total"]}
        reported = sorted(set(fold_names) | set((restored or {}).get(level, ())))
        results[level] = reports.write_reports(level_dir, recipe, label_names, reported, extra=extra)
    combined = {"recipe": recipe["recipe"]["name"], "corpus": corpus, "levels": results,
                "members": {name: {k: r.get(k) for k in ("pooled", "fold_mean")} for name, r in members.items()}}
    write_json(run_dir / "results.json", combined)
    lines = [f"# {recipe['recipe']['name']}", "", f"Fusion lambdas tuned on: **{fusion['tune_on']}** "
             "(zhang2021_multicnn tuned them on the test data).", "",
             "| system | WA % | UA % |", "| --- | --- | --- |"]
    for name, r in members.items():
        if "pooled" in r:
            lines.append(f"| {name} | {100 * r['pooled']['wa']:.1f} | {100 * r['pooled']['ua']:.1f} |")
    for level, r in results.items():
        if "pooled" in r:
            lines.append(f"| {level}-level fusion | {100 * r['pooled']['wa']:.1f} | {100 * r['pooled']['ua']:.1f} |")
    lines += ["", f"Details: {', '.join(f'{level}/results.md' for level in results)} and members/<name>/results.md."]
    write_text(run_dir / "results.md", "\n".join(lines) + "\n")
    first = next(iter(results.values()))
    return {**combined, "pooled": first.get("pooled"), "corpus_display": first["corpus_display"],
            "protocol": first["protocol"], "folds_done": first["folds_done"], "folds_total": first["folds_total"]}


def _train_labels(train_ids, corpus, data_dir, label_names):
    labels = {u.id: u.label for u in load_corpus(corpus, data_dir)}
    index = {name: k for k, name in enumerate(label_names)}
    return np.array([index[labels[str(i)]] for i in train_ids], np.int64)
