"""Evaluation measures of the five papers.

* WA, weighted accuracy = plain accuracy (zhao2019 Sec. IV-B; zhao2018 Sec. 5.1).
* UA, unweighted accuracy = unweighted average recall, the mean of the
  per-class recalls (zhao2019 Sec. IV-B; zhang2021_dcnn "UAR", Sec. 3.2).
* macro-F1, per-class recall and F1 (zhang2021_multicnn Tables 8-9) and the confusion matrix.
* CCC, the concordance correlation coefficient of tzirakis2021 eq. 8, as a NumPy
  function (its Keras loss ``1 - CCC`` and streaming metric are in :mod:`keras_ser.ccc`).
* The one-tailed z-test that zhao2019 uses for "significant improvement"
  (Sec. IV-C): a two-proportion z-test on two systems' accuracies.

UA over a test set where some class never occurs (e.g. one EMO-DB speaker
who recorded no disgust) averages over the classes present in ``y_true`` only,
as ``sklearn.metrics.balanced_accuracy_score`` does; a recall of an absent class
is undefined, not zero.

Example
-------
>>> from keras_ser import metrics
>>> round(metrics.unweighted_accuracy([0, 0, 1, 2], [0, 1, 1, 2]), 4)
0.8333
"""

import math

import numpy as np

from keras_ser.errors import ParameterError


def _labels(y_true, y_pred, num_classes):
    y_true = np.asarray(y_true).astype(np.int64).ravel()
    y_pred = np.asarray(y_pred).astype(np.int64).ravel()
    if y_true.shape != y_pred.shape:
        raise ParameterError(
            f"y_true and y_pred differ in length: {y_true.shape[0]} vs {y_pred.shape[0]}"
        )
    if y_true.size == 0:
        raise ParameterError("cannot score an empty set of predictions")
    if num_classes is None:
        num_classes = int(max(y_true.max(), y_pred.max())) + 1
    if min(y_true.min(), y_pred.min()) < 0 or max(y_true.max(), y_pred.max()) >= num_classes:
        raise ParameterError(f"class indices must lie in [0, {num_classes})")
    return y_true, y_pred, num_classes


def confusion_matrix(y_true, y_pred, num_classes=None):
    """Counts ``C[i, j]`` of true class ``i`` predicted as ``j``.

    Parameters
    ----------
    y_true, y_pred : array-like of int
        Class indices.
    num_classes : int, optional
        Size of the matrix; defaults to the largest index seen + 1.

    Returns
    -------
    np.ndarray of int64, shape ``[num_classes, num_classes]``

    Example
    -------
    >>> confusion_matrix([0, 1, 1], [0, 1, 0], 2).tolist()
    [[1, 0], [1, 1]]
    """
    y_true, y_pred, num_classes = _labels(y_true, y_pred, num_classes)
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def weighted_accuracy(y_true, y_pred):
    """WA: the fraction of correctly classified utterances."""
    y_true, y_pred, _ = _labels(y_true, y_pred, None)
    return float(np.mean(y_true == y_pred))


def per_class_recall(y_true, y_pred, num_classes=None):
    """Recall of every class; NaN for a class absent from ``y_true``."""
    matrix = confusion_matrix(y_true, y_pred, num_classes)
    support = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(matrix) / np.maximum(support, 1), np.nan)


def unweighted_accuracy(y_true, y_pred, num_classes=None):
    """UA (UAR): mean recall over the classes present in ``y_true``."""
    return float(np.nanmean(per_class_recall(y_true, y_pred, num_classes)))


def per_class_f1(y_true, y_pred, num_classes=None):
    """F1 of every class; 0 where precision and recall are both 0 or undefined.

    A class that is neither present nor predicted gets NaN (nothing to score),
    so :func:`macro_f1` ignores it.
    """
    matrix = confusion_matrix(y_true, y_pred, num_classes)
    true_positive = np.diag(matrix).astype(np.float64)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    denominator = support + predicted
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(denominator > 0, 2.0 * true_positive / np.maximum(denominator, 1), np.nan)
    return f1


def macro_f1(y_true, y_pred, num_classes=None):
    """Unweighted mean of the per-class F1 over classes present or predicted."""
    return float(np.nanmean(per_class_f1(y_true, y_pred, num_classes)))


def classification_scores(y_true, y_pred, label_names):
    """All classification measures of one test set, as a JSON-ready dict.

    Parameters
    ----------
    y_true, y_pred : array-like of int
        Class indices into ``label_names``.
    label_names : sequence of str
        Class names in model output order.

    Returns
    -------
    dict
        ``wa``, ``ua``, ``macro_f1``, ``n``, ``per_class`` (name -> recall, f1,
        support; NaN written as None) and ``confusion`` (list of lists).

    Example
    -------
    >>> s = classification_scores([0, 1], [0, 0], ["anger", "sadness"])
    >>> s["wa"], s["per_class"]["sadness"]["recall"]
    (0.5, 0.0)
    """
    num_classes = len(label_names)
    matrix = confusion_matrix(y_true, y_pred, num_classes)
    recall = per_class_recall(y_true, y_pred, num_classes)
    f1 = per_class_f1(y_true, y_pred, num_classes)

    def finite(value):
        return None if np.isnan(value) else float(value)

    return {
        "wa": weighted_accuracy(y_true, y_pred),
        "ua": float(np.nanmean(recall)),
        "macro_f1": float(np.nanmean(f1)),
        "n": int(matrix.sum()),
        "per_class": {
            name: {
                "recall": finite(recall[k]),
                "f1": finite(f1[k]),
                "support": int(matrix[k].sum()),
            }
            for k, name in enumerate(label_names)
        },
        "confusion": matrix.tolist(),
    }


