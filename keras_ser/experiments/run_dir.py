"""The run directory: its layout, atomic writers, fold status and model choice.

A run directory (``runs/<recipe>`` by default) holds::

    .lock                          held by the one process running on the directory
    config.json                    recipe, overrides, corpus, seed, corpus fingerprint, front-end revision
                                   (checked on resume)
    labels.json                    class names in output order
    results.json, results.md       reports (keras_ser.experiments.reports)
    confusion.png, curves.png
    folds/<fold>/metrics.json      written last; the fold is finished when it and the files
                                   below parse and agree with the run (:func:`fold_status`)
    folds/<fold>/predictions.csv   test predictions (val_predictions.csv: validation)
    folds/<fold>/history.json      Keras history of a network fold
    folds/<fold>/embeddings.npz    utterance embeddings (experiment.save_features)
    folds/<fold>/model/            MODEL DIR: model.keras, frontend.json, labels.json, meta.json
    folds/<fold>/repeat_<k>/       run k of the fold under experiment.repeats: the fold files above for
                                   one network (:func:`repeat_dir`, :func:`repeat_status`); the fold's
                                   own files then hold the runs' mean scores and mean probabilities and
                                   the best run's model (keras_ser.experiments.runner.run_repeats)
    folds/<fold>/repeat_<k>/.restored   the run's scores were copied from results/, it has no model
    final/model/, final/final.json the deployable model trained on every speaker (train --final,
                                   keras_ser.experiments.final); final.json is written last
    feature_cache/                 SVM feature cache (keras_ser.svm)

Everything that reads or writes these paths goes through this module, which imports
nothing else of :mod:`keras_ser.experiments` (nor Keras). Every file is written under
a unique temporary name in its own folder, flushed and fsynced, then renamed over
its target (:func:`atomic_path`), so a reader never sees half a file and two writers
never share a temporary file. Who may resume a run directory, and under which
configuration, is :mod:`keras_ser.experiments.resume` (the lock, config and corpus checks).

One module on purpose: every path of the layout above is named, written and checked here,
so the writers, the fold checks and the model choice cannot disagree about it.

Example
-------
>>> from keras_ser.experiments.run_dir import RunDir
>>> RunDir("runs/x").metrics("speaker_03").as_posix()
'runs/x/folds/speaker_03/metrics.json'
"""

import contextlib
import csv
import json
import os
import pathlib
import uuid

import numpy as np

from keras_ser.errors import DataError, ParameterError
from keras_ser.metrics import unweighted_accuracy

#: The files of a MODEL DIR.
MODEL_FILES = ("model.keras", "frontend.json", "labels.json", "meta.json")

#: How :func:`resolve_model_dir` chooses a fold model of a RUN_DIR when none is named.
POLICIES = ("deployable", "best_validation", "explicit")

#: The deployable model of ``train --final`` and its record, written last (keras_ser.experiments.final).
FINAL_MODEL = "final/model"
FINAL_INFO = "final/final.json"

#: Run kinds whose folds save a MODEL DIR (with ``experiment.save_models``).
MODEL_KINDS = ("neural", "two_stage")

#: Folder name prefix of a fold's runs under ``experiment.repeats``: ``repeat_1``, ``repeat_2``, ...
REPEAT_PREFIX = "repeat_"


class RunDir:
    """Paths of one run directory (see the module docstring).

    Parameters
    ----------
    root : path-like
    """

    def __init__(self, root):
        self.root = pathlib.Path(root)

    @property
    def lock(self):
        return self.root / ".lock"

    @property
    def config(self):
        return self.root / "config.json"

    @property
    def labels(self):
        return self.root / "labels.json"

    @property
    def folds_dir(self):
        return self.root / "folds"

    def fold(self, name):
        """The folder of fold ``name``."""
        return self.folds_dir / name

    def metrics(self, name):
        return self.fold(name) / "metrics.json"

    def predictions(self, name):
        return self.fold(name) / "predictions.csv"

    def val_predictions(self, name):
        return self.fold(name) / "val_predictions.csv"

    def history(self, name):
        return self.fold(name) / "history.json"

    def embeddings(self, name):
        return self.fold(name) / "embeddings.npz"

    def model_dir(self, name):
        return self.fold(name) / "model"

    def fold_names(self):
        """Names of the fold folders present, sorted."""
        if not self.folds_dir.is_dir():
            return []
        return sorted(p.name for p in self.folds_dir.iterdir() if p.is_dir())


