"""Modifiers that shape training itself: length, learning rate, weight decay, trainable params."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from sparsecore.modifiers.base import EPOCH_EPS, LOGGING_ONLY, Modifier, Params, SessionState
from sparsecore.selectors import resolve_params


@dataclass(frozen=True, kw_only=True)
class EpochRangeModifier(Modifier):
    """Declares the training length: the recipe ends at ``end_epoch``."""

    start_epoch: float = 0.0
    end_epoch: float

    def __post_init__(self) -> None:
        self.check_epochs(self.start_epoch, self.end_epoch, end_required=True)


def lr_at(epoch: float, lr_func: str, init_lr: float, final_lr: float,
          start: float, end: float, cycle_epochs: float) -> float:
    """Learning rate at ``epoch`` (pure).

    linear:        init + (final - init)·x,            x = (epoch - start)/(end - start)
    cosine:        final + ½(init - final)(1 + cos πx)
    cyclic_linear: linear within each cycle of ``cycle_epochs``, restarting at init_lr
    After ``end`` the rate stays at ``final_lr``.
    """
    if epoch >= end:
        return final_lr
    x = min(max((epoch - start) / (end - start), 0.0), 1.0)
    if lr_func == "linear":
        return init_lr + (final_lr - init_lr) * x
    if lr_func == "cosine":
        return final_lr + 0.5 * (init_lr - final_lr) * (1.0 + math.cos(math.pi * x))
    if lr_func == "cyclic_linear":
        phase = ((epoch - start) % cycle_epochs) / cycle_epochs
        return init_lr + (final_lr - init_lr) * phase
    raise ValueError(f"unknown lr_func {lr_func!r}")


@dataclass(frozen=True, kw_only=True)
class LearningRateFunctionModifier(Modifier):
    lr_func: Literal["linear", "cosine", "cyclic_linear"] = "linear"
    init_lr: float
    final_lr: float
    start_epoch: float = 0.0
    end_epoch: float
    cycle_epochs: float = 1.0
    param_groups: list | None = None
    update_frequency: float = -1.0  # SparseML: must stay -1 (the rate is set at every step)
    SETS_LR = True

    def __post_init__(self) -> None:
        self.check_epochs(self.start_epoch, self.end_epoch, end_required=True)
        if self.update_frequency != -1:
            self.fail("update_frequency", f"is {self.update_frequency:g}", "leave it at -1 (or drop it): the "
                      "learning rate is set at every step, as in SparseML")
        if self.end_epoch == self.start_epoch:
            self.fail("end_epoch", "equals start_epoch", "give the schedule a positive length")
        for name in ("init_lr", "final_lr"):
            if getattr(self, name) < 0:
                self.fail(name, f"is {getattr(self, name)}", "use a learning rate >= 0")
        if self.cycle_epochs <= 0:
            self.fail("cycle_epochs", f"is {self.cycle_epochs}", "use a positive number of epochs")

    def initialize(self, state: SessionState) -> None:
        state.require_optimizer(self.tag)
        self.rt.groups = param_groups_of(self, state)

    def update(self, state: SessionState, epoch: float) -> None:
        if epoch + EPOCH_EPS < self.start_epoch:
            return
        lr = lr_at(epoch, self.lr_func, self.init_lr, self.final_lr, self.start_epoch, self.end_epoch, self.cycle_epochs)
        for group in self.rt.groups:
            group["lr"] = lr


@dataclass(frozen=True, kw_only=True)
class SetWeightDecayModifier(Modifier):
    weight_decay: float
    start_epoch: float = 0.0
    param_groups: list | None = None
    IGNORED_FIELDS = {**Modifier.IGNORED_FIELDS, "constant_logging": LOGGING_ONLY,
                      "end_epoch": "SparseML's SetWeightDecayModifier never used it: the decay stays set"}

    def __post_init__(self) -> None:
        self.check_epochs(self.start_epoch, -1.0, end_required=False)
        if self.weight_decay < 0:
            self.fail("weight_decay", f"is {self.weight_decay}", "use a value >= 0")

    def initialize(self, state: SessionState) -> None:
        state.require_optimizer(self.tag)
        self.rt.groups = param_groups_of(self, state)

    def update(self, state: SessionState, epoch: float) -> None:
        if epoch + EPOCH_EPS >= self.start_epoch:
            for group in self.rt.groups:
                group["weight_decay"] = self.weight_decay


def param_groups_of(mod: Modifier, state) -> list[dict]:
    """The optimizer's param groups a modifier's ``param_groups`` field names (all when unset)."""
    groups = state.optimizer.param_groups
    if mod.param_groups is None:
        return list(groups)
    bad = [i for i in mod.param_groups if not isinstance(i, int) or not 0 <= i < len(groups)]
    if bad:
        mod.fail("param_groups", f"has invalid index {bad[0]!r}", f"use indices in [0, {len(groups) - 1}]")
    return [groups[i] for i in mod.param_groups]


@dataclass(frozen=True, kw_only=True)
class TrainableParamsModifier(Modifier):
    """Sets ``requires_grad`` of ``params`` from ``start_epoch``; restores it at ``end_epoch`` (-1: never)."""

    params: Params
    trainable: bool
    params_strict: bool = True
    start_epoch: float = 0.0
    end_epoch: float = -1.0

    def __post_init__(self) -> None:
        self.check_epochs(self.start_epoch, self.end_epoch, end_required=False)

    def initialize(self, state: SessionState) -> None:
        self.rt.params = resolve_params(state.model, self.params, f"!{self.tag}.params", strict=self.params_strict)
        chosen = {name for name, _ in self.rt.params}
        params = state.model.named_parameters()
        if not self.trainable and all(name in chosen or not p.requires_grad for name, p in params):
            self.fail("params", "selects every trainable parameter and trainable is false",
                      "nothing would be left to train (the backward pass fails): leave some parameters trainable")
        self.rt.original = {name: p.requires_grad for name, p in self.rt.params}
        self.rt.phase = "waiting"

    def update(self, state: SessionState, epoch: float) -> None:
        if self.rt.phase == "waiting" and epoch + EPOCH_EPS >= self.start_epoch:
            for _, param in self.rt.params:
                param.requires_grad_(self.trainable)
            self.rt.phase = "active"
        if self.rt.phase == "active" and self.end_epoch >= 0 and epoch + EPOCH_EPS >= self.end_epoch:
            self._restore()

    def finalize(self, state: SessionState) -> None:
        if self.rt.phase == "active" and self.end_epoch >= 0:
            self._restore()

    def _restore(self) -> None:
        for name, param in self.rt.params:
            param.requires_grad_(self.rt.original[name])
        self.rt.phase = "done"

    def state_dict(self) -> dict:
        return {"phase": self.rt.phase}

    def load_state_dict(self, state: dict) -> None:
        if state["phase"] == "active":
            for _, param in self.rt.params:
                param.requires_grad_(self.trainable)
        self.rt.phase = state["phase"]
