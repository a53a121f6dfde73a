"""Bookkeeping shared by the gradual pruning modifiers (GMP and OBS)."""

from __future__ import annotations

from sparsecore.modifiers.base import EPOCH_EPS
from sparsecore.pruning.schedule import due_update


def due_step(modifier, epoch: float) -> tuple[int, bool] | None:
    """``(grid index, at_end)`` when ``modifier`` should prune at ``epoch``; None when done or not due."""
    if modifier.rt.done:
        return None
    due, index, at_end = due_update(epoch, modifier.start_epoch, modifier.end_epoch, modifier.update_frequency,
                                    modifier.rt.last_update, EPOCH_EPS)
    return (index, at_end) if due else None


def close_step(modifier, state, index: int, at_end: bool, names: list[str]) -> None:
    """Record the grid index just pruned; at end_epoch mark done and, unless leave_enabled, release masks."""
    modifier.rt.last_update = index
    if at_end:
        modifier.rt.done = True
        if not modifier.leave_enabled:
            for name in names:
                state.masks.release(name)


def warn_if_unfinished(modifier, state) -> None:
    if not modifier.rt.done:
        state.warn(f"!{modifier.tag} stopped at epoch {state.epoch:.3g}, before its end_epoch "
                   f"{modifier.end_epoch:g}: final sparsity not reached — train longer or lower end_epoch")
