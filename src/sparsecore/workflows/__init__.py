"""The workflows as Python calls: what the CLIs run.

``train`` / ``oneshot`` / ``export`` / ``sensitivity`` / ``prune_upstream`` take the CLI flags as keyword arguments
and return a result object (:class:`TrainResult`, :class:`ExportResult`, :class:`SensitivityRun`,
:class:`UpstreamResult`); ``python -m sparsecore.transformers.text_classification``,
``python -m sparsecore.transformers.export_onnx``, ``python -m sparsecore.cli.sensitivity`` and
``python -m sparsecore.transformers.masked_language_modeling`` are the same calls behind an argv parser.
"""

from sparsecore.workflows.exporting import ExportResult, export
from sparsecore.workflows.sensitivity import SensitivityRun, sensitivity
from sparsecore.workflows.training import TrainResult, oneshot, train
from sparsecore.workflows.upstream import UpstreamResult, prune_upstream

__all__ = ["ExportResult", "SensitivityRun", "TrainResult", "UpstreamResult", "export", "oneshot", "prune_upstream",
           "sensitivity", "train"]
