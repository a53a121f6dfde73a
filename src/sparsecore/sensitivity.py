"""Sensitivity analysis: prune one layer alone, over a grid of sparsities, and measure what it costs.

For each method (``magnitude``: lowest |w|; ``obs``: lowest OBS saliency w²/(2[F⁻¹]ᵢᵢ) with the optimal
update of the surviving weights, oBERT arXiv:2203.07259 eqs. 4–5, F⁻¹ block-diagonal from ``num_grads``
gradients), each layer and each sparsity: prune exactly round(s·n) weights of that layer, call
``evaluate()`` (the caller's validation loss/metric), put the weights back. Memory: one layer's copy, and for
OBS the F⁻¹ of a chunk of layers at a time (≤ ``MAX_FISHER_WEIGHTS``·B floats; gradients sampled once a chunk).

:meth:`SensitivityResult.allocate` turns the loss curves into per-layer sparsities at an overall target
(greedy on the loss increase per pruned weight, each layer within target ± spread, the total exact), and
:meth:`SensitivityResult.recipe` writes them as SparseML's ``final_sparsity: {0.9: [...], …}``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import torch
from torch import nn
from tqdm import tqdm

from sparsecore.errors import SparsecoreError
from sparsecore.pruning import obs
from sparsecore.pruning.schedule import exact_k
from sparsecore.pruning.select import select_lowest

METHODS = ("magnitude", "obs")
MAX_FISHER_WEIGHTS = 2_000_000  # per chunk: F⁻¹ of 2M weights at B = 50 is 400 MB
SPREAD = 0.15  # default: each layer's allocated sparsity within target ± SPREAD


def _monotone(xs: list[float], ys: list[float]):
    """Piecewise-linear through (xs, running max of ys clipped at 0): a non-decreasing cost curve."""
    best, fixed = 0.0, []
    for y in ys:
        best = max(best, y)
        fixed.append(best)

    def at(x: float) -> float:
        for (x0, y0), (x1, y1) in zip(zip(xs, fixed), zip(xs[1:], fixed[1:])):
            if x <= x1 + 1e-12:
                return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
        return fixed[-1]

    return at


@dataclass
class SensitivityResult:
    baseline: dict[str, float]  # evaluate() of the unpruned model
    layers: list[str]
    numels: list[int]
    sparsities: list[float]
    # method → layer → one evaluate() result per sparsity (same order as ``sparsities``)
    results: dict[str, dict[str, list[dict[str, float]]]] = field(default_factory=dict)
    rows: int = 0  # validation rows evaluate() used
    num_grads: int = 0
    search: dict = field(default_factory=dict)  # the joint search, when one ran (sparsecore.joint_allocation)

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def from_json(cls, path: str | Path) -> "SensitivityResult":
        return cls(**json.loads(Path(path).read_text()))

    def increase(self, method: str, key: str = "loss") -> dict[str, list[float]]:
        """``key`` minus its baseline, per layer and sparsity (for a metric, a drop is negative)."""
        return {layer: [p[key] - self.baseline[key] for p in points]
                for layer, points in self.results[method].items()}

    def curve(self, method: str, layer: str, key: str = "loss") -> Callable[[float], float]:
        """The layer's monotone cost curve (increase of ``key`` vs sparsity), linear between grid points."""
        return _monotone([0.0, *self.sparsities], [0.0, *self.increase(method, key)[layer]])

    def slope(self, method: str, layer: str, s: float, key: str = "loss", h: float = 0.02) -> float:
        """Increase of ``key`` per pruned weight of the layer, just above sparsity ``s`` (from its curve)."""
        at = self.curve(method, layer, key)
        hi = min(s + h, self.sparsities[-1])
        if hi <= s:
            return float("inf")
        return (at(hi) - at(s)) / ((hi - s) * self.numels[self.layers.index(layer)])

    def allocate(self, target: float, method: str, key: str = "loss", spread: float = SPREAD,
                 step: float = 0.01) -> dict[str, float]:
        """Per-layer sparsities with ``Σ nᵢ·sᵢ = target·Σ nᵢ`` that keep the summed loss increase small.

        Each layer's curve is made monotone (more pruning never costs less: a dip is noise of the few rows) and
        read between grid points linearly; every layer stays within ``target ± spread`` (single-layer costs do
        not add up at high sparsity: unbounded, the cheap layers would all be pushed to the top). Greedy in
        ``step`` increments on the lowest loss increase per pruned weight; the last increment is cut so the
        total is exact."""
        top = self.sparsities[-1]
        if not 0.0 < target <= top:
            raise SparsecoreError(f"target sparsity {target} is outside (0, {top:g}]", "--target_sparsity",
                                  f"use a target up to the largest measured sparsity {top:g}")
        curves = {layer: self.curve(method, layer, key) for layer in self.layers}
        lo, hi = max(0.0, target - spread), min(top, target + spread)
        level = {layer: lo for layer in self.layers}
        numel = dict(zip(self.layers, self.numels))
        gap = target * sum(self.numels) - lo * sum(self.numels)

        def marginal(layer: str) -> float:  # loss increase per pruned weight of the next increment
            s0 = level[layer]
            s1 = min(s0 + step, hi)
            return (curves[layer](s1) - curves[layer](s0)) / ((s1 - s0) * numel[layer])

        while gap > 0.5:
            open_layers = [n for n in self.layers if level[n] < hi - 1e-12]
            best = min(open_layers, key=lambda n: (marginal(n), self.layers.index(n)))
            rise = min(step, hi - level[best], gap / numel[best])
            level[best] += rise
            gap -= rise * numel[best]
        return level

    def recipe(self, target: float, method: str, key: str = "loss", spread: float = SPREAD,
               allocation: dict[str, float] | None = None) -> str:
        """A GMP recipe whose ``final_sparsity`` map holds the allocation (sparsities rounded to 4 digits):
        ``allocation`` when given (e.g. searched), else :meth:`allocate`'s."""
        groups: dict[float, list[str]] = {}
        searched = allocation is not None
        for layer, s in (allocation if searched else self.allocate(target, method, key, spread)).items():
            groups.setdefault(round(s, 4), []).append(layer)
        how = (f"searched with all layers pruned together on {self.search.get('rows', 0)} training rows"
               if searched else f"{method} curves of {key} on {self.rows} rows")
        lines = [f"# sensitivity-derived: {target:g} overall over {len(self.layers)} layers, each within ±{spread:g} "
                 f"({how}); train with it (3 epochs, pruning over epochs 0-2), or apply it with --one_shot",
                 "training_modifiers:", "  - !EpochRangeModifier", "    end_epoch: 3", "",
                 "pruning_modifiers:", "  - !GMPruningModifier", "    final_sparsity:"]
        for s in sorted(groups, reverse=True):
            if s > 0:
                lines.append(f"      {s}: [{', '.join(groups[s])}]")
        lines += ["    start_epoch: 0", "    end_epoch: 2", "    update_frequency: 0.5", ""]
        return "\n".join(lines)


