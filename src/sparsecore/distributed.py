"""What the session needs of ``torch.distributed`` (DDP under ``torchrun``; gloo on CPU).

Every rank runs the same modifiers on the same weights (DDP keeps them equal), so every rank computes the
same masks by itself; nothing is broadcast. Two places need the ranks to talk:

* **OBS gradients** (:func:`all_rank_gradients`): the Fisher estimate must see the gradients of every rank.
  Rank ``r`` computes global samples ``r, r+W, r+2W, …``; each round all-gathers the targeted gradients and
  yields them in global order, so every rank streams the same sequence a 1-process run would.
* **The check** (:func:`agreed_checksum`): after each mask update every rank hashes its masks and the hashes
  are all-gathered; a rank that differs is an error, never a silently different model.

Without an initialized process group (or with one rank) every function here is a no-op.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
import torch.distributed as dist

from sparsecore.errors import SparsecoreError

RANKS_FILE = "sparsecore_ranks.json"  # every rank's masks checksum after each mask update


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def write_rank_checks(folder: Path, checks: list[dict]) -> Path | None:
    """With several ranks: write ``checks`` (each mask update's step and every rank's checksum) to
    ``folder / RANKS_FILE`` and return its path; one process: nothing (None)."""
    if world_size() == 1:
        return None
    path = Path(folder) / RANKS_FILE
    path.write_text(json.dumps({"world_size": world_size(), "mask_checks": checks}, indent=1))
    return path


def own_samples(count: int) -> range:
    """The global sample indices this rank computes: ``rank, rank + W, …`` below ``count``."""
    return range(rank(), count, world_size())


def masks_checksum(pruned: dict[str, torch.Tensor]) -> str:
    """sha256 over the sorted mask names and their bits (first 16 hex digits)."""
    digest = hashlib.sha256()
    for name in sorted(pruned):
        digest.update(name.encode())
        digest.update(pruned[name].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def agreed_checksum(pruned: dict[str, torch.Tensor], step: int) -> list[str]:
    """Every rank's masks checksum (rank order); raises when the ranks hold different masks."""
    mine = masks_checksum(pruned)
    if world_size() == 1:
        return [mine]
    sums: list = [None] * world_size()
    dist.all_gather_object(sums, mine)
    if len(set(sums)) > 1:
        raise SparsecoreError(f"ranks hold different masks after the update at step {step} ({', '.join(sums)})",
                              "torch.distributed", "the ranks trained different weights: launch every rank with "
                              "the same model, data, seed and recipe (torchrun does)")
    return sums


def all_rank_gradients(local: Callable[[int, int | None, str], Iterable[None]], count: int, batch_size: int | None,
                       desc: str, params: list[tuple[str, torch.nn.Parameter]]) -> Iterable[None]:
    """Yield ``count`` times with ``.grad`` of ``params`` holding global sample 0, 1, …, count-1.

    ``local(count, batch_size, desc)`` yields once per sample of this rank's share (:func:`own_samples`) of
    the ``count`` global samples.
    Memory: one gathered copy of the targeted gradients per rank, W·d floats.
    """
    size = world_size()
    mine = len(own_samples(count))
    samples = iter(local(count, batch_size, desc))
    rounds = -(-count // size)
    try:
        for round_index in range(rounds):
            if round_index < mine:
                next(samples)
                flat = torch.cat([p.grad.detach().reshape(-1).float().cpu() for _, p in params])
            else:  # this rank has no sample in the last, partial round
                flat = torch.zeros(sum(p.numel() for _, p in params))
            gathered = [torch.empty_like(flat) for _ in range(size)]
            dist.all_gather(gathered, flat)
            for source in range(size):
                if round_index * size + source >= count:
                    break
                _set_grads(params, gathered[source])
                yield
            del gathered
    finally:  # the local sampler's clean-up (zero_grad, train mode) runs now
        close = getattr(samples, "close", None)
        if close is not None:
            close()


@torch.no_grad()
def _set_grads(params: list[tuple[str, torch.nn.Parameter]], flat: torch.Tensor) -> None:
    offset = 0
    for _, param in params:
        n = param.numel()
        values = flat[offset: offset + n].reshape(param.shape).to(param.device, param.dtype)
        if param.grad is None:
            param.grad = values.clone()
        else:
            param.grad.copy_(values)
        offset += n
