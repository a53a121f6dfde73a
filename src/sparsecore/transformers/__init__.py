"""SparseML-compatible names: the ``python -m sparsecore.transformers.*`` entry points and the workflow calls.

SparseML users typed ``python -m sparseml.transformers.text_classification`` and
``from sparseml.transformers import train, oneshot``; the same forms work here with one word changed. The
workflows themselves live in :mod:`sparsecore.workflows` (this package only names them), so a traceback
never shows a ``transformers`` path that is not Hugging Face's.
"""

from sparsecore.workflows import ExportResult, SensitivityRun, TrainResult, export, oneshot, sensitivity, train

__all__ = ["ExportResult", "SensitivityRun", "TrainResult", "export", "oneshot", "sensitivity", "train"]
