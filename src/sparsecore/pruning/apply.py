"""Turn scores and a target sparsity into masks on a group of parameters.

Pure of lifecycle: callers (pruning modifiers) pass the parameters, a scoring
function and the target; this module builds exact-k masks, monotonic with the
masks already in ``masks`` (units already fully pruned score −inf, so they are
chosen first and stay pruned).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from sparsecore.pruning.masks import MaskSet
from sparsecore.pruning.schedule import exact_k
from sparsecore.pruning.select import select_lowest, select_lowest_global
from sparsecore.pruning.structure import NM_SLACK, Structure, element_units_pruned, expand_units, unit_scores

ScoreFn = Callable[[str, nn.Parameter], torch.Tensor]


def magnitude_scores(name: str, param: nn.Parameter) -> torch.Tensor:
    """|w| — the magnitude score (float32 copy, shape of the weight)."""
    return param.detach().abs().float()


def _units(name: str, param: nn.Parameter, masks: MaskSet, structure: Structure, score_fn: ScoreFn) -> torch.Tensor:
    units = unit_scores(score_fn(name, param), structure).clone()
    if name in masks:
        units[element_units_pruned(masks.pruned(name), structure)] = float("-inf")
    return units


def prune_count(target: float, units: torch.Tensor, structure: Structure) -> int:
    """Units to prune: exact-k of the target, never fewer than already pruned (masks only grow,
    even when another modifier pruned first), never more than the N:M candidates."""
    k = exact_k(target, units.numel())
    if structure.kind == "nm":
        if target >= structure.max_sparsity - NM_SLACK:
            k = exact_k(structure.max_sparsity, units.numel())
        k = min(k, int(torch.isfinite(units).sum()) + int((units == float("-inf")).sum()))
    return max(k, int((units == float("-inf")).sum()))


@torch.no_grad()
def prune_layerwise(params: list[tuple[str, nn.Parameter]], targets: list[float], masks: MaskSet,
                    structure: Structure, score_fn: ScoreFn = magnitude_scores) -> None:
    """Each parameter pruned to its own target sparsity (exactly round(s·units) units)."""
    for (name, param), target in zip(params, targets):
        units = _units(name, param, masks, structure, score_fn)
        chosen = select_lowest(units, prune_count(target, units, structure))
        masks.set(name, param, expand_units(chosen, param.shape, structure))


@torch.no_grad()
def prune_global(params: list[tuple[str, nn.Parameter]], target: float, masks: MaskSet,
                 structure: Structure, score_fn: ScoreFn = magnitude_scores) -> None:
    """One target over all ``params`` together: scores compete across layers."""
    units = [_units(name, param, masks, structure, score_fn) for name, param in params]
    flat = torch.cat(units)
    k = prune_count(target, flat, structure)
    for (name, param), chosen in zip(params, select_lowest_global(units, k)):
        masks.set(name, param, expand_units(chosen, param.shape, structure))


def zero_fraction(params: list[tuple[str, nn.Parameter]]) -> float:
    total = sum(p.numel() for _, p in params)
    zeros = sum(int((p.detach() == 0).sum()) for _, p in params)
    return zeros / max(1, total)