def analyze(model: nn.Module, layers: list[tuple[str, nn.Parameter]], sparsities: Iterable[float],
            evaluate: Callable[[], dict[str, float]], methods: Iterable[str] = METHODS,
            grad_sampler: Callable[[int], Iterable[None]] | None = None, num_grads: int = 32, damp: float = 1e-7,
            fisher_block_size: int = 50, rows: int = 0) -> SensitivityResult:
    """Measure every (method, layer, sparsity); see the module docstring. ``grad_sampler(count)`` yields after
    each of ``count`` backward passes (OBS only); ``evaluate()`` must not change the model."""
    grid = sorted(float(s) for s in sparsities)
    methods = list(methods)
    if not grid or any(not 0.0 < s < 1.0 for s in grid):
        raise SparsecoreError(f"sparsities {grid} must be in (0, 1)", "--sparsities", "e.g. 0.5,0.7,0.8,0.9,0.95")
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or not methods:
        raise SparsecoreError(f"unknown method {unknown[0] if unknown else '(none)'}", "--methods",
                              f"use {', '.join(METHODS)}")
    if "obs" in methods and grad_sampler is None:
        raise SparsecoreError("OBS sensitivity needs gradients", "analyze()", "pass grad_sampler=")
    was_training = model.training
    model.eval()
    result = SensitivityResult(evaluate(), [n for n, _ in layers], [p.numel() for _, p in layers], grid,
                               rows=rows, num_grads=num_grads if "obs" in methods else 0)
    bar = tqdm(total=len(methods) * len(layers) * len(grid), desc="sensitivity", unit="eval")
    try:
        for method in methods:
            out = result.results.setdefault(method, {})
            for chunk in _chunks(layers) if method == "obs" else [[layer] for layer in layers]:
                finvs = _fisher(chunk, grad_sampler, num_grads, damp, fisher_block_size) if method == "obs" else {}
                for name, param in chunk:
                    out[name] = []
                    for s in grid:
                        with _pruned(param, s, finvs.get(name), fisher_block_size):
                            out[name].append(evaluate())
                        bar.update()
    finally:
        bar.close()
        model.train(was_training)
    return result


