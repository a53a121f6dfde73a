"""Mask structures: unstructured, ``[r, c]`` blocks and N:M.

A structure turns element scores (shape of the weight) into *unit* scores and
unit masks back into element masks. Units are elements (unstructured), blocks of
``r × c`` over the last two dims (partial edge blocks allowed, scored by their
mean over real elements), or single elements restricted to N:M candidates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from sparsecore.errors import SparsecoreError


NM_SLACK = 1e-3  # a target within this of 1 - N/M means "the full N:M pattern" (so 0.667 works for 1:3)


@dataclass(frozen=True)
class Structure:
    kind: str  # "unstructured" | "block" | "nm"
    rows: int = 1
    cols: int = 1
    n: int = 0  # N:M: keep n of every m consecutive inputs
    m: int = 0

    @property
    def max_sparsity(self) -> float:
        return 1.0 - self.n / self.m if self.kind == "nm" else 1.0

    def describe(self) -> str:
        if self.kind == "block":
            return f"[{self.rows}, {self.cols}]"
        return f"{self.n}:{self.m}" if self.kind == "nm" else "unstructured"


def parse_mask_type(value: object, where: str) -> Structure:
    """``unstructured`` | ``block4`` / ``block`` (1×4) | ``[r, c]`` | ``"N:M"``."""
    if value in ("unstructured", [1, 1], (1, 1)):
        return Structure("unstructured")
    if value in ("block4", "block"):
        return Structure("block", 1, 4)
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) and v > 0 for v in value):
        return Structure("block", int(value[0]), int(value[1]))
    if isinstance(value, str) and (m := re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", value)):
        n, mm = int(m.group(1)), int(m.group(2))
        if 0 < n < mm:
            return Structure("nm", n=n, m=mm)
    raise SparsecoreError(f"mask_type {value!r} is not understood", where,
                          'use unstructured, block4, [rows, cols] with positive ints, or "N:M" with 0 < N < M')


def check_shape(structure: Structure, shape: torch.Size, name: str) -> None:
    if structure.kind == "nm" and (len(shape) < 2 or shape[-1] % structure.m):
        raise SparsecoreError(f"N:M mask {structure.describe()} needs the input dim divisible by {structure.m}",
                              f"{name} has shape {tuple(shape)}", "choose M dividing the input size or another mask_type")
    if structure.kind == "block" and len(shape) < 2:
        raise SparsecoreError(f"block mask {structure.describe()} needs a 2-D or larger weight",
                              f"{name} has shape {tuple(shape)}", "select only matrix weights for block pruning")


def _as_matrix(t: torch.Tensor) -> torch.Tensor:
    """(out, in, *k) → (out, in·k) so blocks and N:M groups run along inputs."""
    return t.reshape(t.shape[0], -1)


def unit_scores(scores: torch.Tensor, structure: Structure) -> torch.Tensor:
    """Element scores → flat unit scores (blocks: mean over the block's real elements).

    For N:M, non-candidates (the N best of each group of M) get +inf so they are
    never chosen. Memory: O(numel) floats.
    """
    if structure.kind == "unstructured":
        return scores.reshape(-1)
    mat = _as_matrix(scores)
    if structure.kind == "block":
        r, c = structure.rows, structure.cols
        pad = (0, (-mat.shape[1]) % c, 0, (-mat.shape[0]) % r)
        sums = F.avg_pool2d(F.pad(mat, pad)[None, None], (r, c), stride=(r, c), divisor_override=1)[0, 0]
        counts = F.avg_pool2d(F.pad(torch.ones_like(mat), pad)[None, None], (r, c), stride=(r, c),
                              divisor_override=1)[0, 0]
        return (sums / counts).reshape(-1)
    groups = mat.reshape(mat.shape[0], -1, structure.m)  # (out, in/m, m)
    # rank inside each group; stable so ties go to the lower index first
    ranks = torch.argsort(torch.argsort(groups, dim=-1, stable=True), dim=-1, stable=True)
    candidate = ranks < (structure.m - structure.n)
    return torch.where(candidate, groups, torch.full_like(groups, float("inf"))).reshape(-1)


def expand_units(unit_mask: torch.Tensor, shape: torch.Size, structure: Structure) -> torch.Tensor:
    """Flat unit mask → element mask of ``shape``."""
    if structure.kind != "block":
        return unit_mask.reshape(shape)
    rows, cols = shape[0], int(torch.Size(shape[1:]).numel())
    r, c = structure.rows, structure.cols
    grid = unit_mask.reshape(-(-rows // r), -(-cols // c))
    full = grid.repeat_interleave(r, 0).repeat_interleave(c, 1)[:rows, :cols]
    return full.reshape(shape)


def element_units_pruned(pruned: torch.Tensor, structure: Structure) -> torch.Tensor:
    """Element mask → flat mask of units that are entirely pruned (for monotonic GMP)."""
    if structure.kind != "block":
        return pruned.reshape(-1)
    mat = _as_matrix(pruned.float())
    unit = unit_scores(mat, structure)  # mean of pruned flags
    return unit >= 1.0
