"""Range observers: running min/max of what flows through a quantization point.

``MinMaxObserver`` keeps the extremes seen; ``MovingAverageMinMaxObserver`` keeps an
exponential moving average ``m ← m + c·(new − m)`` (c = 0.01, torch's default; the first
batch initialises it). ``axis`` gives per-channel ranges (one per index along that axis).
A frozen observer ignores new data (``disable_quantization_observer_epoch``).
"""

from __future__ import annotations

import torch
from torch import nn


class MinMaxObserver(nn.Module):
    def __init__(self, axis: int | None = None) -> None:
        super().__init__()
        self.axis = axis
        self.frozen = False
        self.register_buffer("min_val", torch.tensor([]))
        self.register_buffer("max_val", torch.tensor([]))

    @property
    def ready(self) -> bool:
        return self.min_val.numel() > 0

    def _extremes(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.detach().float()
        if self.axis is None:
            return x.min(), x.max()
        flat = x.movedim(self.axis, 0).reshape(x.shape[self.axis], -1)  # (C, rest)
        return flat.min(dim=1).values, flat.max(dim=1).values

    def _merge(self, lo: torch.Tensor, hi: torch.Tensor) -> None:
        self.min_val = torch.minimum(self.min_val, lo)
        self.max_val = torch.maximum(self.max_val, hi)

    def forward(self, x: torch.Tensor) -> None:
        if self.frozen or x.numel() == 0:
            return
        lo, hi = self._extremes(x)
        if not self.ready or self.min_val.shape != lo.shape:
            self.min_val, self.max_val = lo, hi
        else:
            self._merge(lo, hi)

    def reset_to(self, x: torch.Tensor) -> None:
        """Range of ``x`` alone (weights: their current values), unless frozen."""
        if not self.frozen:
            self.min_val, self.max_val = self._extremes(x)


class MovingAverageMinMaxObserver(MinMaxObserver):
    def __init__(self, axis: int | None = None, averaging_constant: float = 0.01) -> None:
        super().__init__(axis)
        if not 0.0 < averaging_constant <= 1.0:
            raise ValueError(f"averaging_constant must be in (0, 1], got {averaging_constant}")
        self.averaging_constant = averaging_constant

    def _merge(self, lo: torch.Tensor, hi: torch.Tensor) -> None:
        c = self.averaging_constant
        self.min_val = self.min_val + c * (lo - self.min_val)
        self.max_val = self.max_val + c * (hi - self.max_val)


OBSERVERS = {"minmax": MinMaxObserver, "moving_average_minmax": MovingAverageMinMaxObserver}
