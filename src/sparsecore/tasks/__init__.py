"""Tasks: GLUE specs, data files, datasets and metrics."""

from sparsecore.tasks.dataset import (
    GLUE_DIR_ENV,
    DataBundle,
    Split,
    default_glue_dir,
    load_data,
    sample_glue_dir,
)
from sparsecore.tasks.files import ALLOWED_EXTENSIONS, read_table
from sparsecore.tasks.glue import (
    GLUE_TASKS,
    MULTI_LABEL,
    PROBLEM_TYPES,
    REGRESSION,
    SINGLE_LABEL,
    TaskSpec,
    get_task,
)
from sparsecore.tasks.metrics import (
    accuracy,
    compute_metrics,
    f1_binary,
    matthews_corrcoef,
    metric_names_for,
    pearson,
    rankdata,
    spearman,
)

__all__ = [
    "ALLOWED_EXTENSIONS", "GLUE_DIR_ENV", "GLUE_TASKS", "MULTI_LABEL", "PROBLEM_TYPES", "REGRESSION",
    "SINGLE_LABEL", "DataBundle", "Split", "TaskSpec", "accuracy", "compute_metrics", "default_glue_dir",
    "f1_binary", "get_task", "load_data", "matthews_corrcoef", "metric_names_for", "pearson", "rankdata",
    "read_table", "sample_glue_dir", "spearman",
]
