"""The workflows as Python calls: what the CLIs run.

``train`` / ``oneshot`` / ``export`` / ``sensitivity`` take the CLI flags as keyword arguments and return a
result object (:class:`TrainResult`, :class:`ExportResult`, :class:`SensitivityRun`);
``python -m sparsecore.transformers.text_classification``, ``python -m sparsecore.transformers.export_onnx`` and
``python -m sparsecore.cli.sensitivity`` are the same calls behind an argv parser.
"""

from sparsecore.workflows.exporting import ExportResult, export
from sparsecore.workflows.sensitivity import SensitivityRun, sensitivity
from sparsecore.workflows.training import TrainResult, oneshot, train

__all__ = ["ExportResult", "SensitivityRun", "TrainResult", "export", "oneshot", "sensitivity", "train"]
