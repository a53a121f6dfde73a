"""What to quantize and how: typed, validated on construction.

Defaults (SparseML's, and what DeepSparse's int8 kernels expect): int8 weights,
symmetric, one scale per output channel; int8 activations, asymmetric, one scale per tensor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sparsecore.errors import SparsecoreError
from sparsecore.quant.primitives import quant_range

STRATEGIES = ("tensor", "channel")


@dataclass(frozen=True)
class QuantArgs:
    num_bits: int = 8
    symmetric: bool = True
    strategy: Literal["tensor", "channel"] = "tensor"
    reduce_range: bool = False
    where: str = "scheme"  # recipe path, for error messages only

    def __post_init__(self) -> None:
        if isinstance(self.num_bits, bool) or not isinstance(self.num_bits, int) or not 2 <= self.num_bits <= 8:
            raise SparsecoreError(f"{self.where}.num_bits is {self.num_bits!r}", "recipe",
                                  "use an integer from 2 to 8 (8 for DeepSparse/ONNX Runtime int8 kernels)")
        if self.strategy not in STRATEGIES:
            raise SparsecoreError(f"{self.where}.strategy is {self.strategy!r}", "recipe",
                                  f"use one of: {', '.join(STRATEGIES)}")
        if not isinstance(self.symmetric, bool):
            raise SparsecoreError(f"{self.where}.symmetric is {self.symmetric!r}", "recipe", "use true or false")

    @property
    def qrange(self) -> tuple[int, int]:
        return quant_range(self.num_bits, self.symmetric, self.reduce_range)

    def to_dict(self) -> dict:
        return {"num_bits": self.num_bits, "symmetric": self.symmetric, "strategy": self.strategy,
                "reduce_range": self.reduce_range}

    @classmethod
    def from_dict(cls, d: dict, where: str) -> "QuantArgs":
        allowed = ("num_bits", "symmetric", "strategy", "reduce_range")
        unknown = [k for k in d if k not in allowed]
        if unknown:
            raise SparsecoreError(f"unknown key {unknown[0]!r} in {where}", "recipe", f"allowed: {', '.join(allowed)}")
        return cls(**d, where=where)


DEFAULT_WEIGHTS = QuantArgs(num_bits=8, symmetric=True, strategy="channel", where="scheme.weights")
DEFAULT_ACTIVATIONS = QuantArgs(num_bits=8, symmetric=False, strategy="tensor", where="scheme.input_activations")