def _chunks(layers):
    chunk, size = [], 0
    for name, param in layers:
        if chunk and size + param.numel() > MAX_FISHER_WEIGHTS:
            yield chunk
            chunk, size = [], 0
        chunk.append((name, param))
        size += param.numel()
    if chunk:
        yield chunk


def _fisher(chunk, grad_sampler, num_grads: int, damp: float, b: int) -> dict:
    """F⁻¹ per layer of ``chunk`` from ``num_grads`` sampled gradients: {name: (n_blocks, B, B) float32}."""
    finvs = obs.stream_fisher_inverses(chunk, grad_sampler(num_grads), num_grads, damp, b)
    return {name: torch.from_numpy(f) for name, f in finvs.items()}


class pruned_to:
    """Context: every layer of ``params`` ({name: parameter}) magnitude-pruned (exact k per layer) to its
    sparsity in ``allocation`` at once; all restored on exit."""

    def __init__(self, params: dict[str, nn.Parameter], allocation: dict[str, float]) -> None:
        self.layers = [_pruned(params[n], s, None, 0) for n, s in allocation.items()]

    def __enter__(self) -> None:
        self.entered: list[_pruned] = []
        try:
            for layer in self.layers:
                layer.__enter__()
                self.entered.append(layer)
        except BaseException:
            self.__exit__()
            raise

    def __exit__(self, *exc) -> None:
        for layer in reversed(self.entered):
            layer.__exit__()
        self.entered = []


class _pruned:
    """Context: ``param`` pruned to ``sparsity`` (magnitude, or OBS with ``finv``), restored on exit."""

    def __init__(self, param: nn.Parameter, sparsity: float, finv: torch.Tensor | None, b: int) -> None:
        self.param, self.sparsity, self.finv, self.b = param, sparsity, finv, b

    @torch.no_grad()
    def __enter__(self) -> None:
        p = self.param
        self.saved = p.detach().clone()
        flat = p.detach().float().cpu().reshape(-1)
        k = exact_k(self.sparsity, flat.numel())
        if self.finv is None:
            p.masked_fill_(select_lowest(flat.abs(), k).reshape(p.shape).to(p.device), 0.0)
            return
        w = obs.to_blocks(flat, self.b)  # (n_blocks, B)
        scores = obs.saliency(w, self.finv).reshape(-1)[: flat.numel()]
        pruned = obs.to_blocks(select_lowest(scores, k).float(), self.b).bool()
        new = obs.update(w, self.finv, pruned).reshape(-1)[: flat.numel()]
        p.copy_(new.reshape(p.shape).to(p.device, p.dtype))

    @torch.no_grad()
    def __exit__(self, *exc) -> None:
        self.param.copy_(self.saved)
