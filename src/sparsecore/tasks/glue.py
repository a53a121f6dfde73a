"""The GLUE task table: columns, label names, problem type, metrics, eval splits.

Column and label names follow the Hugging Face ``glue`` dataset, so a TSV exported
from it (header + label ids) loads as-is.
"""

from __future__ import annotations

from dataclasses import dataclass

from sparsecore.errors import SparsecoreError

SINGLE_LABEL = "single_label_classification"
REGRESSION = "regression"
MULTI_LABEL = "multi_label_classification"
PROBLEM_TYPES = (SINGLE_LABEL, REGRESSION, MULTI_LABEL)


@dataclass(frozen=True)
class TaskSpec:
    """One GLUE task. ``label_names`` is empty for regression (stsb)."""

    name: str
    text_columns: tuple[str, ...]
    label_names: tuple[str, ...]
    problem_type: str
    metric_names: tuple[str, ...]
    eval_splits: tuple[str, ...]


_VAL = ("validation",)
_ACC = ("accuracy",)
_ACC_F1 = ("accuracy", "f1", "combined_score")
_ENT = ("entailment", "not_entailment")

GLUE_TASKS: dict[str, TaskSpec] = {
    t.name: t
    for t in (
        TaskSpec("cola", ("sentence",), ("unacceptable", "acceptable"), SINGLE_LABEL,
                 ("matthews_correlation",), _VAL),
        TaskSpec("mnli", ("premise", "hypothesis"), ("entailment", "neutral", "contradiction"),
                 SINGLE_LABEL, _ACC, ("validation_matched", "validation_mismatched")),
        TaskSpec("mrpc", ("sentence1", "sentence2"), ("not_equivalent", "equivalent"),
                 SINGLE_LABEL, _ACC_F1, _VAL),
        TaskSpec("qnli", ("question", "sentence"), _ENT, SINGLE_LABEL, _ACC, _VAL),
        TaskSpec("qqp", ("question1", "question2"), ("not_duplicate", "duplicate"),
                 SINGLE_LABEL, _ACC_F1, _VAL),
        TaskSpec("rte", ("sentence1", "sentence2"), _ENT, SINGLE_LABEL, _ACC, _VAL),
        TaskSpec("sst2", ("sentence",), ("negative", "positive"), SINGLE_LABEL, _ACC, _VAL),
        TaskSpec("stsb", ("sentence1", "sentence2"), (), REGRESSION,
                 ("pearson", "spearmanr", "combined_score"), _VAL),
        TaskSpec("wnli", ("sentence1", "sentence2"), ("not_entailment", "entailment"),
                 SINGLE_LABEL, _ACC, _VAL),
    )
}


def get_task(name: str) -> TaskSpec:
    """The spec of GLUE task ``name`` (case-insensitive); SparsecoreError if unknown."""
    key = str(name).strip().lower()
    if key not in GLUE_TASKS:
        raise SparsecoreError(
            f"unknown GLUE task {name!r}",
            "task",
            f"use one of: {', '.join(sorted(GLUE_TASKS))}; or give train/validation files for a custom dataset",
        )
    return GLUE_TASKS[key]
