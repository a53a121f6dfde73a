"""Affine quantization maths: pure functions on tensors, no modules, no state.

    q = clamp(round(x / scale) + zero_point, qmin, qmax)        # ONNX QuantizeLinear semantics
    x̂ = (q - zero_point) · scale                                 # DequantizeLinear

``round`` is half-to-even (torch.round, ONNX). Per-channel: ``scale``/``zero_point`` are 1-D
along ``axis``; per-tensor: 0-d. Symmetric quantization uses the signed range with zero_point 0,
so 0.0 → 0 → 0.0 exactly: pruned weights stay exactly zero under weight fake-quant.
"""

from __future__ import annotations

import torch

SCALE_EPS = float(torch.finfo(torch.float32).eps)  # smallest scale: an all-zero tensor still gets a valid one


def quant_range(bits: int, symmetric: bool, reduce_range: bool = False) -> tuple[int, int]:
    """Integer range: signed ``[-2^(b-1), 2^(b-1)-1]`` when symmetric, else unsigned ``[0, 2^b-1]``.

    ``reduce_range`` drops one bit (x86 VPMADDUBSW overflow guard, as torch's fbgemm activations do).
    """
    if not 2 <= bits <= 8:
        raise ValueError(f"bits must be 2..8, got {bits}")
    b = bits - 1 if reduce_range else bits
    return (-(2 ** (b - 1)), 2 ** (b - 1) - 1) if symmetric else (0, 2 ** b - 1)


def choose_qparams(min_val: torch.Tensor, max_val: torch.Tensor, qmin: int, qmax: int,
                   symmetric: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scale float32, zero_point int32)`` whose grid covers ``[min(min_val,0), max(max_val,0)]``.

    Symmetric: ``scale = max|x| / ((qmax-qmin)/2)``, zero_point 0 (torch's qint8 rule).
    Asymmetric: ``scale = (max-min)/(qmax-qmin)``, ``zero_point = qmin - round(min/scale)`` clamped.
    Shapes follow ``min_val`` (0-d per-tensor, (C,) per-channel).
    """
    lo = torch.clamp(min_val.float(), max=0.0)
    hi = torch.clamp(max_val.float(), min=0.0)
    if symmetric:
        scale = torch.maximum(-lo, hi) / ((qmax - qmin) / 2)
        scale = torch.clamp(scale, min=SCALE_EPS)
        return scale, torch.zeros_like(scale, dtype=torch.int32)
    scale = torch.clamp((hi - lo) / (qmax - qmin), min=SCALE_EPS)
    zero_point = torch.clamp(qmin - torch.round(lo / scale), qmin, qmax).to(torch.int32)
    return scale, zero_point


def _along(t: torch.Tensor, axis: int | None, ndim: int) -> torch.Tensor:
    """Reshape a per-channel parameter to broadcast along ``axis`` of an ``ndim`` tensor."""
    if axis is None or t.dim() == 0:
        return t
    shape = [1] * ndim
    shape[axis] = -1
    return t.reshape(shape)


def quantize(x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, qmin: int, qmax: int,
             axis: int | None = None) -> torch.Tensor:
    """Integer codes of ``x`` (returned as int32; every value lies in ``[qmin, qmax]``)."""
    s, z = _along(scale, axis, x.dim()), _along(zero_point, axis, x.dim())
    return torch.clamp(torch.round(x / s) + z, qmin, qmax).to(torch.int32)


def dequantize(q: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, axis: int | None = None) -> torch.Tensor:
    s, z = _along(scale, axis, q.dim()), _along(zero_point, axis, q.dim())
    return (q.to(torch.int32) - z).float() * s


class _FakeQuantize(torch.autograd.Function):
    """Quantize-dequantize with the straight-through estimator (Bengio et al. 2013, arXiv:1308.3432):
    the gradient passes unchanged where ``x`` fell inside the grid and is 0 where it was clamped."""

    @staticmethod
    def forward(ctx, x, scale, zero_point, qmin, qmax, axis):
        s, z = _along(scale, axis, x.dim()), _along(zero_point, axis, x.dim())
        codes = torch.round(x / s) + z
        ctx.save_for_backward((codes >= qmin) & (codes <= qmax))
        return (torch.clamp(codes, qmin, qmax) - z) * s

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        return grad * inside, None, None, None, None, None


def fake_quantize(x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, qmin: int, qmax: int,
                  axis: int | None = None) -> torch.Tensor:
    """``dequantize(quantize(x))`` in float, differentiable through the straight-through estimator."""
    return _FakeQuantize.apply(x, scale, zero_point.to(x.dtype), qmin, qmax, axis)


def fake_quantize_bias(bias: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Bias on the int32 accumulator grid ``scale = s_input · s_weight`` (per output channel or scalar):
    ``round(b / scale) · scale``, as integer kernels add it. Straight-through gradient; int32 range
    is never reached in practice (|b| / scale < 2³¹), so there is no clamp."""
    return bias + (torch.round(bias / scale) * scale - bias).detach()
