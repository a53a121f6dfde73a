"""Where a gradual pruning modifier (GMP, OBS) is on its update grid: an object each modifier owns in its
run-time state, so no code outside the modifier touches that state."""

from __future__ import annotations

from dataclasses import dataclass

from sparsecore.modifiers.base import EPOCH_EPS, SessionState
from sparsecore.pruning.schedule import due_update


@dataclass
class PruningProgress:
    """The last grid index pruned at (None: not started) and whether end_epoch was reached."""

    start_epoch: float
    end_epoch: float
    update_frequency: float
    last_update: int | None = None
    done: bool = False

    def due(self, epoch: float) -> tuple[int, bool] | None:
        """``(grid index, at_end)`` when pruning is due at ``epoch``; None when done or not due."""
        if self.done:
            return None
        due, index, at_end = due_update(epoch, self.start_epoch, self.end_epoch, self.update_frequency,
                                        self.last_update, EPOCH_EPS)
        return (index, at_end) if due else None

    def close(self, index: int, at_end: bool) -> bool:
        """Record the grid index just pruned; True when that was the last update (end_epoch reached)."""
        self.last_update = index
        self.done = self.done or at_end
        return at_end

    def warn_if_unfinished(self, tag: str, state: SessionState) -> None:
        if not self.done:
            state.warn(f"!{tag} stopped at epoch {state.epoch:.3g}, before its end_epoch {self.end_epoch:g}: "
                       "final sparsity not reached — train longer or lower end_epoch")

    def state_dict(self) -> dict:
        return {"last_update": self.last_update, "done": self.done}

    def load_state_dict(self, state: dict) -> None:
        self.last_update, self.done = state["last_update"], state["done"]


def group_sparsity(state: SessionState, params) -> float:
    """Pruned fraction of ``params`` (``[(name, parameter)]``) under the session's masks."""
    total = sum(p.numel() for _, p in params)
    pruned = sum(int(state.masks.pruned(name).sum()) for name, _ in params if name in state.masks)
    return pruned / total if total else 0.0