def ccc(x, y):
    """Concordance correlation coefficient (tzirakis2021 eq. 8) of two 1-D sequences.

    ``2 cov(x, y) / (var(x) + var(y) + (mean(x) - mean(y))**2)`` with population
    (biased) moments, as in the AVEC 2017 evaluation script.

    Example
    -------
    >>> ccc([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    1.0
    """
    x = np.asarray(x, np.float64).ravel()
    y = np.asarray(y, np.float64).ravel()
    if x.shape != y.shape or x.size < 2:
        raise ParameterError("ccc needs two sequences of equal length >= 2")
    mean_x, mean_y = x.mean(), y.mean()
    covariance = np.mean((x - mean_x) * (y - mean_y))
    denominator = x.var() + y.var() + (mean_x - mean_y) ** 2
    if denominator == 0:
        raise ParameterError("ccc is undefined for two identical constant sequences")
    return float(2.0 * covariance / denominator)


def regression_scores(y_true, y_pred, dimensions):
    """CCC of every dimension of one test set, as a JSON-ready dict (tzirakis2021 eq. 8).

    Parameters
    ----------
    y_true, y_pred : array-like, shape ``[n, len(dimensions)]``
        Target and predicted values (keras_ser scores one value per utterance).
    dimensions : sequence of str
        Names of the columns (``"arousal"``, ``"valence"``, ...).

    Returns
    -------
    dict
        ``ccc`` (dimension -> CCC), ``ccc_mean`` (their mean: the quantity tzirakis2021's loss
        minimises as ``1 - ccc_mean``) and ``n``.

    Raises
    ------
    ParameterError
        Shapes disagree with each other or with ``dimensions``, or a CCC is undefined.

    Example
    -------
    >>> s = regression_scores([[0.0, 1.0], [1.0, 0.0]], [[0.0, 1.0], [1.0, 0.0]], ["arousal", "valence"])
    >>> s["ccc"], s["ccc_mean"], s["n"]
    ({'arousal': 1.0, 'valence': 1.0}, 1.0, 2)
    """
    y_true = np.asarray(y_true, np.float64)
    y_pred = np.asarray(y_pred, np.float64)
    dimensions = list(dimensions)
    if y_true.ndim != 2 or y_true.shape != y_pred.shape or y_true.shape[1] != len(dimensions):
        raise ParameterError(f"regression_scores needs y_true and y_pred of shape [n, {len(dimensions)}] "
                             f"({dimensions}); got {y_true.shape} and {y_pred.shape}")
    values = {name: ccc(y_true[:, k], y_pred[:, k]) for k, name in enumerate(dimensions)}
    return {"ccc": values, "ccc_mean": float(np.mean(list(values.values()))), "n": int(y_true.shape[0])}


def accuracy_z_test(correct_a, n_a, correct_b, n_b):
    """One-tailed two-proportion z-test that system A is more accurate than B.

    zhao2019 (Sec. IV-C) reports improvements as "p < .05 in a one-tailed z-test".
    With accuracies ``p_a = correct_a / n_a`` and ``p_b = correct_b / n_b`` and
    the pooled proportion ``p = (correct_a + correct_b) / (n_a + n_b)``:
    ``z = (p_a - p_b) / sqrt(p (1 - p) (1/n_a + 1/n_b))``, ``p_value = 1 - Phi(z)``.

    Parameters
    ----------
    correct_a, correct_b : int
        Correctly classified test items of each system.
    n_a, n_b : int
        Test-set sizes (equal when both systems were scored on the same set).

    Returns
    -------
    (float, float)
        ``z`` and the one-tailed ``p_value``.

    Example
    -------
    >>> z, p = accuracy_z_test(70, 100, 60, 100)
    >>> round(z, 3), round(p, 4)
    (1.482, 0.0691)
    """
    for name, value in (("n_a", n_a), ("n_b", n_b)):
        if int(value) != value or value <= 0:
            raise ParameterError(f"{name} must be a positive integer, got {value!r}")
    for name, correct, n in (("correct_a", correct_a, n_a), ("correct_b", correct_b, n_b)):
        if not 0 <= correct <= n:
            raise ParameterError(f"{name} must lie in [0, {n}], got {correct!r}")
    p_a, p_b = correct_a / n_a, correct_b / n_b
    pooled = (correct_a + correct_b) / (n_a + n_b)
    variance = pooled * (1.0 - pooled) * (1.0 / n_a + 1.0 / n_b)
    if variance == 0:
        # Both systems all right or all wrong: no evidence of a difference.
        return 0.0, 0.5
    z = (p_a - p_b) / math.sqrt(variance)
    p_value = 0.5 * math.erfc(z / math.sqrt(2.0))
    return float(z), float(p_value)
