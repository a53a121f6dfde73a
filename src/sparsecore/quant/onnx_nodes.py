"""ONNX nodes for fake-quant points, emitted while tracing (``torch.onnx.export(dynamo=False)``).

Each autograd Function computes the same values as the fake-quant forward and carries a
``symbolic`` that writes the standard operators (opset ≥ 13 for per-axis DequantizeLinear).
"""

from __future__ import annotations

import torch

from sparsecore.quant.primitives import dequantize


class _QuantizeDequantize(torch.autograd.Function):
    """Per-tensor activation: ``QuantizeLinear → [Clip] → DequantizeLinear``."""

    @staticmethod
    def forward(ctx, x, scale: float, zero_point: int, qmin: int, qmax: int):
        # no `+ 0`: torch's peephole pass folds it inside this op's traced body and then fails (torch 2.13)
        codes = torch.round(x / scale)
        if zero_point:
            return (torch.clamp(codes + zero_point, qmin, qmax) - zero_point) * scale
        return torch.clamp(codes, qmin, qmax) * scale

    @staticmethod
    def symbolic(g, x, scale: float, zero_point: int, qmin: int, qmax: int):
        storage = torch.int8 if qmin < 0 else torch.uint8
        s = g.op("Constant", value_t=torch.tensor(scale, dtype=torch.float32))
        z = g.op("Constant", value_t=torch.tensor(zero_point, dtype=storage))
        q = g.op("QuantizeLinear", x, s, z)
        info = torch.iinfo(storage)
        if (qmin, qmax) != (info.min, info.max):  # fewer bits or reduce_range: saturate to the narrower grid
            lo = g.op("Constant", value_t=torch.tensor(qmin, dtype=storage))
            hi = g.op("Constant", value_t=torch.tensor(qmax, dtype=storage))
            q = g.op("Clip", q, lo, hi)
        return g.op("DequantizeLinear", q, s, z)


class _DequantizeConstant(torch.autograd.Function):
    """Weight: ``DequantizeLinear(codes, scale, zero_point, axis)`` with the codes stored as a constant."""

    @staticmethod
    def forward(ctx, codes, scale, zero_point, axis: int):
        return dequantize(codes, scale, zero_point, axis if scale.dim() else None)

    @staticmethod
    def symbolic(g, codes, scale, zero_point, axis: int):
        if axis is None:
            return g.op("DequantizeLinear", codes, scale, zero_point)
        return g.op("DequantizeLinear", codes, scale, zero_point, axis_i=axis)


def quantize_dequantize(x: torch.Tensor, scale: float, zero_point: int, qmin: int, qmax: int) -> torch.Tensor:
    return _QuantizeDequantize.apply(x, scale, zero_point, qmin, qmax)


def dequantize_constant(codes: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor,
                        axis: int | None) -> torch.Tensor:
    return _DequantizeConstant.apply(codes, scale.float().contiguous(), zero_point.contiguous(),
                                     axis if scale.dim() else None)
