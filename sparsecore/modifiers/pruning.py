"""Magnitude pruning modifiers: gradual (GMP), global, and constant.

``!GMPruningModifier``, ``!MagnitudePruningModifier`` (same thing) and
``!GlobalMagnitudePruningModifier`` (``global_sparsity: true`` and
``params: __ALL_PRUNABLE__`` by default) share :class:`GMPruningModifier`; the
registry records which tag was written. ``!ConstantPruningModifier`` freezes the
current zero pattern of its parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sparsecore.modifiers.base import EPOCH_EPS, UNUSED_BY_SPARSEML, Modifier, Params, SessionState
from sparsecore.modifiers.pruning_steps import PruningProgress, group_sparsity
from sparsecore.pruning.apply import prune_global, prune_layerwise, zero_fraction
from sparsecore.pruning.schedule import sparsity_at
from sparsecore.pruning.structure import NM_SLACK, Structure, check_shape, parse_mask_type
from sparsecore.selectors import resolve_params

FROM_PARAM = "__FROM_PARAM__"


@dataclass(frozen=True, kw_only=True)
class GMPruningModifier(Modifier):
    end_epoch: float
    final_sparsity: float | dict
    params: Params | None = None
    init_sparsity: float | Literal["__FROM_PARAM__"] = 0.0
    start_epoch: float = 0.0
    update_frequency: float = 1.0
    inter_func: Literal["linear", "cubic", "inverse_cubic"] = "cubic"
    mask_type: str | list = "unstructured"
    leave_enabled: bool = True
    global_sparsity: bool = False
    phased: bool = False  # SparseML's alternating (AC/DC-like) phases: not implemented, must stay false
    score_type: str = "magnitude"
    START_MINUS_ONE_IS_ZERO = False  # the schedule starts at start_epoch: -1 is a mistake here

    def __post_init__(self) -> None:
        self.check_epochs(self.start_epoch, self.end_epoch, end_required=True)
        if self.phased:
            self.fail("phased", "is true", "phased pruning is not implemented: set phased: false")
        if self.score_type != "magnitude":
            self.fail("score_type", f"is {self.score_type!r}", "only 'magnitude' is implemented here; for "
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
            except (TypeError, ValueError):
                self.fail("final_sparsity", f"has key {key!r}", "use {sparsity: [params]} with numeric keys")
            if isinstance(selectors, str):
                selectors = [selectors]
            if not isinstance(selectors, list) or not all(isinstance(s, str) for s in selectors):
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
        self.rt.progress = PruningProgress(self.start_epoch, self.end_epoch, self.update_frequency)
        self.rt.init = None  # per-group init sparsities, read at start_epoch

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
        structure = self.structure()
        for (final, params), init in zip(self.rt.groups, self.rt.init):
            def target(s0: float) -> float:
                return sparsity_at(epoch, self.start_epoch, self.end_epoch, s0, max(final, s0), self.inter_func)
            if self.global_sparsity:
                prune_global(params, target(init), state.masks, structure)
            else:
                prune_layerwise(params, [target(s0) for s0 in init], state.masks, structure)
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

    def state_dict(self) -> dict:
        return {**self.rt.progress.state_dict(), "init": self.rt.init}

    def load_state_dict(self, state: dict) -> None:
        self.rt.progress.load_state_dict(state)
        self.rt.init = state["init"]


@dataclass(frozen=True, kw_only=True)
class ConstantPruningModifier(Modifier):
    params: Params
    start_epoch: float = 0.0
    end_epoch: float = -1.0
    IGNORED_FIELDS = {**Modifier.IGNORED_FIELDS, "update_frequency": UNUSED_BY_SPARSEML}

    def __post_init__(self) -> None:
        self.check_epochs(self.start_epoch, self.end_epoch, end_required=False)

    def initialize(self, state: SessionState) -> None:
        self.rt.params = resolve_params(state.model, self.params, f"!{self.tag}.params")
        self.rt.phase = "waiting"

    def update(self, state: SessionState, epoch: float) -> None:
        if self.rt.phase == "waiting" and epoch + EPOCH_EPS >= self.start_epoch:
            for name, param in self.rt.params:
                if name not in state.masks:
                    state.masks.set(name, param, param.detach() == 0)
            self.rt.phase = "holding"
        if self.rt.phase == "holding" and self.end_epoch >= 0 and epoch + EPOCH_EPS >= self.end_epoch:
            for name, _ in self.rt.params:
                state.masks.release(name)
            self.rt.phase = "done"

    def state_dict(self) -> dict:
        return {"phase": self.rt.phase}

    def load_state_dict(self, state: dict) -> None:
        self.rt.phase = state["phase"]

