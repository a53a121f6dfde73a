"""Attach fake-quant points to a model's sites and take them off again.

The forward of each quantized ``nn.Linear``/``nn.Embedding`` is replaced by an instance attribute
(removed by :meth:`QuantState.remove`); matmul hosts get ``sparsecore_matmul_quant``. Parameters
are untouched (the optimizer and pruning masks keep working) and the fake-quant points live
outside the model, so ``state_dict``/``save_pretrained`` stay plain float checkpoints.
:meth:`QuantState.save` writes the points' configuration and ranges next to them.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from sparsecore.errors import SparsecoreError
from sparsecore.quant.fake_quant import FakeQuantize
from sparsecore.quant.primitives import fake_quantize_bias
from sparsecore.quant.scheme import QuantArgs
from sparsecore.quant.sites import Site

CONFIG_FILE = "sparsecore_quantization.json"
RANGES_FILE = "sparsecore_quantization.safetensors"
MATMUL_QUANT_ATTR = "sparsecore_matmul_quant"


@dataclass(frozen=True)
class QuantConfig:
    weights: QuantArgs | None
    activations: QuantArgs | None
    output_activations: bool = False  # also quantize nn.Linear outputs (quantize_linear_activations)
    observer: str = "moving_average_minmax"


class QuantState:
    """Every fake-quant point of one model, by name (``<module>.input|weight|output`` or ``<module>.<mm>.a|b``)."""

    def __init__(self, config: QuantConfig) -> None:
        self.config = config
        self.points: dict[str, FakeQuantize] = {}
        self.sites: list[Site] = []
        self.observing = True  # False once observers are disabled (frozen ranges)
        self.calibrating = False  # observe in eval mode too (post-training calibration)
        self._hosts: list[nn.Module] = []
        self._modules: dict[str, nn.Module] = {}

    def observe_now(self, training: bool) -> bool:
        return self.observing and (training or self.calibrating)

    # ---- attach / remove ----------------------------------------------
    def attach(self, model: nn.Module, sites: list[Site]) -> "QuantState":
        modules = dict(model.named_modules())
        for site in sites:
            module = modules[site.name]
            if site.kind == "linear":
                self._attach_linear(site.name, module)
            elif site.kind == "embedding":
                self._attach_embedding(site.name, module)
            else:
                self._attach_matmuls(site, module)
            self.sites.append(site)
            self._hosts.append(module)
            self._modules[site.name] = module
        return self

    def _point(self, name: str, args: QuantArgs | None, **kw) -> FakeQuantize | None:
        if args is None:
            return None
        point = FakeQuantize(args, observer=self.config.observer, **kw)
        self.points[name] = point
        return point

    def _attach_linear(self, name: str, module: nn.Linear) -> None:
        cfg = self.config
        fq_in = self._point(f"{name}.input", cfg.activations)
        fq_w = self._point(f"{name}.weight", cfg.weights, axis=0, is_weight=True)
        fq_out = self._point(f"{name}.output", cfg.activations) if cfg.output_activations else None

        def forward(x: torch.Tensor) -> torch.Tensor:
            observe = self.observe_now(module.training)
            if fq_in is not None:
                x = fq_in(x, observe)
            if fq_w is None:
                y = F.linear(x, module.weight, module.bias)
            elif torch.onnx.is_in_onnx_export():  # MatMul(x, DequantizeLinear(Wᵀ codes)) + bias (constant)
                y = torch.matmul(x, fq_w(module.weight, observe, transpose=True))
                y = y if module.bias is None else y + fq_w.export_bias
            else:
                w = fq_w(module.weight, observe)
                y = F.linear(x, w, bias_on_grid(module.bias, fq_in, fq_w))
            return y if fq_out is None else fq_out(y, observe)

        module.forward = forward

    def _attach_embedding(self, name: str, module: nn.Embedding) -> None:
        fq_w = self._point(f"{name}.weight", self.config.weights, axis=1, is_weight=True)  # channel = hidden column
        if fq_w is None:
            return

        def forward(ids: torch.Tensor) -> torch.Tensor:
            w = fq_w(module.weight, self.observe_now(module.training))
            return F.embedding(ids, w, module.padding_idx, module.max_norm, module.norm_type,
                               module.scale_grad_by_freq, module.sparse)

        module.forward = forward

    def _attach_matmuls(self, site: Site, module: nn.Module) -> None:
        pairs = {mm: (self._point(f"{site.name}.{mm}.a", self.config.activations),
                      self._point(f"{site.name}.{mm}.b", self.config.activations)) for mm in site.matmuls}
        setattr(module, MATMUL_QUANT_ATTR, MatMulQuant(self, module, pairs))

    def remove(self) -> None:
        """Restore the float forwards (the points and their ranges are kept)."""
        for module in self._hosts:
            module.__dict__.pop("forward", None)
            module.__dict__.pop(MATMUL_QUANT_ATTR, None)
        self._hosts, self._modules = [], {}

    # ---- observers ----------------------------------------------------
    def freeze(self) -> None:
        """Stop updating ranges (weights keep the range of their last observed values)."""
        self.observing = False
        for point in self.points.values():
            if point.observer.ready:
                point.observer.frozen = True

    @contextmanager
    def exporting(self):
        """Freeze ranges and precompute every weight's integer codes for the duration of an ONNX export."""
        self.freeze()
        for site in self.sites:
            point = self.points.get(f"{site.name}.weight")
            if point is None:
                continue
            module = self._modules[site.name]
            point.export_codes = point.codes(module.weight)
            if site.kind == "linear" and module.bias is not None:
                point.export_bias = bias_on_grid(module.bias, self.points.get(f"{site.name}.input"), point).detach()
        try:
            yield self
        finally:
            for point in self.points.values():
                point.export_codes = point.export_bias = None

    # ---- persistence --------------------------------------------------
    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        save_file(self.tensors(), str(folder / RANGES_FILE))
        cfg = self.config
        doc = {"weights": cfg.weights and cfg.weights.to_dict(), "activations": cfg.activations and cfg.activations.to_dict(),
               "output_activations": cfg.output_activations, "observer": cfg.observer, "observing": self.observing,
               "sites": [{"name": s.name, "kind": s.kind, "matmuls": list(s.matmuls)} for s in self.sites]}
        (folder / CONFIG_FILE).write_text(json.dumps(doc, indent=1))

    def load_ranges(self, ranges: dict[str, torch.Tensor], frozen: bool) -> None:
        for name, p in self.points.items():
            if f"{name}.min" in ranges:
                p.observer.min_val, p.observer.max_val = ranges[f"{name}.min"], ranges[f"{name}.max"]
                p.observer.frozen = frozen

    @classmethod
    def load(cls, folder: str | Path, model: nn.Module) -> "QuantState | None":
        """Re-attach what :meth:`save` wrote (ranges frozen); None when ``folder`` holds no quantization."""
        folder = Path(folder)
        if not (folder / CONFIG_FILE).is_file():
            return None
        try:
            doc = json.loads((folder / CONFIG_FILE).read_text())
            args = {k: doc[k] and QuantArgs.from_dict(doc[k], k) for k in ("weights", "activations")}
            state = cls(QuantConfig(args["weights"], args["activations"], doc["output_activations"], doc["observer"]))
            sites = [Site(s["name"], s["kind"], tuple(s["matmuls"])) for s in doc["sites"]]
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise SparsecoreError(f"unreadable quantization config ({exc})", str(folder / CONFIG_FILE),
                                  "re-run the training that wrote it") from None
        modules = dict(model.named_modules())
        missing = [s.name for s in sites if s.name not in modules]
        if missing:
            raise SparsecoreError(f"quantized module {missing[0]!r} is not in the model", str(folder / CONFIG_FILE),
                                  "load the model this quantization was trained with")
        state.attach(model, sites)
        state.load_ranges(load_file(str(folder / RANGES_FILE)), frozen=True)
        state.observing = False
        return state

    def tensors(self) -> dict[str, torch.Tensor]:
        """Observed ranges: ``<point>.min`` / ``<point>.max``."""
        return {f"{n}.{k}": getattr(p.observer, f"{k}_val").contiguous()
                for n, p in self.points.items() if p.observer.ready for k in ("min", "max")}


def bias_on_grid(bias: torch.Tensor | None, fq_in: FakeQuantize | None, fq_w: FakeQuantize) -> torch.Tensor | None:
    """The bias as the integer graph adds it: on the int32 grid ``s_input · s_weight`` when both are quantized."""
    if bias is None or fq_in is None:
        return bias
    return fake_quantize_bias(bias, fq_in.qparams()[0] * fq_w.qparams()[0])


class MatMulQuant:
    """Fake-quant for the two inputs of each activation × activation product of one host module."""

    def __init__(self, state: QuantState, host: nn.Module,
                 pairs: dict[str, tuple[FakeQuantize | None, FakeQuantize | None]]) -> None:
        self.state, self.host, self.pairs = state, host, pairs

    def __call__(self, which: str, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if which not in self.pairs:
            return a, b
        fq_a, fq_b = self.pairs[which]
        observe = self.state.observe_now(self.host.training)
        return (a if fq_a is None else fq_a(a, observe)), (b if fq_b is None else fq_b(b, observe))
