import itertools

import numpy as np
import pytest

from keras_ser.errors import DataError, ParameterError
from keras_ser.experiments.fusion import (feature_level_fusion, fuse_scores, lambda_grid,
                                          score_level_fusion, tune_lambdas)


def test_lambda_grid_is_every_tenth_summing_to_one():
    grid = lambda_grid(3, 0.1)
    # Stars and bars: C(10 + 2, 2) = 66 points.
    assert len(grid) == 66 == len(set(grid))
    assert all(abs(sum(g) - 1) < 1e-12 and all(0 <= w <= 1 for w in g) for g in grid)
    assert (0.3, 0.3, 0.4) in grid and (0.2, 0.5, 0.3) in grid  # zhang2021_multicnn's optima
    assert lambda_grid(2, 0.5) == [(0.0, 1.0), (0.5, 0.5), (1.0, 0.0)]
    with pytest.raises(ParameterError):
        lambda_grid(2, 0.3)


def _members(seed, n=60, classes=4):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    scores = []
    for noise in (0.8, 1.0, 1.2):
        logits = np.eye(classes)[y] + rng.normal(scale=noise, size=(n, classes))
        p = np.exp(logits)
        scores.append(p / p.sum(1, keepdims=True))
    return scores, y


def test_tuning_matches_brute_force_search():
    scores, y = _members(0)
    best, accuracy = tune_lambdas(scores, y)
    # Independent brute force over integer tenths.
    results = []
    for a, b in itertools.product(range(11), repeat=2):
        if a + b <= 10:
            w = (a / 10, b / 10, (10 - a - b) / 10)
            fused = w[0] * scores[0] + w[1] * scores[1] + w[2] * scores[2]
            results.append((np.mean(fused.argmax(1) == y), w))
    top = max(r[0] for r in results)
    assert accuracy == pytest.approx(top)
    assert any(np.allclose(best, w) for acc, w in results if acc == top)
    np.testing.assert_allclose(fuse_scores(scores, best), sum(w * s for w, s in zip(best, scores)))


def test_validation_tuning_does_not_look_at_test_labels():
    val_scores, y_val = _members(1)
    test_scores, y_test = _members(2)
    on_val = score_level_fusion(val_scores, y_val, test_scores, y_test, tune_on="validation")
    shuffled = score_level_fusion(val_scores, y_val, test_scores, np.roll(y_test, 7), tune_on="validation")
    assert on_val["lambdas"] == shuffled["lambdas"]
    assert on_val["lambdas"] == list(tune_lambdas(val_scores, y_val)[0])
    on_test = score_level_fusion(val_scores, y_val, test_scores, y_test, tune_on="test")
    # Tuning on test (the paper's way) is optimistic: never below validation tuning on test.
    assert np.mean(on_test["y_pred"] == y_test) >= np.mean(on_val["y_pred"] == y_test)
    with pytest.raises(DataError):
        score_level_fusion(None, [], test_scores, y_test, tune_on="validation")
    with pytest.raises(ParameterError):
        score_level_fusion(val_scores, y_val, test_scores, y_test, tune_on="train")


def test_feature_level_fusion_uses_complementary_members():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    # Each member sees the label in one noisy dimension; together they are better.
    member_a = np.c_[y + rng.normal(scale=0.9, size=200), rng.normal(size=200)]
    member_b = np.c_[y + rng.normal(scale=0.9, size=200), rng.normal(size=200)]
    train, test = slice(0, 150), slice(150, 200)
    single, _ = feature_level_fusion([member_a[train]], y[train], [member_a[test]])
    fused, decision = feature_level_fusion([member_a[train], member_b[train]], y[train],
                                           [member_a[test], member_b[test]])
    # Two classes: one score column per class (scikit-learn gives one margin), argmax = prediction
    assert decision.shape == (50, 2) and np.array_equal(decision.argmax(1), fused)
    assert np.mean(fused == y[test]) >= np.mean(single == y[test])
    assert np.mean(fused == y[test]) > 0.7


def test_feature_level_fusion_scores_a_class_missing_from_training_minus_infinity():
    rng = np.random.default_rng(4)
    y = rng.choice([0, 2, 3], 120)  # class 1 has no training utterance
    features = np.c_[y + rng.normal(scale=0.3, size=120), rng.normal(size=120)]
    predicted, scores = feature_level_fusion([features[:90]], y[:90], [features[90:]], num_classes=4)
    assert scores.shape == (30, 4) and np.all(scores[:, 1] == -np.inf) and np.all(np.isfinite(scores[:, [0, 2, 3]]))
    assert np.array_equal(scores.argmax(1), predicted)
