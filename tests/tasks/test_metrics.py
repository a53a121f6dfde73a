"""Metrics against scipy and naive formulas, including ties and degenerate inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from sparsecore.errors import SparsecoreError
from sparsecore.tasks import GLUE_TASKS, metric_names_for
from sparsecore.tasks.metrics import (
    accuracy,
    compute_metrics,
    f1_binary,
    matthews_corrcoef,
    pearson,
    rankdata,
    spearman,
)


def naive_mcc_binary(p, y):
    tp = sum(1 for a, b in zip(p, y) if a == 1 and b == 1)
    tn = sum(1 for a, b in zip(p, y) if a == 0 and b == 0)
    fp = sum(1 for a, b in zip(p, y) if a == 1 and b == 0)
    fn = sum(1 for a, b in zip(p, y) if a == 0 and b == 1)
    d = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return (tp * tn - fp * fn) / d if d else 0.0


def naive_mcc_multiclass(p, y):
    """Gorodkin's R_K from the covariance definition over one-hot vectors."""
    classes = sorted(set(p) | set(y))
    X = np.array([[a == c for c in classes] for a in p], dtype=float)
    Y = np.array([[b == c for c in classes] for b in y], dtype=float)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    cov = lambda A, B: float(np.sum(A * B))  # noqa: E731
    d = math.sqrt(cov(Xc, Xc) * cov(Yc, Yc))
    return cov(Xc, Yc) / d if d else 0.0


def naive_f1(p, y):
    tp = sum(1 for a, b in zip(p, y) if a == 1 and b == 1)
    prec = tp / sum(1 for a in p if a == 1) if any(a == 1 for a in p) else 0.0
    rec = tp / sum(1 for b in y if b == 1) if any(b == 1 for b in y) else 0.0
    return 2 * prec * rec / (prec + rec) if prec + rec else 0.0


@pytest.mark.parametrize("seed", range(5))
def test_binary_metrics_vs_naive(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 50)
    p = np.where(rng.random(50) < 0.7, y, 1 - y)
    assert accuracy(p, y) == pytest.approx(np.mean([a == b for a, b in zip(p, y)]))
    assert f1_binary(p, y) == pytest.approx(naive_f1(p.tolist(), y.tolist()))
    assert matthews_corrcoef(p, y) == pytest.approx(naive_mcc_binary(p.tolist(), y.tolist()))


def test_known_values():
    p, y = [1, 1, 0, 0, 1], [1, 0, 0, 1, 1]
    assert accuracy(p, y) == pytest.approx(0.6)
    assert f1_binary(p, y) == pytest.approx(2 / 3)  # tp=2 fp=1 fn=1
    assert matthews_corrcoef(p, y) == pytest.approx(1 / 6)  # (2*1-1*1)/sqrt(3*3*2*2)
    assert matthews_corrcoef([0, 1, 1], [1, 0, 0]) == pytest.approx(-1.0)


@pytest.mark.parametrize("seed", range(3))
def test_multiclass_mcc_vs_naive(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, 40)
    p = np.where(rng.random(40) < 0.5, y, rng.integers(0, 3, 40))
    assert matthews_corrcoef(p, y) == pytest.approx(naive_mcc_multiclass(p.tolist(), y.tolist()))


def test_degenerate_classification():
    assert matthews_corrcoef([1, 1, 1], [0, 1, 0]) == 0.0  # constant predictions
    assert matthews_corrcoef([0, 1, 0], [1, 1, 1]) == 0.0  # constant labels
    assert f1_binary([0, 0], [0, 0]) == 0.0  # no positives anywhere
    assert f1_binary([1, 1], [0, 0]) == 0.0
    assert f1_binary([1, 0, 1], [1, 2, 0]) == pytest.approx(2 / 3)  # 2 is negative: tp=1 fp=1 fn=0
    with pytest.raises(SparsecoreError):
        accuracy([], [])
    with pytest.raises(SparsecoreError):
        accuracy([1, 0], [1])


def test_rankdata_matches_scipy_with_ties():
    x = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5]
    np.testing.assert_allclose(rankdata(x), stats.rankdata(x, method="average"))


@pytest.mark.parametrize("seed", range(4))
def test_pearson_spearman_vs_scipy(seed):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=60)
    p = y + rng.normal(size=60)
    if seed % 2:  # heavy ties
        y, p = np.round(y), np.round(p * 2) / 2
    assert pearson(p, y) == pytest.approx(stats.pearsonr(p, y)[0], abs=1e-12)
    assert spearman(p, y) == pytest.approx(stats.spearmanr(p, y)[0], abs=1e-12)


