import math

import numpy as np
import pytest
from scipy.stats import norm
from sklearn import metrics as skm

from keras_ser import metrics
from keras_ser.errors import ParameterError

NUM_CLASSES = 7


def _random_predictions(seed, n=200, missing=None):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, NUM_CLASSES, n)
    if missing is not None:
        y_true[y_true == missing] = (missing + 1) % NUM_CLASSES
    # Biased towards correct answers, so scores are far from chance.
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.integers(0, NUM_CLASSES, n))
    return y_true, y_pred


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_measures_match_sklearn(seed):
    y_true, y_pred = _random_predictions(seed)
    labels = list(range(NUM_CLASSES))
    assert metrics.weighted_accuracy(y_true, y_pred) == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert metrics.unweighted_accuracy(y_true, y_pred, NUM_CLASSES) == pytest.approx(
        skm.balanced_accuracy_score(y_true, y_pred)
    )
    assert metrics.macro_f1(y_true, y_pred, NUM_CLASSES) == pytest.approx(
        skm.f1_score(y_true, y_pred, average="macro")
    )
    np.testing.assert_allclose(
        metrics.per_class_recall(y_true, y_pred, NUM_CLASSES),
        skm.recall_score(y_true, y_pred, average=None, labels=labels),
    )
    np.testing.assert_allclose(
        metrics.per_class_f1(y_true, y_pred, NUM_CLASSES),
        skm.f1_score(y_true, y_pred, average=None, labels=labels),
    )
    np.testing.assert_array_equal(
        metrics.confusion_matrix(y_true, y_pred, NUM_CLASSES),
        skm.confusion_matrix(y_true, y_pred, labels=labels),
    )


def test_ua_ignores_a_class_absent_from_the_test_speaker():
    # A LOSO fold whose speaker recorded no class 3: UA averages the present classes.
    y_true, y_pred = _random_predictions(5, missing=3)
    y_pred[:5] = 3  # the absent class is still predicted sometimes
    recall = metrics.per_class_recall(y_true, y_pred, NUM_CLASSES)
    assert np.isnan(recall[3])
    with pytest.warns(UserWarning, match="y_pred contains classes not in y_true"):
        reference = skm.balanced_accuracy_score(y_true, y_pred)
    assert metrics.unweighted_accuracy(y_true, y_pred, NUM_CLASSES) == pytest.approx(reference)
    # macro-F1 counts the predicted-but-absent class as F1 = 0, like sklearn.
    assert metrics.macro_f1(y_true, y_pred, NUM_CLASSES) == pytest.approx(
        skm.f1_score(y_true, y_pred, average="macro")
    )


def test_classification_scores_names_classes():
    names = ["anger", "boredom", "disgust", "fear", "happiness", "neutral", "sadness"]
    y_true, y_pred = _random_predictions(3)
    scores = metrics.classification_scores(y_true, y_pred, names)
    assert scores["n"] == len(y_true)
    recall = skm.recall_score(y_true, y_pred, average=None, labels=range(7))
    for k, name in enumerate(names):
        assert scores["per_class"][name]["recall"] == pytest.approx(recall[k])
        assert scores["per_class"][name]["support"] == int(np.sum(y_true == k))


def test_bad_inputs_raise():
    with pytest.raises(ParameterError, match="differ in length"):
        metrics.weighted_accuracy([0, 1], [0])
    with pytest.raises(ParameterError, match="empty"):
        metrics.weighted_accuracy([], [])
    with pytest.raises(ParameterError, match=r"\[0, 2\)"):
        metrics.confusion_matrix([0, 2], [0, 1], 2)


def _numpy_ccc(x, y):
    # tzirakis2021 eq. 8 written out with the sample formulas of np.cov (ddof=0).
    cov = np.cov(x, y, ddof=0)
    return 2 * cov[0, 1] / (cov[0, 0] + cov[1, 1] + (x.mean() - y.mean()) ** 2)


def test_ccc_matches_numpy_formula():
    rng = np.random.default_rng(0)
    x = rng.normal(size=500)
    y = 0.7 * x + rng.normal(scale=0.5, size=500) + 0.3
    assert metrics.ccc(x, y) == pytest.approx(_numpy_ccc(x, y))
    assert metrics.ccc(x, x) == pytest.approx(1.0)
    centred = x - x.mean()
    assert metrics.ccc(centred, -centred) == pytest.approx(-1.0)
    with pytest.raises(ParameterError):
        metrics.ccc([1.0], [1.0])


def test_z_test_matches_hand_computation():
    correct_a, correct_b, n = 355, 320, 535
    p_a, p_b = correct_a / n, correct_b / n
    pooled = (correct_a + correct_b) / (2 * n)
    z_hand = (p_a - p_b) / math.sqrt(pooled * (1 - pooled) * (2 / n))
    z, p_value = metrics.accuracy_z_test(correct_a, n, correct_b, n)
    assert z == pytest.approx(z_hand)
    assert p_value == pytest.approx(norm.sf(z_hand))
    assert p_value < 0.05
    # The test is one-tailed: swapping the systems gives 1 - p.
    _, p_swapped = metrics.accuracy_z_test(correct_b, n, correct_a, n)
    assert p_swapped == pytest.approx(1 - p_value)
    with pytest.raises(ParameterError, match="correct_a"):
        metrics.accuracy_z_test(11, 10, 5, 10)
