"""ONNX export, self-validation and the deployment folder (torch + onnx + onnxruntime; no transformers)."""

from sparsecore.export.deployment import atomic_folder
from sparsecore.export.onnx_export import export_onnx, initializer_sparsity, sparsity_preserved
from sparsecore.export.validate import QUANTIZED, Tolerance, validate_onnx

__all__ = ["QUANTIZED", "Tolerance", "atomic_folder", "export_onnx", "initializer_sparsity", "sparsity_preserved",
           "validate_onnx"]
