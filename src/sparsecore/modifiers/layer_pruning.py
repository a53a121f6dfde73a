"""``!LayerPruningModifier``: remove whole layers (e.g. encoder blocks), with SparseML's semantics.

SparseML replaced each named module by an identity at ``start_epoch`` (-1: at once) and put the
original back at ``end_epoch`` when that is >= 0 — also when training ends before it, since its
``finalize`` runs at epoch ∞. Here a dropped layer becomes a :class:`SkippedLayer` that passes its
first input through (a residual block returning its hidden states — BERT-family layers in
transformers 5 — is then skipped exactly). Layers dropped at the start are dropped before the other
modifiers resolve their ``params``, so a ``re:`` selector never picks a removed layer's weights.
:func:`remove_skipped_layers` then deletes them from their ``nn.ModuleList`` so the saved model is
simply shallower (the BERT adapter also rewrites ``num_hidden_layers``).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from sparsecore.errors import SparsecoreError
from sparsecore.modifiers.base import EPOCH_EPS, UNUSED_BY_SPARSEML, Modifier, Params, SessionState
from sparsecore.modifiers.pruning_steps import check_window, window
from sparsecore.selectors import ALL, ALL_PRUNABLE


class SkippedLayer(nn.Module):
    """Stands in for a removed layer: returns its first positional input unchanged. Holds no weights."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.removed = name

    def forward(self, hidden_states, *args, **kwargs):
        return hidden_states

    def extra_repr(self) -> str:
        return f"removed={self.removed!r}"


def _parent(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    parent_name, _, child = name.rpartition(".")
    return (model.get_submodule(parent_name) if parent_name else model), child


def swap_module(model: nn.Module, name: str, new: nn.Module) -> nn.Module:
    """Put ``new`` where ``name`` was; returns the module taken out."""
    parent, child = _parent(model, name)
    old = parent.get_submodule(child)
    if isinstance(parent, (nn.ModuleList, nn.Sequential)):
        parent[int(child)] = new
    else:
        setattr(parent, child, new)
    return old


def remove_skipped_layers(model: nn.Module) -> dict[str, list[int]]:
    """Delete every :class:`SkippedLayer` held in an ``nn.ModuleList``; ``{list name: kept old indices}``."""
    kept: dict[str, list[int]] = {}
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.ModuleList) and any(isinstance(m, SkippedLayer) for m in module):
            keep = [i for i, m in enumerate(module) if not isinstance(m, SkippedLayer)]
            for i in reversed(range(len(module))):  # in place (references to the list stay valid); re-indexed
                if i not in keep:
                    del module[i]
            kept[name] = keep
    return kept


@dataclass(frozen=True, kw_only=True)
class LayerPruningModifier(Modifier):
    layers: Params
    start_epoch: float = 0.0  # SparseML's -1 ("at once") reads as 0
    end_epoch: float = -1.0  # >= 0: the layers come back at this epoch (SparseML)
    start_step: int = -1
    end_step: int = -1
    CHANGES_STRUCTURE = True
    IGNORED_FIELDS = {**Modifier.IGNORED_FIELDS, "update_frequency": UNUSED_BY_SPARSEML}

    def __post_init__(self) -> None:
        check_window(self, end_required=False)
        special = [n for n in self.layers if n in (ALL, ALL_PRUNABLE) or n.startswith("re:")]
        if special:
            self.fail("layers", f"has {special[0]!r}", "name each layer to remove, e.g. bert.encoder.layer.7")
        if len(set(self.layers)) != len(self.layers):
            self.fail("layers", "names a layer twice", "list each layer once")

    def last_epoch(self) -> float:
        return self.end_epoch

    def initialize(self, state: SessionState) -> None:
        modules = dict(state.model.named_modules())
        for name in self.layers:
            if name not in modules or name == "":
                raise SparsecoreError(f"!{self.tag}.layers names {name!r}, which is not a module of the model",
                                      "recipe", f"use module names, e.g. {_layer_examples(modules)}")
            if any(other != name and name.startswith(other + ".") for other in self.layers):
                self.fail("layers", f"names {name!r} inside another listed layer", "list only the outer layer")
        self.rt.window = window(self, state.steps_per_epoch)
        if self.rt.window.end >= 0 and not getattr(self.rt, "warned", False):
            self.rt.warned = True
            state.warn(f"!{self.tag}: {self.rt.window.end_name} puts the removed layers back then (or when training "
                       "ends), as in SparseML — omit it to remove them for good")
        self.rt.session = state
        self.rt.originals = getattr(self.rt, "originals", {})
        self.rt.phase = getattr(self.rt, "phase", "waiting")
        if self.rt.window.start <= EPOCH_EPS and self.rt.phase == "waiting":
            self._drop(state)  # before the other modifiers resolve their selectors

    def _drop(self, state) -> None:
        for name in self.layers:
            self.rt.originals[name] = swap_module(state.model, name, SkippedLayer(name))
        self.rt.phase = "dropped"
        state.dropped_layers = sorted(set(getattr(state, "dropped_layers", ())) | set(self.layers))
        state.record_update({"dropped_layers": float(len(self.layers))})

    def _restore(self, state) -> None:
        for name, module in self.rt.originals.items():
            swap_module(state.model, name, module)
        self.rt.originals = {}
        state.dropped_layers = sorted(set(getattr(state, "dropped_layers", ())) - set(self.layers))
        state.record_update({"dropped_layers": 0.0})

    def update(self, state: SessionState, epoch: float) -> None:
        start, end = self.rt.window.start, self.rt.window.end
        if self.rt.phase == "waiting" and epoch + EPOCH_EPS >= start:
            self._drop(state)
        if self.rt.phase == "dropped" and end >= 0 and epoch + EPOCH_EPS >= end:
            self._restore(state)
            self.rt.phase = "restored"

    def finalize(self, state: SessionState) -> None:
        if self.rt.phase == "dropped" and self.rt.window.end >= 0:  # SparseML's finalize runs at epoch ∞
            self._restore(state)
            self.rt.phase = "restored"

    def release(self, state: SessionState) -> None:
        if self.rt.phase == "dropped":
            self._restore(state)
        self.rt.phase = "waiting"

    def state_dict(self) -> dict:
        return {"phase": self.rt.phase}

    def load_state_dict(self, state: dict) -> None:
        if state["phase"] == "dropped" and self.rt.phase == "waiting":
            self._drop(self.rt.session)
        elif state["phase"] == "restored" and self.rt.phase == "dropped":
            self._restore(self.rt.session)
        self.rt.phase = state["phase"]


def _layer_examples(modules: dict) -> str:
    lists = [name for name, m in modules.items() if isinstance(m, nn.ModuleList) and len(m)]
    if lists:
        return f"{lists[0]}.0 … {lists[0]}.{len(modules[lists[0]]) - 1}"
    return ", ".join(n for n in list(modules)[1:4])
