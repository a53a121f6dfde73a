"""Which split evaluates: the validation split, a held-out part of train (``validation_ratio``), or test.

SparseML's ``--validation_ratio r``: a fraction r of train becomes the validation split, stratified by class
(each class keeps its share, rounded per class), seeded with a fixed seed so every run with the same ratio
holds out the same rows; regression and multi-label data are split at random with the same seed.
``--eval_on_test``: the (labeled) test split evaluates instead of the validation split.
"""

from __future__ import annotations

import numpy as np

from sparsecore.errors import SparsecoreError
from sparsecore.tasks.glue import SINGLE_LABEL

SPLIT_SEED = 42  # as SparseML: the held-out rows do not change with --seed


def held_out(labels: np.ndarray | None, n: int, ratio: float, stratify: bool, seed: int = SPLIT_SEED
             ) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows), each sorted: ``round(ratio · count)`` rows of every class (at least one
    when the class has two or more rows), or ``round(ratio · n)`` rows at random when not stratified."""
    rng = np.random.default_rng(seed)
    if stratify and labels is not None:
        groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    else:
        groups = [np.arange(n)]
    picked = []
    for rows in groups:
        k = int(round(ratio * len(rows)))
        k = min(max(k, 1 if len(rows) > 1 else 0), len(rows) - 1)
        picked.append(rng.choice(rows, size=k, replace=False))
    val = np.sort(np.concatenate(picked)) if picked else np.empty(0, np.int64)
    keep = np.ones(n, dtype=bool)
    keep[val] = False
    return np.flatnonzero(keep), val


def choose_eval(train, evals: dict, test, problem_type: str, validation_ratio: float | None, eval_on_test: bool):
    """(train, evals) after ``validation_ratio`` / ``eval_on_test``; conflicts are one-line errors."""
    if validation_ratio is not None:
        if not 0 < validation_ratio < 1:
            raise SparsecoreError(f"--validation_ratio is {validation_ratio:g}", "--validation_ratio",
                                  "give the fraction of train to hold out, between 0 and 1 (e.g. 0.1)")
        if eval_on_test:
            raise SparsecoreError("--validation_ratio and --eval_on_test both choose the evaluation split",
                                  "--eval_on_test", "drop one of them")
        if evals:
            raise SparsecoreError("--validation_ratio given but the data has a validation split",
                                  "--validation_ratio", "drop --validation_ratio, or drop the validation file")
        if train is None:
            raise SparsecoreError("--validation_ratio needs training data to split", "--validation_ratio",
                                  "pass --train_file (or a dataset with a train split)")
        keep, val = held_out(train.labels, len(train), validation_ratio, problem_type == SINGLE_LABEL)
        if len(keep) == 0 or len(val) == 0:
            raise SparsecoreError(f"--validation_ratio {validation_ratio:g} of {len(train)} training rows leaves "
                                  "one side empty", "--validation_ratio", "use more rows or another ratio")
        return train.select(keep), {"validation": train.select(val)}
    if eval_on_test:
        if test is None:
            raise SparsecoreError("--eval_on_test needs a test split", "--eval_on_test",
                                  "pass --test_file (with labels), or a dataset with a test split")
        if test.labels is None:
            raise SparsecoreError("--eval_on_test: the test split has no labels", "--eval_on_test",
                                  "give a test file with a label column, or drop --eval_on_test")
        return train, {"test": test}
    return train, evals
