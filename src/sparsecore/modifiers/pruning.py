"""Gradual pruning by magnitude or movement, and constant masks.

``!GMPruningModifier``, ``!MagnitudePruningModifier`` (same thing),
``!GlobalMagnitudePruningModifier`` (``global_sparsity: true`` and
``params: __ALL_PRUNABLE__`` by default) and ``!MovementPruningModifier`` (``score_type: movement``:
scores −w·∇w accumulated at every optimizer step since training began, :mod:`sparsecore.pruning.movement`)
share :class:`GMPruningModifier`; the registry records which tag was written.
``!ConstantPruningModifier`` freezes the current zero pattern of its parameters. Every one of them takes
step fields too (:mod:`sparsecore.modifiers.pruning_steps`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from sparsecore.modifiers.base import EPOCH_EPS, UNUSED_BY_SPARSEML, Modifier, Params, SessionState
from sparsecore.modifiers.pruning_steps import PruningProgress, check_window, group_sparsity, window
from sparsecore.pruning import movement
from sparsecore.pruning.apply import magnitude_scores, prune_global, prune_layerwise, zero_fraction
from sparsecore.pruning.schedule import sparsity_at
from sparsecore.pruning.structure import NM_SLACK, Structure, check_shape, parse_mask_type
from sparsecore.selectors import resolve_params

FROM_PARAM = "__FROM_PARAM__"


@dataclass(frozen=True, kw_only=True)
class GMPruningModifier(Modifier):
    final_sparsity: float | dict
    end_epoch: float = -1.0  # this or end_step is required
    params: Params | None = None
    init_sparsity: float | Literal["__FROM_PARAM__"] = 0.0
    start_epoch: float = 0.0
    update_frequency: float = 1.0
    inter_func: Literal["linear", "cubic", "inverse_cubic"] = "cubic"
    mask_type: str | list = "unstructured"
    leave_enabled: bool = True
    global_sparsity: bool = False
    phased: bool = False  # SparseML's alternating (AC/DC-like) phases: not implemented, must stay false
    score_type: str = "magnitude"  # or "movement" (what !MovementPruningModifier sets)
    start_step: int = -1
    end_step: int = -1
    update_frequency_steps: int = -1
    START_MINUS_ONE_IS_ZERO = False  # the schedule starts at start_epoch: -1 is a mistake here

    def __post_init__(self) -> None:
        check_window(self, end_required=True)
        if self.phased:
            self.fail("phased", "is true", "phased pruning is not implemented: set phased: false")
        if self.tag == "MovementPruningModifier" and self.score_type != "movement":
            self.fail("score_type", f"is {self.score_type!r}", "drop score_type, or use !GMPruningModifier")
        if self.score_type not in ("magnitude", "movement"):
            self.fail("score_type", f"is {self.score_type!r}", "use 'magnitude' or 'movement'; for "
                      "second-order scores use !OBSPruningModifier")
        if self.update_frequency <= 0:
            self.fail("update_frequency", f"is {self.update_frequency}", "use a positive number of epochs")
        for sparsity, _ in self.groups():
            self._check_sparsity("final_sparsity", sparsity)
        if self.init_sparsity != FROM_PARAM:
            self._check_sparsity("init_sparsity", self.init_sparsity)
            if any(s < self.init_sparsity for s, _ in self.groups()):
                self.fail("final_sparsity", f"is below init_sparsity {self.init_sparsity}",
                          "make final_sparsity >= init_sparsity")
        if self.params is None and not isinstance(self.final_sparsity, dict):
            self.fail("params", "is missing", "name the parameters, e.g. params: __ALL_PRUNABLE__")
        if self.final_sparsity == {}:  # no group: the modifier would prune nothing
            self.fail("final_sparsity", "is an empty mapping", "map sparsities to names, e.g. {0.8: [re:.*dense.*]}")
        structure = self.structure()
        if any(s > structure.max_sparsity + NM_SLACK for s, _ in self.groups()):
            self.fail("final_sparsity", f"exceeds what mask_type {structure.describe()} allows "
                      f"({structure.max_sparsity:g})", f"use final_sparsity <= {structure.max_sparsity:g}")

    def _check_sparsity(self, field_name: str, value: float) -> None:
        if not 0.0 <= value < 1.0:
            self.fail(field_name, f"is {value}", "use a sparsity in [0, 1)")

    def structure(self) -> Structure:
        return parse_mask_type(self.mask_type, f"!{self.tag}.mask_type")

    def groups(self) -> list[tuple[float, tuple[str, ...]]]:
        """``[(final_sparsity, selectors)]`` — one group, or one per map entry."""
        if not isinstance(self.final_sparsity, dict):
            return [(self.final_sparsity, self.params or ())]
        out = []
        for key, selectors in self.final_sparsity.items():
            try:
                sparsity = float(key)
            except (TypeError, ValueError, OverflowError):
                self.fail("final_sparsity", f"has key {key!r}", "use {sparsity: [params]} with numeric keys")
            if isinstance(selectors, str):
                selectors = [selectors]
            if not isinstance(selectors, list) or not selectors or not all(isinstance(s, str) for s in selectors):
                self.fail("final_sparsity", f"entry {key!r} is {selectors!r}", "map each sparsity to a list of names")
            out.append((sparsity, tuple(selectors)))
        return out

    # ---- lifecycle ----------------------------------------------------
    def initialize(self, state: SessionState) -> None:
        structure = self.structure()
        self.rt.groups = []
        for final, selectors in self.groups():
            params = resolve_params(state.model, selectors, f"!{self.tag}.params")
            for name, param in params:
                check_shape(structure, param.shape, name)
            self.rt.groups.append((final, params))
        self.rt.window = window(self, state.steps_per_epoch)
        self.rt.progress = PruningProgress.of(self.rt.window)
        self.rt.init = None  # per-group init sparsities, read at start_epoch
        if self.score_type == "movement":
            self._start_movement(state)

    # ---- movement scores ----------------------------------------------
    def _start_movement(self, state: SessionState) -> None:
        """Accumulate −w·∇w before every optimizer step (after gradient clipping, before the update)."""
        if state.one_shot:
            self.fail("score_type", "is movement in a one-shot run", "movement scores come from training: train "
                      "with the recipe, or prune one-shot with !GMPruningModifier / !OBSPruningModifier")
        state.require_optimizer(self.tag)
        params = [p for _, params in self.rt.groups for p in params]
        self.rt.scores = {name: torch.zeros(p.shape, device=p.device) for name, p in params}  # O(d) floats
        self.rt.accumulated = 0  # optimizer steps scored (restored on resume with the scores)

        def add_scores(*_):
            if self.rt.progress.done:  # the last update is behind: scores are no longer read
                return
            if all([movement.accumulate(self.rt.scores[name], p, p.grad) for name, p in params]):
                self.rt.accumulated += 1

        self.rt.hook = state.optimizer.register_step_pre_hook(add_scores)

    def _score_fn(self, state: SessionState):
        if self.score_type == "magnitude":
            return magnitude_scores
        if self.rt.accumulated == 0:  # an update before the first optimizer step (start at step 0)
            state.warn(f"!{self.tag}: no optimizer step yet at epoch {state.epoch:.3g}, so no movement scores: "
                       "this update ranks by magnitude")
            return magnitude_scores
        return lambda name, param: self.rt.scores[name]

    def release(self, state: SessionState) -> None:
        hook = getattr(self.rt, "hook", None)
        if hook is not None:
            hook.remove()
            self.rt.hook = None

    def _init_for(self, params) -> list[float] | float:
        if self.init_sparsity != FROM_PARAM:
            return self.init_sparsity if self.global_sparsity else [self.init_sparsity] * len(params)
        if self.global_sparsity:
            return zero_fraction(params)
        return [zero_fraction([p]) for p in params]

    def update(self, state: SessionState, epoch: float) -> None:
        """Prune at start_epoch + i·update_frequency (a fixed grid, no drift) and at end_epoch."""
        step = self.rt.progress.due(epoch)
        if step is None:
            return
        if self.rt.init is None:
            self.rt.init = [self._init_for(params) for _, params in self.rt.groups]
        structure, w, score_fn = self.structure(), self.rt.window, self._score_fn(state)
        for (final, params), init in zip(self.rt.groups, self.rt.init):
            def target(s0: float) -> float:
                return sparsity_at(epoch, w.start, w.end, s0, max(final, s0), self.inter_func)
            if self.global_sparsity:
                prune_global(params, target(init), state.masks, structure, score_fn)
            else:
                prune_layerwise(params, [target(s0) for s0 in init], state.masks, structure, score_fn)
        state.record_update(self._report(state))
        if self.rt.progress.close(*step) and not self.leave_enabled:
            for _, params in self.rt.groups:
                for name, _ in params:
                    state.masks.release(name)

    def _report(self, state: SessionState) -> dict[str, float]:
        """Sparsity of this modifier's parameters, and of each ``final_sparsity`` group when there are several."""
        groups = [(final, params) for final, params in self.rt.groups]
        out = {"sparsity": group_sparsity(state, [p for _, params in groups for p in params])}
        if len(groups) > 1:
            out.update({f"sparsity@{final:g}": group_sparsity(state, params) for final, params in groups})
        return out

    def finalize(self, state: SessionState) -> None:
        self.rt.progress.warn_if_unfinished(self.tag, state)
        self.release(state)

    def state_dict(self) -> dict:
        out = {**self.rt.progress.state_dict(), "init": self.rt.init}
        if self.score_type == "movement":
            out["accumulated"] = self.rt.accumulated
        return out

    def load_state_dict(self, state: dict) -> None:
        self.rt.progress.load_state_dict(state)
        self.rt.init = state["init"]
        self.rt.accumulated = state.get("accumulated", 0)

    def tensor_state(self) -> dict[str, torch.Tensor]:
        return dict(self.rt.scores) if self.score_type == "movement" else {}

    def load_tensor_state(self, tensors: dict[str, torch.Tensor]) -> None:
        for name, scores in tensors.items():
            if name in self.rt.scores:
                self.rt.scores[name].copy_(scores)


