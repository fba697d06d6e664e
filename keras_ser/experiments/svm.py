"""The feature/SVM fold: :func:`keras_ser.svm.run_fold` on one fold, written to the run directory.

The features, the classifier and its validation-tuned regularisation live in
:mod:`keras_ser.svm`; this module passes it the recipe and turns its answer into
the fold's ``predictions.csv`` (decision values as ``score_<class>`` columns, which
are not probabilities) and ``metrics.json`` entries.

Imports :mod:`~keras_ser.experiments.run_dir` only, of this package.
"""

import numpy as np

from keras_ser import svm
from keras_ser.experiments.run_dir import write_predictions
from keras_ser.metrics import classification_scores


def run_svm_fold(recipe, fold, label_names, fold_dir, *, progress=True):
    """Extract features, tune and fit the SVM on one fold; write ``predictions.csv``.

    Returns
    -------
    dict
        The fold's ``scores`` and ``params`` (the chosen regularisation and the
        feature description), and ``epochs_run`` / ``best_epoch`` (None).
    """
    config = dict(recipe, corpus=recipe["experiment"]["corpus"], seed=recipe["experiment"]["seed"],
                  progress=progress)
    out = svm.run_fold(config, fold, label_names, fold_dir)
    index = {name: k for k, name in enumerate(label_names)}
    y_true = [index[v] if isinstance(v, str) else int(v) for v in out["y_true"]]
    y_pred = [index[v] if isinstance(v, str) else int(v) for v in out["y_pred"]]
    scores = np.asarray(out.get("scores") or np.eye(len(label_names))[y_pred], np.float64)
    write_predictions(fold_dir / "predictions.csv", out["ids"], [label_names[k] for k in y_true],
                      [label_names[k] for k in y_pred], scores, label_names, prefix="score_")
    return {"scores": classification_scores(y_true, y_pred, label_names), "params": out.get("params", {}),
            "epochs_run": None, "best_epoch": None}
