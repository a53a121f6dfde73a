"""ONNX export, self-validation and the deployment folder (torch + onnx + onnxruntime; no transformers)."""

from sparsecore.export.deployment import DEPLOYMENT, atomic_folder
from sparsecore.export.onnx_export import export_onnx, initializer_sparsity
from sparsecore.export.validate import QUANTIZED, Tolerance, validate_onnx

__all__ = ["DEPLOYMENT", "QUANTIZED", "Tolerance", "atomic_folder", "export_onnx", "initializer_sparsity", "validate_onnx"]
