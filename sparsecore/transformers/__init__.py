"""The workflows as Python calls, and SparseML-compatible entry points.

``train`` / ``oneshot`` / ``export`` / ``sensitivity`` take the CLI flags as keyword arguments and return a
result object (:class:`TrainResult`, :class:`ExportResult`, :class:`SensitivityRun`);
``python -m sparsecore.transformers.text_classification``, ``python -m sparsecore.transformers.export_onnx`` and
``python -m sparsecore.cli.sensitivity`` are the same calls behind an argv parser.
"""

from sparsecore.transformers.exporting import ExportResult, export
from sparsecore.transformers.sensitivity import SensitivityRun, sensitivity
from sparsecore.transformers.training import TrainResult, oneshot, train

__all__ = ["ExportResult", "SensitivityRun", "TrainResult", "export", "oneshot", "sensitivity", "train"]
