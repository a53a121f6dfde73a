"""Gradual sparsity schedules (pure functions).

Zhu & Gupta 2017 (arXiv:1710.01878) cubic schedule:
    s(t) = s_f + (s_i - s_f) · (1 - x)^3,   x = (t - t_0) / (t_end - t_0) ∈ [0, 1]
which is ``s_i + (s_f - s_i) · f(x)`` with f(x) = 1 - (1 - x)^3. "linear" uses
f(x) = x and "inverse_cubic" f(x) = 1 - (1 - x)^(1/3) (slow start, fast finish),
as in SparseML.
"""

from __future__ import annotations

import math

INTERPOLATIONS = ("linear", "cubic", "inverse_cubic")


def interpolate(x: float, inter_func: str) -> float:
    """Map progress ``x`` ∈ [0, 1] to schedule progress ∈ [0, 1]."""
    x = min(max(x, 0.0), 1.0)
    if inter_func == "linear":
        return x
    if inter_func == "cubic":
        return 1.0 - (1.0 - x) ** 3
    if inter_func == "inverse_cubic":
        return 1.0 - (1.0 - x) ** (1.0 / 3.0)
    raise ValueError(f"unknown inter_func {inter_func!r}; allowed: {INTERPOLATIONS}")


def sparsity_at(epoch: float, start: float, end: float, init: float, final: float, inter_func: str) -> float:
    """Target sparsity at ``epoch`` (init before ``start``, final from ``end`` on)."""
    if epoch < start:
        return init
    if epoch >= end or end <= start:
        return final
    return init + (final - init) * interpolate((epoch - start) / (end - start), inter_func)


def exact_k(sparsity: float, n: int) -> int:
    """Number of elements to prune: round-half-up of ``sparsity · n`` (Python's round is banker's)."""
    return min(n, max(0, math.floor(sparsity * n + 0.5)))


def due_update(epoch: float, start: float, end: float, frequency: float, last_index: int | None,
               eps: float = 1e-9) -> tuple[bool, int, bool]:
    """Is a pruning update due at ``epoch``? Updates sit on the grid start + i·frequency, plus end.

    Returns ``(due, grid index, at_end)``; a fixed grid (not "last update + frequency") never drifts
    when epochs advance in steps of 1/steps_per_epoch.
    """
    if epoch + eps < start:
        return False, -1, False
    at_end = epoch + eps >= end
    index = math.floor((epoch - start) / frequency + eps)
    return at_end or last_index is None or index > last_index, index, at_end
