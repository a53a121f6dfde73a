"""Exact-k selection: prune exactly k units, ties broken by lowest index.

Contract (DESIGN principle 3): masks are built by *selecting indices*, never by
``score <= threshold``. NaN scores rank above +inf (they are pruned last), the
order of ``torch.sort``. For global selection over several tensors, ties break
by tensor order first, then by index within the tensor.
"""

from __future__ import annotations

import torch


def select_lowest(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Bool mask (same shape as 1-D ``scores``) with exactly ``k`` True: the k lowest.

    Cost: one stable sort, O(n log n) time, O(n) memory.
    """
    n = scores.numel()
    if not 0 <= k <= n:
        raise ValueError(f"k={k} outside [0, {n}]")
    chosen = torch.zeros(n, dtype=torch.bool, device=scores.device)
    if k:
        order = torch.sort(scores.reshape(-1), stable=True).indices
        chosen[order[:k]] = True
    return chosen


def select_lowest_global(scores: list[torch.Tensor], k: int) -> list[torch.Tensor]:
    """:func:`select_lowest` over the concatenation of flat ``scores`` (one k for all)."""
    flat = torch.cat([s.reshape(-1) for s in scores])
    chosen = select_lowest(flat, k)
    return list(torch.split(chosen, [s.numel() for s in scores]))
