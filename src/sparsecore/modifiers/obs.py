"""``!OBSPruningModifier``: gradual pruning by the Optimal BERT Surgeon (oBERT, arXiv:2203.07259).

At each pruning step (same schedule grid as GMP): stream ``num_grads`` mini-batch gradients
into block-diagonal Fisher inverses (Numba kernel), score every weight (or block of 4) by its OBS
saliency, select exactly k globally (default) or per layer, and move the surviving weights of each
Fisher block by the optimal update. ``num_recomputations`` > 1 splits a step into sub-steps with
fresh gradients. Memory: F⁻¹ of all targeted weights, d·B floats (MiniLM encoder, B = 50: 4.2 GB).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from sparsecore.modifiers.base import Modifier, Params, SessionState
from sparsecore.modifiers.pruning_steps import PruningProgress, check_window, group_sparsity, window
from sparsecore.pruning import obs
from sparsecore.pruning.apply import prune_count
from sparsecore.pruning.schedule import sparsity_at
from sparsecore.pruning.select import select_lowest, select_lowest_global
from sparsecore.pruning.structure import Structure, parse_mask_type
from sparsecore.selectors import resolve_params


@dataclass(frozen=True, kw_only=True)
class OBSPruningModifier(Modifier):
    final_sparsity: float
    end_epoch: float = -1.0  # this or end_step is required
    params: Params = ("__ALL_PRUNABLE__",)
    init_sparsity: float = 0.0
    start_epoch: float = 0.0
    update_frequency: float = 1.0
    inter_func: Literal["linear", "cubic", "inverse_cubic"] = "cubic"
    global_sparsity: bool = True
    mask_type: str | list = "unstructured"  # parsed by the pruning modifiers' parser; OBS runs unstructured or 1×4
    num_grads: int = 1024
    damp: float = 1e-7
    fisher_block_size: int = 50
    grad_sampler_kwargs: dict | None = None
    num_recomputations: int = 1
    leave_enabled: bool = True
    start_step: int = -1
    end_step: int = -1
    update_frequency_steps: int = -1
    START_MINUS_ONE_IS_ZERO = False  # the schedule starts at start_epoch: -1 is a mistake here

    def __post_init__(self) -> None:
        check_window(self, end_required=True)
        for name in ("init_sparsity", "final_sparsity"):
            if not 0.0 <= getattr(self, name) < 1.0:
                self.fail(name, f"is {getattr(self, name)}", "use a sparsity in [0, 1)")
        if self.final_sparsity < self.init_sparsity:
            self.fail("final_sparsity", "is below init_sparsity", "make final_sparsity >= init_sparsity")
        for name in ("num_grads", "fisher_block_size", "num_recomputations"):
            if getattr(self, name) < 1:
                self.fail(name, f"is {getattr(self, name)}", "use a positive integer")
        if self.damp <= 0 or self.update_frequency <= 0:
            self.fail("damp" if self.damp <= 0 else "update_frequency", "must be > 0", "use a positive number")
        structure = parse_mask_type(self.mask_type, f"!{self.tag}.mask_type")
        if structure.kind != "unstructured" and (structure.rows, structure.cols) != (1, 4):
            self.fail("mask_type", f"{structure.describe()} is not supported by OBS", "use unstructured or block4")
        if self.group == 4 and self.fisher_block_size % 4:
            self.fail("fisher_block_size", f"({self.fisher_block_size}) is not a multiple of 4",
                      "use a multiple of 4 with mask_type block4, e.g. 48")
        unknown = set(self.grad_sampler_kwargs or {}) - {"batch_size"}
        if unknown:
            self.fail("grad_sampler_kwargs", f"has unknown key {sorted(unknown)[0]!r}", "allowed: batch_size")

    @property
    def group(self) -> int:
        """Weights pruned together: 4 for 1×4 blocks, else 1."""
        return 1 if parse_mask_type(self.mask_type, f"!{self.tag}.mask_type").kind == "unstructured" else 4

    def initialize(self, state: SessionState) -> None:
        self.rt.params = resolve_params(state.model, self.params, f"!{self.tag}.params")
        for name, param in self.rt.params:
            if self.group == 4 and param.numel() % 4:
                self.fail("mask_type", f"block4 needs {name} to hold a multiple of 4 weights", "use unstructured")
        self.rt.window = window(self, state.steps_per_epoch)
        self.rt.progress = PruningProgress.of(self.rt.window)

    def update(self, state: SessionState, epoch: float) -> None:
        step = self.rt.progress.due(epoch)
        if step is None:
            return
        w = self.rt.window
        target = sparsity_at(epoch, w.start, w.end, self.init_sparsity, self.final_sparsity, self.inter_func)
        current = self._sparsity(state)
        if target > current:  # nothing to prune (e.g. init_sparsity 0 at start_epoch): no gradients, no moves
            for r in range(1, self.num_recomputations + 1):
                self._step(state, current + (target - current) * r / self.num_recomputations)
        state.record_update({"sparsity": self._sparsity(state)})
        if self.rt.progress.close(*step) and not self.leave_enabled:
            for name, _ in self.rt.params:
                state.masks.release(name)

    def finalize(self, state: SessionState) -> None:
        self.rt.progress.warn_if_unfinished(self.tag, state)

    def state_dict(self) -> dict:
        return self.rt.progress.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.rt.progress.load_state_dict(state)

    # ---- one OBS step -------------------------------------------------
    def _sparsity(self, state) -> float:
        return group_sparsity(state, self.rt.params)

    def _fisher_inverses(self, state) -> dict:
        """Stream ``num_grads`` gradients into F⁻¹ per parameter: {name: (n_blocks, B, B) float32 numpy}."""
        batch_size = (self.grad_sampler_kwargs or {}).get("batch_size")
        samples = state.sample_gradients(self.num_grads, batch_size, f"!{self.tag} gradients", self.rt.params)
        pruned = {name: state.masks.pruned(name) for name, _ in self.rt.params if name in state.masks}
        return obs.stream_fisher_inverses(self.rt.params, samples, self.num_grads, self.damp, self.fisher_block_size,
                                          pruned)

    @torch.no_grad()
    def _step(self, state, target: float) -> None:
        b, g = self.fisher_block_size, self.group
        finvs = self._fisher_inverses(state)
        scores, blocks = [], []
        unstable = 0
        for name, param in self.rt.params:
            w = obs.to_blocks(param.detach().float().cpu().reshape(-1), b)  # (n_blocks, B)
            blocks.append(w)
            finv = torch.from_numpy(finvs[name])
            unstable += int((torch.diagonal(finv, dim1=-2, dim2=-1) <= 0).sum())
            units = obs.saliency(w, finv, g).reshape(-1)[: param.numel() // g].clone()
            if name in state.masks:  # already pruned: chosen first, so masks only grow
                units[state.masks.pruned(name).cpu().reshape(-1, g).all(-1)] = float("-inf")
            scores.append(units)
        if unstable:
            state.warn(f"!{self.tag}: {unstable} Fisher-inverse diagonal entries are not positive (float32 "
                       "cancellation); those weights are kept — raise damp or lower the gradient scale")
        units_only = Structure("unstructured")  # scores are already per unit (weight or group of 4)
        if self.global_sparsity:
            chosen = select_lowest_global(scores, prune_count(target, torch.cat(scores), units_only))
        else:
            chosen = [select_lowest(s, prune_count(target, s, units_only)) for s in scores]
        for (name, param), units, w in zip(self.rt.params, chosen, blocks):
            pruned = units.cpu().repeat_interleave(g)
            if name in state.masks:  # keep every earlier zero, even in partly pruned groups
                pruned |= state.masks.pruned(name).cpu().reshape(-1)
            new = obs.update(w, torch.from_numpy(finvs[name]), obs.to_blocks(pruned, b).bool())
            param.copy_(new.reshape(-1)[: param.numel()].reshape(param.shape).to(param.device, param.dtype))
            state.masks.set(name, param, pruned.reshape(param.shape))