def default_root(recipe_name):
    """The run directory of a recipe when ``--out`` is not given: ``runs/<recipe name>``."""
    return pathlib.Path("runs") / recipe_name


# ---------------------------------------------------------------------------- writers and readers


def _fsync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a unique temporary path beside ``path``; when the block succeeds, fsync it and rename it to ``path``.

    The temporary name (``.<name>.<pid>-<random>.tmp<suffix>``) keeps the target's
    suffix, so writers that choose the format by suffix (``model.save``,
    ``savefig``, ``np.savez``) write the right one. If the block fails or is
    interrupted, the temporary file is removed and ``path`` is left as it was.

    Examples
    --------
    >>> with atomic_path("runs/x/results.md") as tmp:     # doctest: +SKIP
    ...     tmp.write_text("# results")
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp{path.suffix}")
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    # The rename itself survives a power cut only once the folder is synced too.
    _fsync(path.parent)


def write_text(path, text):
    """Write a text file atomically (:func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        with open(tmp, "x") as handle:
            handle.write(text)


def write_json(path, data):
    """Write JSON atomically (:func:`atomic_path`), so a killed run or a reader never sees half a file."""
    write_text(path, json.dumps(data, indent=2, sort_keys=False, default=json_default))


def json_default(value):
    """``json.dumps`` fallback for NumPy scalars and arrays and paths."""
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, pathlib.Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def read_json(path):
    """Parse a JSON file of the run directory; errors name the file."""
    try:
        with open(path) as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise DataError(f"missing {path}") from None
    except json.JSONDecodeError as error:
        raise DataError(f"{path} is not valid JSON: {error}") from None


def write_predictions(path, ids, labels, predicted, probabilities, label_names, prefix="p_"):
    """``predictions.csv``: id, label, predicted, one score column per class.

    Columns are ``p_<class>`` for probabilities; SVM folds write their decision
    values as ``score_<class>`` (``prefix="score_"``), which are not probabilities.
    """
    with atomic_path(path) as tmp:
        with open(tmp, "x", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "label", "predicted"] + [f"{prefix}{name}" for name in label_names])
            for row in zip(ids, labels, predicted, probabilities):
                writer.writerow(list(row[:3]) + [f"{p:.6g}" for p in row[3]])


def read_predictions(path):
    """Inverse of :func:`write_predictions`: ``(ids, labels, predicted, probabilities)``."""
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    body = rows[1:]
    probabilities = np.array([[float(v) for v in row[3:]] for row in body], np.float64)
    return [r[0] for r in body], [r[1] for r in body], [r[2] for r in body], probabilities


def regression_columns(dimensions):
    """Columns of a regression fold's ``predictions.csv``: ``id``, then ``true_<dim>``, ``pred_<dim>`` per dimension."""
    return ["id"] + [f"{kind}_{dim}" for dim in dimensions for kind in ("true", "pred")]


