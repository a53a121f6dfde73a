"""``!SetLearningRateModifier`` and ``!LearningRateModifier`` (step / multi-step / exponential / cosine-restart
schedules), with SparseML's semantics. ``!LearningRateFunctionModifier`` lives in :mod:`.training`.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Literal

from sparsecore.modifiers.base import EPOCH_EPS, LOGGING_ONLY, Modifier, SessionState
from sparsecore.modifiers.training import param_groups_of

LR_CLASSES = ("StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingWarmRestarts")
LR_KWARGS = {  # lr_class → (required keys, optional keys)
    "StepLR": ({"gamma", "step_size"}, set()),
    "MultiStepLR": ({"gamma", "milestones"}, set()),
    "ExponentialLR": ({"gamma"}, {"step_size"}),  # SparseML forces step_size to one epoch
    "CosineAnnealingWarmRestarts": ({"lr_min", "cycle_epochs"}, set()),
}


def scheduled_lr(epoch: float, steps_per_epoch: int, lr_class: str, kwargs: dict, init_lr: float,
                 start: float) -> float:
    """Learning rate at ``epoch`` >= ``start`` of SparseML's ``LearningRateModifier`` (pure).

    SparseML steps a torch scheduler once per optimizer step from ``start``; in closed form, with
    ``n = round(epoch·spe) − round(start·spe)`` steps taken and ``spe`` steps per epoch:

    StepLR:        init·γ^⌊n / round(step_size·spe)⌋        (ExponentialLR: step_size = 1 epoch)
    MultiStepLR:   init·γ^|{m ∈ milestones : n ≥ round((m − start)·spe)}|
    CosineAnnealingWarmRestarts:  lr_min + ½(init − lr_min)(1 + cos(π·t/T)),
                   t = (epoch − start) mod T, T = cycle_epochs (fractional epochs, T_mult = 1)
    """
    n = round(epoch * steps_per_epoch) - round(start * steps_per_epoch)
    if lr_class in ("StepLR", "ExponentialLR"):
        size = 1.0 if lr_class == "ExponentialLR" else kwargs["step_size"]
        return init_lr * kwargs["gamma"] ** (n // max(round(size * steps_per_epoch), 1))
    if lr_class == "MultiStepLR":
        marks = sorted(round((m - start) * steps_per_epoch) for m in kwargs["milestones"])
        return init_lr * kwargs["gamma"] ** bisect.bisect_right(marks, n)
    if lr_class == "CosineAnnealingWarmRestarts":
        period = kwargs["cycle_epochs"]
        t = (epoch - start) % period
        return kwargs["lr_min"] + 0.5 * (init_lr - kwargs["lr_min"]) * (1.0 + math.cos(math.pi * t / period))
    raise ValueError(f"unknown lr_class {lr_class!r}")


@dataclass(frozen=True, kw_only=True)
class SetLearningRateModifier(Modifier):
    """Sets the learning rate of ``param_groups`` (all by default) once, at ``start_epoch``."""

    learning_rate: float
    param_groups: list | None = None
    start_epoch: float = 0.0  # SparseML's -1 ("at once") reads as 0
    SETS_LR = True
    IGNORED_FIELDS = {**Modifier.IGNORED_FIELDS, "constant_logging": LOGGING_ONLY,
                      "end_epoch": "SparseML's SetLearningRateModifier forced it to -1: the rate stays set"}

    def __post_init__(self) -> None:
        self.check_epochs(self.start_epoch, -1.0, end_required=False)
        if not 0.0 < self.learning_rate <= 1.0:
            self.fail("learning_rate", f"is {self.learning_rate}", "use a learning rate in (0, 1], as SparseML")

    def initialize(self, state: SessionState) -> None:
        state.require_optimizer(self.tag)
        self.rt.groups = param_groups_of(self, state)
        self.rt.applied = getattr(self.rt, "applied", False)

    def update(self, state: SessionState, epoch: float) -> None:
        if not self.rt.applied and epoch + EPOCH_EPS >= self.start_epoch:
            for group in self.rt.groups:
                group["lr"] = self.learning_rate
            self.rt.applied = True

    def state_dict(self) -> dict:
        return {"applied": self.rt.applied}

    def load_state_dict(self, state: dict) -> None:
        self.rt.applied = state["applied"]


@dataclass(frozen=True, kw_only=True)
class LearningRateModifier(Modifier):
    """A torch-style schedule from ``start_epoch``: ``init_lr`` decayed by ``lr_class`` with ``lr_kwargs``.

    Before ``start_epoch`` the rate is untouched; from ``end_epoch`` (if >= 0) it is held at its last value.
    """

    lr_class: Literal["StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingWarmRestarts"]
    lr_kwargs: dict
    init_lr: float
    start_epoch: float
    end_epoch: float = -1.0
    update_frequency: float = -1.0  # SparseML: must stay -1
    SETS_LR = True
    IGNORED_FIELDS = {**Modifier.IGNORED_FIELDS, "constant_logging": LOGGING_ONLY}

    def __post_init__(self) -> None:
        self.check_epochs(self.start_epoch, self.end_epoch, end_required=False)
        if self.update_frequency != -1:
            self.fail("update_frequency", f"is {self.update_frequency:g}", "leave it at -1 (or drop it), as SparseML")
        if not 0.0 < self.init_lr <= 1.0:
            self.fail("init_lr", f"is {self.init_lr}", "use a learning rate in (0, 1], as SparseML")
        required, optional = LR_KWARGS[self.lr_class]
        missing = sorted(required - set(self.lr_kwargs))
        if missing:
            self.fail("lr_kwargs", f"lacks {missing[0]!r} for {self.lr_class}", f"give {', '.join(sorted(required))}")
        unknown = sorted(set(self.lr_kwargs) - required - optional)
        if unknown:
            self.fail("lr_kwargs", f"has unknown key {unknown[0]!r} for {self.lr_class}",
                      f"allowed: {', '.join(sorted(required | optional))}")
        self._check_kwargs()

    def _check_kwargs(self) -> None:
        kw = self.lr_kwargs
        for key in ("gamma", "step_size", "lr_min", "cycle_epochs"):
            if key in kw and (isinstance(kw[key], bool) or not isinstance(kw[key], (int, float))
                              or not math.isfinite(kw[key])):
                self.fail(f"lr_kwargs.{key}", f"is {kw[key]!r}", "use a number")
        if "gamma" in kw and kw["gamma"] <= 0:
            self.fail("lr_kwargs.gamma", f"is {kw['gamma']}", "use a decay factor > 0")
        for key in ("step_size", "cycle_epochs"):
            if key in kw and kw[key] <= 0:
                self.fail(f"lr_kwargs.{key}", f"is {kw[key]}", "use a positive number of epochs")
        if "lr_min" in kw and kw["lr_min"] < 0:
            self.fail("lr_kwargs.lr_min", f"is {kw['lr_min']}", "use a learning rate >= 0")
        if "milestones" in kw:
            marks = kw["milestones"]
            if not isinstance(marks, list) or not marks or not all(
                    isinstance(m, (int, float)) and not isinstance(m, bool) for m in marks):
                self.fail("lr_kwargs.milestones", f"is {marks!r}", "give a list of epochs")
            for m in marks:
                if m <= self.start_epoch or (self.end_epoch >= 0 and m >= self.end_epoch):
                    self.fail("lr_kwargs.milestones", f"has {m:g}, outside ({self.start_epoch:g}, "
                              f"{f'{self.end_epoch:g}' if self.end_epoch >= 0 else 'inf'})",
                              "every milestone must lie after start_epoch and before end_epoch (SparseML's rule)")

    def initialize(self, state: SessionState) -> None:
        state.require_optimizer(self.tag)
        self.rt.groups = list(state.optimizer.param_groups)  # SparseML: every group
        self.rt.steps_per_epoch = state.steps_per_epoch

    def update(self, state: SessionState, epoch: float) -> None:
        if epoch + EPOCH_EPS < self.start_epoch or (self.end_epoch >= 0 and epoch + EPOCH_EPS >= self.end_epoch):
            return
        lr = scheduled_lr(epoch, self.rt.steps_per_epoch, self.lr_class, self.lr_kwargs, self.init_lr,
                          self.start_epoch)
        for group in self.rt.groups:
            group["lr"] = lr
