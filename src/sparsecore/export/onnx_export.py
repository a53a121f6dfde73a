"""Trace a module to ONNX with dynamic batch/sequence axes, readable by onnx 1.14 (IR ≤ 9).

Uses torch's TorchScript exporter (``dynamo=False``): at opset 14 it writes IR version 7,
which DeepSparse 1.8's onnx 1.14.1 reads. Pruned zeros survive: weights are stored as
initializers (MatMul weights transposed by constant folding, values unchanged).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

MAX_IR_VERSION = 9  # onnx 1.14.1 (DeepSparse 1.8) reads IR ≤ 9


def export_onnx(module: torch.nn.Module, sample: dict[str, torch.Tensor], path: str | Path,
                output_names: tuple[str, ...], dynamic_axes: dict, opset: int = 14) -> onnx.ModelProto:
    """Export ``module(**sample)`` to ``path``; ``sample`` keys become the graph's input names."""
    was_training = module.training
    module.eval()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer chatter about python-int shape math; validated after
            torch.onnx.export(module, tuple(sample.values()), str(path), input_names=list(sample),
                              output_names=list(output_names), dynamic_axes=dynamic_axes,
                              opset_version=opset, do_constant_folding=True, dynamo=False)
    finally:
        module.train(was_training)
    model = onnx.load(str(path))
    if model.ir_version > MAX_IR_VERSION:
        raise RuntimeError(f"exported IR version {model.ir_version} > {MAX_IR_VERSION}; lower --opset")
    return model


def initializer_sparsity(model: onnx.ModelProto, min_size: int = 2) -> list[dict]:
    """``[{name, shape, numel, zeros}]`` for every initializer of rank ≥ ``min_size``."""
    rows = []
    for init in model.graph.initializer:
        if len(init.dims) >= min_size:
            array = numpy_helper.to_array(init)
            rows.append({"name": init.name, "shape": list(array.shape), "numel": int(array.size),
                         "zeros": int(np.count_nonzero(array == 0))})
    return rows


def sparsity_preserved(weights: list[np.ndarray], model: onnx.ModelProto, quantized: bool) -> bool:
    """Every torch weight has a 2-D initializer with the same values, or their transpose.

    Quantized: an int8 initializer of that shape that is 0 wherever the weight is 0 (small non-zero
    weights may round to 0 as well, so the int8 zeros are a superset).
    """
    inits = [numpy_helper.to_array(i) for i in model.graph.initializer if len(i.dims) == 2]

    def same(a: np.ndarray, w: np.ndarray) -> bool:
        if a.shape != w.shape:
            return False
        if quantized:
            return a.dtype == np.int8 and not np.any(a[w == 0])
        return np.array_equal(a, w)

    return all(any(same(a, w) or same(a, w.T) for a in inits) for w in weights)
