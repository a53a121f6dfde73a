"""Masks that keep pruned weights at exactly zero.

One owner (the session) attaches two optimizer hooks and always removes them:
a step *pre*-hook zeroes the gradients of pruned entries (so AdamW moments stay
zero there) and a step *post*-hook zeroes the pruned weights again (weight decay
and momentum cannot revive them). Weights are also zeroed the moment a mask is
set, so every forward pass sees exact zeros. Both hooks multiply by a float keep-mask (a
vectorised multiply, several times faster than a boolean fill over millions of weights); a
finite value at a pruned entry becomes exactly zero, a non-finite one (a diverged run) stays
non-finite.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn


class MaskSet:
    """``name → (parameter, pruned, keep)``, pruned a bool tensor of the parameter's shape and keep its float
    complement (1 where the weight lives, 0 where it is pruned: what the hooks multiply by)."""

    def __init__(self) -> None:
        self._masks: dict[str, tuple[nn.Parameter, torch.Tensor, torch.Tensor]] = {}
        self.version = 0  # counts set/release calls: "did an update change the masks?"

    def __contains__(self, name: str) -> bool:
        return name in self._masks

    def __len__(self) -> int:
        return len(self._masks)

    def names(self) -> list[str]:
        return list(self._masks)

    def pruned(self, name: str) -> torch.Tensor:
        return self._masks[name][1]

    @torch.no_grad()
    def set(self, name: str, param: nn.Parameter, pruned: torch.Tensor) -> None:
        if pruned.shape != param.shape or pruned.dtype != torch.bool:
            raise ValueError(f"mask for {name} must be bool of shape {tuple(param.shape)}")
        pruned = pruned.to(param.device)
        self._masks[name] = (param, pruned, (~pruned).to(param.dtype))
        self.version += 1
        param.masked_fill_(pruned, 0.0)

    def release(self, name: str) -> None:
        """Stop enforcing ``name``'s mask (its weights may grow back)."""
        if self._masks.pop(name, None) is not None:
            self.version += 1

    def sparsity(self) -> float:
        """Fraction of the masked parameters' entries that are pruned (0 with no masks)."""
        total = sum(p.numel() for p, _, _ in self._masks.values())
        return sum(int(m.sum()) for _, m, _ in self._masks.values()) / total if total else 0.0

    @torch.no_grad()
    def apply(self) -> None:
        for param, _, keep in self._masks.values():
            param.mul_(keep)

    @torch.no_grad()
    def mask_grads(self) -> None:
        for param, _, keep in self._masks.values():
            if param.grad is not None:
                param.grad.mul_(keep)

    @contextmanager
    def enforced(self, optimizer: torch.optim.Optimizer | None) -> Iterator[None]:
        """Attach the optimizer hooks for the duration of the block."""
        if optimizer is None:
            yield
            return
        pre = optimizer.register_step_pre_hook(lambda *_: self.mask_grads())
        post = optimizer.register_step_post_hook(lambda *_: self.apply())
        try:
            yield
        finally:
            pre.remove()
            post.remove()

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: pruned.cpu() for name, (_, pruned, _) in self._masks.items()}
