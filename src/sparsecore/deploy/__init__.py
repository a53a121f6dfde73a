"""Deployment: ``Pipeline`` over an exported folder, on ONNX Runtime or DeepSparse (no transformers)."""

from sparsecore.deploy.pipeline import Pipeline, TextClassificationPipeline

__all__ = ["Pipeline", "TextClassificationPipeline"]
