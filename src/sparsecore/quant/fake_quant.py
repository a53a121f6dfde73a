"""Fake-quant points: an observer, a range, and quantize-dequantize in the forward pass.

Training/eval: :func:`fake_quantize` (straight-through gradient). ONNX export
(``torch.onnx.is_in_onnx_export()``): activations become ``QuantizeLinear → DequantizeLinear``
(plus an integer ``Clip`` when the range is narrower than the 8-bit storage type), weights become
``DequantizeLinear`` of an int8 constant — the QDQ form that :mod:`sparsecore.export.qdq_to_integer`
turns into integer kernels.
"""

from __future__ import annotations

import torch
from torch import nn

from sparsecore.quant.lockstep import active
from sparsecore.quant.observers import OBSERVERS
from sparsecore.quant.primitives import choose_qparams, fake_quantize, quantize
from sparsecore.quant.scheme import QuantArgs


class FakeQuantize(nn.Module):
    """One quantization point. ``axis`` is the channel axis used when ``args.strategy == 'channel'``.

    Weights (``is_weight``) take their range from their current values at every observed forward
    (min/max, no averaging); activations use the chosen running observer.
    """

    def __init__(self, args: QuantArgs, *, axis: int = 0, is_weight: bool = False,
                 observer: str = "moving_average_minmax") -> None:
        super().__init__()
        self.args = args
        self.qmin, self.qmax = args.qrange
        self.axis = axis if args.strategy == "channel" else None
        self.is_weight = is_weight
        self.observer = OBSERVERS["minmax" if is_weight else observer](self.axis)
        self.export_codes: torch.Tensor | None = None  # weights, while QuantState.exporting() is active
        self.export_bias: torch.Tensor | None = None  # the owning Linear's bias on its int32 grid, ditto

    def observe(self, x: torch.Tensor) -> None:
        if self.is_weight:
            self.observer.reset_to(x)
        else:
            self.observer(x)

    def qparams(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(scale, zero_point)`` from the observed range."""
        return choose_qparams(self.observer.min_val, self.observer.max_val, self.qmin, self.qmax, self.args.symmetric)

    def forward(self, x: torch.Tensor, observe: bool, transpose: bool = False) -> torch.Tensor:
        """Fake-quantized ``x``; ``observe`` updates an activation's running range first."""
        if (observe or self.is_weight or not self.observer.ready) and not self.observer.frozen:
            self.observe(x)
        elif not self.observer.ready:  # frozen before ever seeing data: take this batch's range once
            self.observer.frozen = False
            self.observe(x)
            self.observer.frozen = True
        scale, zero_point = self.qparams()
        if torch.onnx.is_in_onnx_export():
            return self.export_node(x, scale, zero_point, transpose)
        if not self.is_weight and (lockstep := active()) is not None:
            return lockstep.take(x, scale, zero_point, self.qmin, self.qmax)
        return fake_quantize(x, scale, zero_point, self.qmin, self.qmax, self.axis)

    def export_node(self, x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor,
                    transpose: bool = False) -> torch.Tensor:
        """The ONNX nodes of this point; ``transpose`` (2-D weights) stores the codes as ``W.T``."""
        from sparsecore.quant.onnx_nodes import dequantize_constant, quantize_dequantize

        if self.is_weight:
            # codes computed outside the trace: the graph holds them as an int8 constant, not as ops on W
            codes, axis = self.export_codes, self.axis
            if codes is None:
                raise RuntimeError("call QuantState.exporting() around the ONNX export of a quantized model")
            if transpose:
                codes, axis = codes.t().contiguous(), None if axis is None else 1 - axis
            return dequantize_constant(codes, scale, zero_point.to(self.storage), axis)
        if self.axis is not None:
            raise ValueError("per-channel activation quantization cannot be exported; use strategy: tensor")
        return quantize_dequantize(x, float(scale), int(zero_point), self.qmin, self.qmax)

    def codes(self, w: torch.Tensor) -> torch.Tensor:
        """Integer codes of weight ``w`` under the current range, in the 8-bit storage type."""
        scale, zero_point = self.qparams()
        return quantize(w.detach(), scale, zero_point, self.qmin, self.qmax, self.axis).to(self.storage)

    @property
    def storage(self) -> torch.dtype:
        """8-bit container of the codes: int8 for signed (symmetric) ranges, uint8 otherwise."""
        return torch.int8 if self.qmin < 0 else torch.uint8
