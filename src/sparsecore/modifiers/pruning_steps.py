"""The schedule of a pruning modifier: its window (epoch fields or step fields) and where a gradual one
(GMP, OBS, movement) is on its update grid — an object each modifier owns in its run-time state.

Step fields, for users who think in optimizer steps: ``start_step``, ``end_step`` and (gradual modifiers)
``update_frequency_steps`` stand for ``start_epoch``, ``end_epoch`` and ``update_frequency``; -1 (the
default) leaves the epoch field in charge. Each pair takes one of the two; steps are global optimizer steps
counted from 0 (``step / steps_per_epoch`` is the epoch the session sees), as in the HF Trainer's
``global_step`` and Intel Neural Compressor's ``start_step`` / ``end_step``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sparsecore.modifiers.base import EPOCH_EPS, Modifier, SessionState
from sparsecore.pruning.schedule import due_update


@dataclass(frozen=True)
class Window:
    """A modifier's schedule in epochs (``end`` -1: open; ``frequency`` None for one-off modifiers)."""

    start: float
    end: float
    frequency: float | None
    end_name: str  # "end_epoch 3" or "end_step 500", for messages


def check_window(m: Modifier, *, end_required: bool) -> None:
    """Validate the epoch and step fields of ``m`` (each pair holds one value; -1 is unset)."""
    freq_steps = getattr(m, "update_frequency_steps", -1)
    for name, value in (("start_step", m.start_step), ("end_step", m.end_step)):
        if value < -1:
            m.fail(name, f"is {value}", "use an optimizer step >= 0 (or -1 to use the epoch field)")
    if freq_steps == 0 or freq_steps < -1:
        m.fail("update_frequency_steps", f"is {freq_steps}", "use a positive number of steps (or -1)")
    freq = getattr(m, "update_frequency", None)
    if freq is not None and 0 < freq < EPOCH_EPS:  # below the slack epochs are compared with: no grid left
        m.fail("update_frequency", f"is {freq:g} epochs", f"use at least {EPOCH_EPS:g} (or update_frequency_steps: 1)")
    if m.start_step >= 0 and m.start_epoch != 0.0:
        m.fail("start_step", "is given with start_epoch", "give the start once: start_epoch or start_step")
    if m.end_step >= 0 and m.end_epoch >= 0:
        m.fail("end_step", "is given with end_epoch", "give the end once: end_epoch or end_step")
    if freq_steps > 0 and m.update_frequency != 1.0:
        m.fail("update_frequency_steps", "is given with update_frequency",
               "give the frequency once: update_frequency or update_frequency_steps")
    if end_required and m.end_epoch < 0 and m.end_step < 0:
        m.fail("end_epoch", "is missing", "give end_epoch (epochs) or end_step (optimizer steps)")
    if m.start_step >= 0 and m.end_step >= 0 and m.end_step < m.start_step:
        m.fail("end_step", f"({m.end_step}) is before start_step ({m.start_step})", "make end_step >= start_step")
    if m.start_step < 0 and m.end_step < 0:
        m.check_epochs(m.start_epoch, m.end_epoch, end_required=end_required)
    elif m.start_epoch < 0:
        m.fail("start_epoch", f"is {m.start_epoch}", "use an epoch >= 0")


def window(m: Modifier, steps_per_epoch: int) -> Window:
    """``m``'s schedule in epochs, its step fields converted with ``steps_per_epoch``."""
    start = m.start_step / steps_per_epoch if m.start_step >= 0 else m.start_epoch
    end = m.end_step / steps_per_epoch if m.end_step >= 0 else m.end_epoch
    freq = getattr(m, "update_frequency", None)
    if getattr(m, "update_frequency_steps", -1) > 0:
        freq = m.update_frequency_steps / steps_per_epoch
    if 0 <= end < start:
        m.fail("end_step" if m.end_step >= 0 else "end_epoch", f"is before the start ({start:g} epochs, "
               f"{steps_per_epoch} steps an epoch)", "make the end come after the start")
    end_name = f"end_step {m.end_step}" if m.end_step >= 0 else f"end_epoch {m.end_epoch:g}"
    return Window(start, end, freq, end_name)


@dataclass
class PruningProgress:
    """The last grid index pruned at (None: not started) and whether end_epoch was reached."""

    start_epoch: float
    end_epoch: float
    update_frequency: float
    end_name: str = ""  # how the end was written ("end_epoch 3"), for the warning
    last_update: int | None = None
    done: bool = False

    @classmethod
    def of(cls, w: Window) -> "PruningProgress":
        return cls(w.start, w.end, w.frequency, w.end_name)

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
            end = self.end_name or f"end_epoch {self.end_epoch:g}"
            state.warn(f"!{tag} stopped at epoch {state.epoch:.3g}, before its {end}: "
                       f"final sparsity not reached — train longer or lower {end.split()[0]}")

    def state_dict(self) -> dict:
        return {"last_update": self.last_update, "done": self.done}

    def load_state_dict(self, state: dict) -> None:
        self.last_update, self.done = state["last_update"], state["done"]


def group_sparsity(state: SessionState, params) -> float:
    """Pruned fraction of ``params`` (``[(name, parameter)]``) under the session's masks."""
    total = sum(p.numel() for _, p in params)
    pruned = sum(int(state.masks.pruned(name).sum()) for name, _ in params if name in state.masks)
    return pruned / total if total else 0.0