@dataclass(frozen=True, kw_only=True)
class ConstantPruningModifier(Modifier):
    params: Params
    start_epoch: float = 0.0
    end_epoch: float = -1.0
    start_step: int = -1
    end_step: int = -1
    IGNORED_FIELDS = {**Modifier.IGNORED_FIELDS, "update_frequency": UNUSED_BY_SPARSEML}

    def __post_init__(self) -> None:
        check_window(self, end_required=False)

    def initialize(self, state: SessionState) -> None:
        self.rt.params = resolve_params(state.model, self.params, f"!{self.tag}.params")
        self.rt.window = window(self, state.steps_per_epoch)
        self.rt.phase = "waiting"

    def update(self, state: SessionState, epoch: float) -> None:
        start, end = self.rt.window.start, self.rt.window.end
        if self.rt.phase == "waiting" and epoch + EPOCH_EPS >= start:
            for name, param in self.rt.params:
                if name not in state.masks:
                    state.masks.set(name, param, param.detach() == 0)
            self.rt.phase = "holding"
        if self.rt.phase == "holding" and end >= 0 and epoch + EPOCH_EPS >= end:
            for name, _ in self.rt.params:
                state.masks.release(name)
            self.rt.phase = "done"

    def state_dict(self) -> dict:
        return {"phase": self.rt.phase}

    def load_state_dict(self, state: dict) -> None:
        self.rt.phase = state["phase"]

