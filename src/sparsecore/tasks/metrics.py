"""GLUE metrics in plain numpy.

All pairwise metrics are symmetric in their two arguments; they take
``(predictions, labels)`` to match ``compute_metrics``.

Degenerate inputs (documented choices, as in sklearn / common practice):
  * ``matthews_corrcoef`` is 0.0 when predictions or labels are constant;
  * ``f1_binary`` is 0.0 when there is no positive prediction and no positive label;
  * ``pearson`` / ``spearman`` are 0.0 (not nan) when either side is constant or n < 2,
    so a collapsed model scores 0 instead of poisoning averages. Non-finite
    predictions still give nan.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sparsecore.errors import SparsecoreError
from sparsecore.tasks.glue import GLUE_TASKS, MULTI_LABEL, PROBLEM_TYPES, REGRESSION, SINGLE_LABEL

_VALID = {
    SINGLE_LABEL: ("accuracy", "f1", "matthews_correlation"),
    REGRESSION: ("pearson", "spearmanr", "mse"),
    MULTI_LABEL: ("accuracy", "f1"),  # exact-match accuracy, micro-F1
}
COMBINED = "combined_score"  # mean of the other metrics requested, as in HF run_glue


def _pair(predictions, labels) -> tuple[np.ndarray, np.ndarray]:
    p, y = np.asarray(predictions), np.asarray(labels)
    if p.shape != y.shape:
        raise SparsecoreError(f"predictions have shape {p.shape} but labels {y.shape}", "metrics",
                              "score one prediction per labelled example")
    if p.size == 0:
        raise SparsecoreError("no examples to score", "metrics", "evaluate on a non-empty split")
    return p, y


def accuracy(predictions, labels) -> float:
    """Fraction of equal entries (over all entries of equal-shape arrays)."""
    p, y = _pair(predictions, labels)
    return float(np.mean(p == y))


def f1_binary(predictions, labels) -> float:
    """F1 of the positive class 1 (anything else is negative); 0.0 if no positives anywhere."""
    p, y = _pair(predictions, labels)
    return _f1(p == 1, y == 1)


def _f1(pred_pos: np.ndarray, true_pos: np.ndarray) -> float:
    tp = int(np.sum(pred_pos & true_pos))
    fp = int(np.sum(pred_pos & ~true_pos))
    fn = int(np.sum(~pred_pos & true_pos))
    denom = 2 * tp + fp + fn
    return 2.0 * tp / denom if denom else 0.0


def matthews_corrcoef(predictions, labels) -> float:
    """Matthews correlation (multi-class R_K form, equal to the binary MCC for 2 classes)."""
    p, y = _pair(predictions, labels)
    classes, idx = np.unique(np.concatenate([y.ravel(), p.ravel()]), return_inverse=True)
    n = y.size
    cm = np.zeros((len(classes), len(classes)), dtype=np.float64)
    np.add.at(cm, (idx[:n], idx[n:]), 1.0)
    t_sum, p_sum = cm.sum(axis=1), cm.sum(axis=0)
    total, correct = float(n), float(np.trace(cm))
    cov_yp = correct * total - float(t_sum @ p_sum)
    cov_pp = total * total - float(p_sum @ p_sum)
    cov_yy = total * total - float(t_sum @ t_sum)
    if cov_pp == 0.0 or cov_yy == 0.0:
        return 0.0
    return float(cov_yp / np.sqrt(cov_yy * cov_pp))


def pearson(predictions, labels) -> float:
    """Pearson r; 0.0 when either side is constant or there are fewer than 2 points."""
    p, y = _pair(np.asarray(predictions, dtype=np.float64).ravel(), np.asarray(labels, dtype=np.float64).ravel())
    if p.size < 2:
        return 0.0
    pc, yc = p - p.mean(), y - y.mean()
    denom = np.sqrt(np.sum(pc * pc) * np.sum(yc * yc))
    if denom == 0.0:
        return 0.0
    if not np.isfinite(denom):
        return float("nan")
    return float(np.clip(np.sum(pc * yc) / denom, -1.0, 1.0))


def rankdata(x) -> np.ndarray:
    """1-based ranks, ties get the average of their ranks (scipy's 'average' method)."""
    a = np.asarray(x, dtype=np.float64).ravel()
    order = np.argsort(a, kind="mergesort")
    s = a[order]
    new = np.concatenate([[True], s[1:] != s[:-1]])
    group = np.cumsum(new) - 1  # group id of each sorted position
    bounds = np.concatenate([np.flatnonzero(new), [a.size]])  # start of each group, then n
    avg = 0.5 * (bounds[:-1] + 1 + bounds[1:])  # mean of ranks start+1 .. end
    ranks = np.empty(a.size, dtype=np.float64)
    ranks[order] = avg[group]
    return ranks


def spearman(predictions, labels) -> float:
    """Spearman rho = Pearson r of average ranks; 0.0 for constant input."""
    p, y = _pair(np.asarray(predictions).ravel(), np.asarray(labels).ravel())
    if not (np.all(np.isfinite(p.astype(np.float64))) and np.all(np.isfinite(y.astype(np.float64)))):
        return float("nan")
    return pearson(rankdata(p), rankdata(y))


def metric_names_for(task_name: str | None, problem_type: str) -> tuple[str, ...]:
    """The GLUE task's metrics, or defaults for a custom dataset of that problem type."""
    if task_name is not None and task_name.lower() in GLUE_TASKS:
        return GLUE_TASKS[task_name.lower()].metric_names
    _check_problem_type(problem_type)
    return {SINGLE_LABEL: ("accuracy",), REGRESSION: ("mse", "pearson", "spearmanr"),
            MULTI_LABEL: ("f1", "accuracy")}[problem_type]


def _check_problem_type(problem_type: str) -> None:
    if problem_type not in PROBLEM_TYPES:
        raise SparsecoreError(f"unknown problem type {problem_type!r}", "metrics",
                              f"use one of: {', '.join(PROBLEM_TYPES)}")


def compute_metrics(problem_type: str, metric_names: Sequence[str], predictions, labels) -> dict[str, float]:
    """Score raw model outputs.

    predictions: (n, C) logits for single-label (argmax; a 1-D integer array is taken as
    class ids), (n,) or (n, 1) for regression, (n, L) logits for multi-label (logit > 0,
    i.e. sigmoid > 0.5). labels: as in ``dataset.Split.labels``.
    ``combined_score`` is the mean of the other requested metrics.
    """
    _check_problem_type(problem_type)
    names = list(metric_names)
    base = [m for m in names if m != COMBINED]
    bad = [m for m in base if m not in _VALID[problem_type]]
    if bad or not base:
        raise SparsecoreError(
            f"metric {', '.join(bad) if bad else COMBINED + ' alone'} is not available for {problem_type}",
            "metrics",
            f"use {', '.join(_VALID[problem_type])} (plus {COMBINED})",
        )
    p, y = _pair(*_prepare(problem_type, predictions, labels))
    out: dict[str, float] = {}
    for m in base:
        out[m] = _score(problem_type, m, p, y)
    if COMBINED in names:
        out[COMBINED] = float(np.mean([out[m] for m in base]))
    return {m: out[m] for m in names}


def _prepare(problem_type: str, predictions, labels) -> tuple[np.ndarray, np.ndarray]:
    p, y = np.asarray(predictions), np.asarray(labels)
    where = "metrics"
    if problem_type == SINGLE_LABEL:
        if p.ndim == 2:
            if p.shape[1] < 1:
                raise SparsecoreError("logits have no classes", where, "pass (n, num_labels) logits")
            if y.size and p.shape[0] == y.size and (y.min() < 0 or y.max() >= p.shape[1]):
                raise SparsecoreError(f"label ids outside 0..{p.shape[1] - 1}", where,
                                      "check the model's num_labels matches the data")
            p = np.argmax(p, axis=1)
        elif not (p.ndim == 1 and np.issubdtype(p.dtype, np.integer)):
            raise SparsecoreError(f"classification predictions must be (n, C) logits, got shape {p.shape}",
                                  where, "pass the model's logits")
        return p, y.astype(np.int64).ravel()
    if problem_type == REGRESSION:
        if p.ndim == 2 and p.shape[1] == 1:
            p = p[:, 0]
        if p.ndim != 1:
            raise SparsecoreError(f"regression predictions must be (n,) or (n, 1), got {p.shape}", where,
                                  "use a model with num_labels=1")
        return p.astype(np.float64), y.astype(np.float64).ravel()
    if p.ndim != 2 or y.ndim != 2:
        raise SparsecoreError(f"multi-label predictions and labels must be (n, L), got {p.shape} and {y.shape}",
                              where, "pass (n, num_labels) logits and multi-hot labels")
    return p > 0, y > 0.5


def _score(problem_type: str, m: str, p: np.ndarray, y: np.ndarray) -> float:
    if problem_type == MULTI_LABEL:
        if m == "accuracy":
            return float(np.mean(np.all(p == y, axis=1)))
        return _f1(p, y)
    if m == "accuracy":
        return accuracy(p, y)
    if m == "f1":
        if max(int(p.max()), int(y.max())) > 1:
            raise SparsecoreError("f1 is defined here for 2 classes only", "metrics",
                                  "use accuracy or matthews_correlation for more classes")
        return f1_binary(p, y)
    if m == "matthews_correlation":
        return matthews_corrcoef(p, y)
    if m == "pearson":
        return pearson(p, y)
    if m == "spearmanr":
        return spearman(p, y)
    return float(np.mean((p - y) ** 2))  # mse
