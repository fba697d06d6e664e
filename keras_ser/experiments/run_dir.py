"""The run directory: its layout, atomic writers, fold status, resume checks and model choice.

A run directory (``runs/<recipe>`` by default) holds::

    config.json                    recipe, overrides, corpus, seed (checked on resume)
    labels.json                    class names in output order
    results.json, results.md       reports (keras_ser.experiments.reports)
    confusion.png, curves.png
    folds/<fold>/metrics.json      written last: its presence marks the fold as finished
    folds/<fold>/predictions.csv   test predictions (val_predictions.csv: validation)
    folds/<fold>/history.json      Keras history of a network fold
    folds/<fold>/embeddings.npz    utterance embeddings (experiment.save_features)
    folds/<fold>/model/            MODEL DIR: model.keras, frontend.json, labels.json, meta.json
    feature_cache/                 SVM feature cache (keras_ser.svm)

Everything that reads or writes these paths goes through this module, which imports
nothing else of :mod:`keras_ser.experiments` (nor Keras).

Example
-------
>>> from keras_ser.experiments.run_dir import RunDir
>>> RunDir("runs/x").metrics("speaker_03").as_posix()
'runs/x/folds/speaker_03/metrics.json'
"""

import csv
import json
import os
import pathlib

import numpy as np

from keras_ser.errors import DataError, ParameterError
from keras_ser.metrics import unweighted_accuracy

#: Config keys that may differ between a run and its resumption.
RESUMABLE_KEYS = ("strategy", "folds", "progress")

#: The files of a MODEL DIR.
MODEL_FILES = ("model.keras", "frontend.json", "labels.json", "meta.json")

#: How :func:`resolve_model_dir` chooses a fold model of a RUN_DIR when none is named.
POLICIES = ("best_validation", "explicit")


class RunDir:
    """Paths of one run directory (see the module docstring).

    Parameters
    ----------
    root : path-like
    """

    def __init__(self, root):
        self.root = pathlib.Path(root)

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

    def is_finished(self, name):
        """Whether fold ``name`` has finished (its ``metrics.json`` exists)."""
        return self.metrics(name).is_file()


# ---------------------------------------------------------------------------- writers and readers


def write_json(path, data):
    """Write JSON atomically (tmp file + rename), so a killed run leaves no half file."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=json_default))
    os.replace(tmp, path)


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
    with open(path, "w", newline="") as handle:
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


def write_model_dir(model_dir, model, frontend, label_names, meta):
    """Save a fold's MODEL DIR: ``model.keras``, ``frontend.json``, ``labels.json``, ``meta.json``."""
    model_dir = pathlib.Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    model.save(model_dir / "model.keras")
    write_json(model_dir / "frontend.json", frontend.get_config())
    write_json(model_dir / "labels.json", list(label_names))
    write_json(model_dir / "meta.json", meta)


def corpus_display_name(corpus):
    """How results name a corpus: the shared 2-second EMO-DB copy is "EMO-DB-2s"."""
    return {"emodb": "EMO-DB-2s"}.get(corpus, corpus)


# ---------------------------------------------------------------------------- resume


def check_config(run_dir, config):
    """Refuse to resume ``run_dir`` under a different configuration; write ``config.json``.

    Raises
    ------
    ParameterError
        ``config.json`` exists and differs from ``config`` beyond :data:`RESUMABLE_KEYS`.
    """
    path = RunDir(run_dir).config
    if path.is_file():
        old = json.loads(path.read_text())
        strip = lambda c: {k: v for k, v in c.items() if k not in RESUMABLE_KEYS}  # noqa: E731
        if strip(old) != strip(json.loads(json.dumps(config, default=json_default))):
            raise ParameterError(
                f"{run_dir} holds a run with a different configuration (see its config.json); "
                "resume with the same recipe, overrides and corpus, or choose another --out"
            )
    write_json(path, config)


# ---------------------------------------------------------------------------- model choice


def validation_ua(fold_dir):
    """Validation UA of one fold, or None.

    The ``validation_scores.ua`` of its ``metrics.json`` when recorded there, else
    the UA of its ``val_predictions.csv`` (the saved model's predictions on the
    fold's validation speakers).
    """
    fold_dir = pathlib.Path(fold_dir)
    metrics_path = fold_dir / "metrics.json"
    if metrics_path.is_file():
        recorded = read_json(metrics_path).get("validation_scores") or {}
        if "ua" in recorded:
            return float(recorded["ua"])
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
    policy : {"best_validation", "explicit"}
        ``"best_validation"`` (predict, export): the fold whose model has the best
        *validation* UA (:func:`validation_ua`); test scores are never used, since
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
        if fold is not None and policy == "best_validation":
            raise ParameterError(f"--fold {fold!r} given, but {path} is a MODEL DIR, not a RUN_DIR")
        return path, f"model: {path}"
    run = RunDir(path)
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
        return run.model_dir(fold), f"model: fold {fold} of {path} (chosen with --fold)"
    if policy == "explicit":
        if len(saved) != 1:
            raise ParameterError(f"run {path} has models for folds {saved}; choose one with fold=... (--fold)")
        return run.model_dir(saved[0]), f"model: fold {saved[0]} of {path} (its only saved fold)"
    scores = {name: validation_ua(run.fold(name)) for name in saved}
    scored = [name for name in saved if scores[name] is not None]
    if not scored:
        return (run.model_dir(saved[0]),
                f"model: fold {saved[0]} of {path} (no fold records a validation UA; first by name)")
    best = max(scored, key=lambda name: (scores[name], -saved.index(name)))
    return (run.model_dir(best),
            f"model: fold {best} of {path} (best validation UA {scores[best]:.4f} of {len(saved)} "
            f"saved folds)")