def write_regression_predictions(path, ids, targets, values, dimensions):
    """``predictions.csv`` of a regression fold: per utterance, the true and predicted value of each dimension."""
    with atomic_path(path) as tmp:
        with open(tmp, "x", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(regression_columns(dimensions))
            for key, true, predicted in zip(ids, targets, values):
                writer.writerow([key] + [f"{v:.8g}" for pair in zip(true, predicted) for v in pair])


def read_regression_predictions(path):
    """Inverse of :func:`write_regression_predictions`: ``(ids, dimensions, targets, values)``."""
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    dimensions = [column[len("true_"):] for column in rows[0][1::2]]
    body = np.array([[float(v) for v in row[1:]] for row in rows[1:]], np.float64).reshape(-1, 2 * len(dimensions))
    return [row[0] for row in rows[1:]], dimensions, body[:, 0::2], body[:, 1::2]


def write_model_dir(model_dir, model, frontend, label_names, meta):
    """Save a fold's MODEL DIR: ``model.keras``, ``frontend.json``, ``labels.json``, ``meta.json``.

    ``meta.json`` also records the front end's numerics revision the network was trained on
    (``frontend_revision``; :func:`keras_ser.frontend.presets.revision_note`).
    """
    model_dir = pathlib.Path(model_dir)
    with atomic_path(model_dir / "model.keras") as tmp:
        model.save(tmp)
    write_json(model_dir / "frontend.json", frontend.get_config())
    write_json(model_dir / "labels.json", list(label_names))
    write_json(model_dir / "meta.json", dict(meta, frontend_revision=frontend.numerics_revision))


def corpus_display_name(corpus):
    """How results name a corpus: the shared 2-second EMO-DB copy is "EMO-DB-2s", its dimensions named as derived."""
    return {"emodb": "EMO-DB-2s",
            "emodb_dimensional": "EMO-DB-2s, arousal / valence derived from the categories"}.get(corpus, corpus)


# ---------------------------------------------------------------------------- fold status


def scores_problem(metrics_path, predictions, name, label_names=None):
    """Why a fold's ``metrics.json`` and ``predictions.csv`` do not hold complete scores, or None.

    ``metrics.json`` must parse, name fold ``name`` and hold ``ua``, ``wa`` and ``n``;
    ``predictions.csv`` must parse, have one score column per class of ``label_names``
    (when given) and one finite row per test utterance counted. A regression fold
    (``scores`` holding ``ccc``) is checked by :func:`_regression_problem` instead. Shared by
    :func:`fold_status` and the ``results/`` folder (:mod:`keras_ser.experiments.results`).
    """
    if not metrics_path.is_file():
        return f"{metrics_path} is missing"
    try:
        metrics = read_json(metrics_path)
    except DataError as error:
        return str(error)
    if not isinstance(metrics, dict) or metrics.get("fold") != name:
        named = metrics.get("fold") if isinstance(metrics, dict) else None
        return f"{metrics_path} names fold {named!r}, not {name!r}"
    scores = metrics.get("scores")
    if isinstance(scores, dict) and "ccc" in scores:
        return _regression_problem(metrics_path, scores, predictions, label_names)
    if not isinstance(scores, dict) or not all(isinstance(scores.get(k), (int, float)) for k in ("ua", "wa", "n")):
        return f"{metrics_path} lacks the scores ua, wa and n"
    rows = _read_rows(predictions)
    if isinstance(rows, str):
        return rows
    if not rows or rows[0][:3] != ["id", "label", "predicted"]:
        return f"{predictions} lacks its header (id, label, predicted, one column per class)"
    if label_names is not None and not (
            len(rows[0]) == 3 + len(label_names)
            and all(column in (f"p_{c}", f"score_{c}") for column, c in zip(rows[0][3:], label_names))):
        return f"{predictions} has the columns {rows[0][3:]}, not one per class of {label_names}"
    return _rows_problem(rows, predictions, metrics_path, scores["n"], first_value=3)


def _read_rows(predictions):
    """The rows of a ``predictions.csv``, or why they cannot be read."""
    try:
        with open(predictions, newline="") as handle:
            return list(csv.reader(handle))
    except FileNotFoundError:
        return f"{predictions} is missing"
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        return f"{predictions} cannot be read: {error}"


def _rows_problem(rows, predictions, metrics_path, n, first_value):
    """Why ``rows`` (header first) are not ``n`` complete rows with finite values from ``first_value`` on."""
    if len(rows) - 1 != n:
        return f"{predictions} has {len(rows) - 1} rows but {metrics_path} counts {n} test utterances"
    for line, row in enumerate(rows[1:], start=2):
        try:
            if len(row) != len(rows[0]) or not np.all(np.isfinite([float(v) for v in row[first_value:]])):
                raise ValueError
        except ValueError:
            return f"{predictions} line {line} is damaged"
    return None


def _regression_problem(metrics_path, scores, predictions, dimensions):
    """:func:`scores_problem` for a regression fold (``scores = {"ccc": {dim: value}, "ccc_mean", "n"}``).

    ``metrics.json`` must hold a finite CCC for every dimension (of ``dimensions``, when
    given), ``ccc_mean`` and ``n``; ``predictions.csv`` the columns of
    :func:`regression_columns` and ``n`` rows of finite values.
    """
    ccc = scores["ccc"]
    dimensions = list(dimensions) if dimensions is not None else (list(ccc) if isinstance(ccc, dict) else None)
    if (not isinstance(ccc, dict) or sorted(ccc) != sorted(dimensions)
            or not all(isinstance(ccc[d], (int, float)) and np.isfinite(ccc[d]) for d in dimensions)
            or not isinstance(scores.get("ccc_mean"), (int, float)) or not isinstance(scores.get("n"), int)):
        return f"{metrics_path} lacks the scores ccc (one per dimension of {dimensions}), ccc_mean and n"
    rows = _read_rows(predictions)
    if isinstance(rows, str):
        return rows
    if not rows or rows[0] != regression_columns(dimensions):
        return f"{predictions} lacks its header {regression_columns(dimensions)}"
    return _rows_problem(rows, predictions, metrics_path, scores["n"], first_value=1)


def _model_problem(model_dir):
    missing = [f for f in MODEL_FILES if not (model_dir / f).is_file()]
    return f"{model_dir} lacks {', '.join(missing)}" if missing else None


def _fold_problem(run, name, label_names):
    if label_names is None and run.labels.is_file():
        label_names = read_json(run.labels)
    problem = scores_problem(run.metrics(name), run.predictions(name), name, label_names)
    if problem:
        return problem
    experiment = (read_json(run.config).get("recipe") or {}).get("experiment", {}) if run.config.is_file() else {}
    if experiment.get("kind") in MODEL_KINDS and experiment.get("save_models"):
        return _model_problem(run.model_dir(name))
    return None


def repeat_dir(fold_dir, repeat):
    """``folds/<fold>/repeat_<k>/``: run ``repeat`` (1-based) of a fold under ``experiment.repeats``."""
    return pathlib.Path(fold_dir) / f"{REPEAT_PREFIX}{repeat}"


#: Marks a run under ``experiment.repeats`` whose scores were restored from ``results/`` (no model).
RESTORED_MARKER = ".restored"


def repeat_restored(fold_dir, repeat):
    """Whether run ``repeat`` of the fold in ``fold_dir`` holds scores restored from ``results/`` (no model)."""
    return (repeat_dir(fold_dir, repeat) / RESTORED_MARKER).is_file()


def repeat_status(fold_dir, name, repeat, label_names, save_models):
    """Whether run ``repeat`` of fold ``name`` in ``fold_dir`` is finished, and if not, why.

    As :func:`fold_status` for a fold: the run's ``metrics.json`` (written last) and
    ``predictions.csv`` hold complete scores and, when ``save_models``, its MODEL DIR
    every file, unless the run was restored from ``results/`` (:func:`repeat_restored`),
    which keeps no models.

    Returns
    -------
    (bool, str or None)
    """
    folder = repeat_dir(fold_dir, repeat)
    problem = scores_problem(folder / "metrics.json", folder / "predictions.csv", name, label_names)
    if problem is None and save_models and not repeat_restored(fold_dir, repeat):
        problem = _model_problem(folder / "model")
    return problem is None, problem


def fold_status(run_dir, name, label_names=None):
    """Whether fold ``name`` of ``run_dir`` is finished, and if not, why.

    A fold is finished when its ``metrics.json`` parses, names the fold and holds
    its scores; its ``predictions.csv`` parses, has one score column per class of
    ``labels.json`` and one row per test utterance counted in ``metrics.json``; and,
    for a network run that saves its models (``config.json``), its MODEL DIR holds
    every file. Anything less is an interrupted or damaged fold, which the runner
    redoes.

    Parameters
    ----------
    run_dir : path-like
    name : str
    label_names : list of str, optional
        Default: the run's ``labels.json`` (if present).

    Returns
    -------
    (bool, str or None)
        ``(True, None)``, or ``(False, reason)`` naming the file at fault.
    """
    problem = _fold_problem(RunDir(run_dir), name, label_names)
    return problem is None, problem


# ---------------------------------------------------------------------------- model choice


def validation_ua(fold_dir):
    """Validation UA of one fold, or None.

    The ``validation_scores.ua`` of its ``metrics.json`` when recorded there, else
    the UA of its ``val_predictions.csv`` (the saved model's predictions on the
    fold's validation speakers). A regression fold (``train.loss = "ccc"``) has no UA:
    its recorded validation ``ccc_mean`` stands in for it (higher is better too), or
    None without one.
    """
    fold_dir = pathlib.Path(fold_dir)
    metrics_path = fold_dir / "metrics.json"
    if metrics_path.is_file():
        metrics = read_json(metrics_path)
        recorded = metrics.get("validation_scores") or {}
        if "ua" in recorded:
            return float(recorded["ua"])
        if "ccc" in (metrics.get("scores") or {}):
            return float(recorded["ccc_mean"]) if "ccc_mean" in recorded else None
    csv_path = fold_dir / "val_predictions.csv"
    if not csv_path.is_file():
        return None
    _, labels, predicted, _ = read_predictions(csv_path)
    if not labels:
        return None
    names = sorted(set(labels) | set(predicted))
    index = {name: k for k, name in enumerate(names)}
    return unweighted_accuracy([index[v] for v in labels], [index[v] for v in predicted])


def resolve_model_dir(path, fold=None, policy="best_validation"):
    """Find the MODEL DIR to use for ``path`` (a MODEL DIR or a RUN_DIR).

    Parameters
    ----------
    path : str or path-like
        A MODEL DIR, or a RUN_DIR with ``folds/<fold>/model`` MODEL DIRs.
    fold : str, optional
        Fold name of a RUN_DIR. When None, ``policy`` decides.
    policy : {"deployable", "best_validation", "explicit"}
        ``"deployable"`` (predict, export): the run's final model trained on every
        speaker (``final/model``, once ``final/final.json`` is written: ``train --final``)
        when there is one, else as ``"best_validation"``.
        ``"best_validation"``: among the finished folds
        (:func:`fold_status`), the one whose model has the best *validation* UA
        (:func:`validation_ua`); a named fold must be finished. Test scores are never used, since
        every fold's test speaker is a different person. Ties go to the first fold
        by name; folds without a validation set rank last. ``"explicit"`` (embedding
        extraction, where each fold's network must embed only its own test
        speaker): a run with several fold models needs ``fold``.

    Returns
    -------
    model_dir : pathlib.Path
    reason : str
        One line saying which model was chosen and why.

    Raises
    ------
    DataError
        ``path`` is neither a MODEL DIR nor a RUN_DIR with saved fold models.
    ParameterError
        ``fold`` names no saved fold model, or is given for a MODEL DIR under
        ``"best_validation"``, or the ``"explicit"`` policy meets several fold models
        and no ``fold``.
    """
    if policy not in POLICIES:
        raise ParameterError(f"policy must be one of {POLICIES}, got {policy!r}")
    path = pathlib.Path(path)
    if (path / "model.keras").is_file():
        # The SVM runner names each fold's own fold for embedding:PATH, so under "explicit" one
        # MODEL DIR serves every fold; a --fold given for a MODEL DIR to predict/export is a mistake.
        if fold is not None and policy != "explicit":
            raise ParameterError(f"--fold {fold!r} given, but {path} is a MODEL DIR, not a RUN_DIR")
        return path, f"model: {path}"
    run = RunDir(path)
    final_model = path / FINAL_MODEL
    if (fold is None and policy == "deployable" and (path / FINAL_INFO).is_file()
            and all((final_model / name).is_file() for name in MODEL_FILES)):
        return final_model, (f"model: {final_model}, the run's final model trained on every speaker "
                             "(--fold to choose a fold model)")
    saved = sorted(p.parent.parent.name for p in run.folds_dir.glob("*/model/model.keras"))
    if not saved:
        raise DataError(
            f"{path} is neither a MODEL DIR (no model.keras) nor a RUN_DIR with saved fold "
            f"models (no {run.folds_dir}/<fold>/model/model.keras)"
        )
    if fold is not None:
        fold = str(fold)
        if fold not in saved:
            raise ParameterError(f"fold {fold!r} has no trained model in {path}; saved: {', '.join(saved)}")
        if policy != "explicit":
            finished, reason = fold_status(path, fold)
            if not finished:
                raise ParameterError(f"fold {fold!r} is not finished ({reason}); resume its run or choose "
                                     "another --fold")
        return run.model_dir(fold), f"model: fold {fold} of {path} (chosen with --fold)"
    if policy == "explicit":
        if len(saved) != 1:
            raise ParameterError(f"run {path} has models for folds {saved}; choose one with fold=... (--fold)")
        return run.model_dir(saved[0]), f"model: fold {saved[0]} of {path} (its only saved fold)"
    status = {name: fold_status(path, name) for name in saved}
    finished = [name for name in saved if status[name][0]]
    if not finished:
        raise DataError(f"{path} has no finished fold; " + "; ".join(
            f"{name}: {status[name][1]}" for name in saved) + ". Resume the run to finish its folds")
    scores = {name: validation_ua(run.fold(name)) for name in finished}
    scored = [name for name in finished if scores[name] is not None]
    if not scored:
        return (run.model_dir(finished[0]),
                f"model: fold {finished[0]} of {path} (no fold records a validation UA; first by name)")
    best = max(scored, key=lambda name: (scores[name], -finished.index(name)))
    measure = "mean CCC" if "ccc" in (read_json(run.metrics(best)).get("scores") or {}) else "UA"
    return (run.model_dir(best),
            f"model: fold {best} of {path} (best validation {measure} {scores[best]:.4f} of {len(finished)} "
            f"finished folds)")
