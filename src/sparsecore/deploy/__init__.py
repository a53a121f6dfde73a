"""Deployment: ``Pipeline`` over an exported folder, on ONNX Runtime, DeepSparse or the sparsecore engine
(no transformers)."""

from sparsecore.deploy.pipeline import Pipeline, TextClassificationPipeline

__all__ = ["Pipeline", "TextClassificationPipeline"]
