"""Exact-k selection for the engine: torch tensors in, bool masks out (one boundary to the kernels).

Contract: prune exactly k units, ties broken by lowest index — for several
tensors by tensor order, then index; NaN scores rank above +inf (selected last); -0.0 equals 0.0.
The work is done by the Numba radix-select kernel :mod:`sparsecore.kernels.select` (O(n), no sort,
no concatenation of the tensors).
"""

from __future__ import annotations

import numpy as np
import torch


def _as_numpy(scores: torch.Tensor) -> np.ndarray:
    return scores.detach().to(device="cpu", dtype=torch.float32).contiguous().reshape(-1).numpy()


def select_lowest(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Flat bool mask with exactly ``k`` True: the ``k`` lowest scores."""
    from sparsecore.kernels import lowest_k_mask  # lazy: the deploy path (e.g. in DeepSparse's env) never needs Numba

    return torch.from_numpy(lowest_k_mask(_as_numpy(scores), int(k))).to(scores.device)


def select_lowest_global(scores: list[torch.Tensor], k: int) -> list[torch.Tensor]:
    """:func:`select_lowest` over all ``scores`` together (one k for all), one flat mask per tensor."""
    from sparsecore.kernels import lowest_k_masks

    masks = lowest_k_masks([_as_numpy(s) for s in scores], int(k))
    return [torch.from_numpy(m).to(s.device) for m, s in zip(masks, scores)]