def test_degenerate_correlations_are_zero():
    assert pearson([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) == 0.0
    assert spearman([2, 2, 2], [1, 2, 3]) == 0.0
    assert pearson([1.0], [2.0]) == 0.0
    assert pearson([1.0, 2.0], [3.0, 5.0]) == pytest.approx(1.0)
    assert math.isnan(spearman([np.nan, 1.0, 2.0], [1.0, 2.0, 3.0]))


def test_compute_metrics_glue_classification():
    logits = np.array([[2.0, -1.0], [0.1, 0.3], [-1.0, 1.0], [0.5, 0.2]])
    y = np.array([0, 1, 0, 1])
    m = compute_metrics("single_label_classification", GLUE_TASKS["mrpc"].metric_names, logits, y)
    assert list(m) == ["accuracy", "f1", "combined_score"]
    assert m["accuracy"] == 0.5 and m["f1"] == pytest.approx(0.5)
    assert m["combined_score"] == pytest.approx(0.5)
    m = compute_metrics("single_label_classification", GLUE_TASKS["cola"].metric_names, logits, y)
    assert m == {"matthews_correlation": pytest.approx(0.0)}
    ids = compute_metrics("single_label_classification", ["accuracy"], np.array([0, 1, 1, 1]), y)
    assert ids["accuracy"] == 0.75


def test_compute_metrics_stsb():
    rng = np.random.default_rng(0)
    y = rng.uniform(0, 5, 30).astype(np.float32)
    p = (y + rng.normal(size=30)).reshape(-1, 1)
    m = compute_metrics("regression", GLUE_TASKS["stsb"].metric_names, p, y)
    r, rho = stats.pearsonr(p[:, 0], y)[0], stats.spearmanr(p[:, 0], y)[0]
    assert m["pearson"] == pytest.approx(r, abs=1e-6) and m["spearmanr"] == pytest.approx(rho, abs=1e-6)
    assert m["combined_score"] == pytest.approx((r + rho) / 2, abs=1e-6)
    mse = compute_metrics("regression", ["mse"], p[:, 0], y)["mse"]
    assert mse == pytest.approx(float(np.mean((p[:, 0] - y) ** 2)), rel=1e-6)


def test_compute_metrics_multilabel():
    logits = np.array([[1.0, -1.0, 2.0], [-1.0, -1.0, -1.0], [3.0, 0.5, -2.0]])
    y = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 0]], dtype=np.float32)
    m = compute_metrics("multi_label_classification", ["f1", "accuracy"], logits, y)
    # predicted positives: (0,0) (0,2) (2,0) (2,1); true: (0,0) (0,2) (1,1) (2,0) -> tp=3 fp=1 fn=1
    assert m["f1"] == pytest.approx(6 / 8)
    assert m["accuracy"] == pytest.approx(1 / 3)
    assert compute_metrics("multi_label_classification", ["accuracy"], np.zeros((2, 3)), y[:2])["accuracy"] == 0.0


def test_compute_metrics_errors():
    y = np.array([0, 1])
    with pytest.raises(SparsecoreError, match="pearson"):
        compute_metrics("single_label_classification", ["pearson"], np.zeros((2, 2)), y)
    with pytest.raises(SparsecoreError, match="unknown problem type"):
        compute_metrics("ranking", ["accuracy"], np.zeros((2, 2)), y)
    with pytest.raises(SparsecoreError, match="combined_score alone"):
        compute_metrics("regression", ["combined_score"], np.zeros(2), y)
    with pytest.raises(SparsecoreError, match="2 classes"):
        compute_metrics("single_label_classification", ["f1"], np.eye(3), np.array([0, 1, 2]))
    with pytest.raises(SparsecoreError, match="outside"):
        compute_metrics("single_label_classification", ["accuracy"], np.zeros((2, 2)), np.array([0, 2]))
    with pytest.raises(SparsecoreError, match="shape"):
        compute_metrics("single_label_classification", ["accuracy"], np.zeros((3, 2)), y)
    with pytest.raises(SparsecoreError, match="logits"):
        compute_metrics("single_label_classification", ["accuracy"], np.zeros(2), y)
    with pytest.raises(SparsecoreError, match="num_labels=1"):
        compute_metrics("regression", ["pearson"], np.zeros((2, 2)), y)


def test_metric_names_for():
    assert metric_names_for("MRPC", "single_label_classification") == ("accuracy", "f1", "combined_score")
    assert metric_names_for(None, "multi_label_classification") == ("f1", "accuracy")
    assert metric_names_for(None, "regression") == ("mse", "pearson", "spearmanr")
