"""Movement scores (Sanh, Wolf & Rush 2020, arXiv:2005.07683, §4): how far training pushes each weight away from
zero, accumulated over optimizer steps:

    S_ij = − Σ_t (∂L/∂W_ij)^(t) · W_ij^(t)

A weight whose gradient points it towards zero (w·g > 0) loses score; the lowest scores are pruned. Pure
functions: the modifier owns the accumulator and the optimizer hook.
"""

from __future__ import annotations

import torch


def movement_increment(weight: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """One step's contribution −w·∂L/∂w (float32, the weight's shape)."""
    return -(weight.detach().float() * grad.detach().float())


@torch.no_grad()
def accumulate(scores: torch.Tensor, weight: torch.Tensor, grad: torch.Tensor | None) -> bool:
    """Add this step's increment into ``scores`` in place; False (nothing added) without a finite gradient."""
    if grad is None or not bool(torch.isfinite(grad).all()):
        return False
    scores.add_(movement_increment(weight, grad).to(scores.device))
    return True
