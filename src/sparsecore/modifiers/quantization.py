"""``!QuantizationModifier``: quantization-aware training (and post-training quantization with ``--one_shot``).

SparseML's legacy fields and the newer ``scheme`` form are both accepted::

    - !QuantizationModifier
      start_epoch: 5.0
      submodules: [bert.embeddings, bert.encoder, classifier]
      exclude_module_types: [LayerNorm, Tanh]
      disable_quantization_observer_epoch: 7.0
    - !QuantizationModifier
      scheme: {input_activations: {num_bits: 8, symmetric: false},
               weights: {num_bits: 8, symmetric: true, strategy: channel}}
      ignore: [classifier]

At ``start_epoch`` fake-quant points are attached (see :mod:`sparsecore.quant.qat`); with
``num_calibration_steps`` their ranges are first calibrated on that many training batches. The model
stays fake-quantized after training (that is what gets exported); ``session.quantization`` holds the points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

from sparsecore.errors import SparsecoreError
from sparsecore.modifiers.base import EPOCH_EPS, Modifier, SessionState
from sparsecore.quant.qat import QuantConfig, QuantState
from sparsecore.quant.scheme import DEFAULT_ACTIVATIONS, DEFAULT_WEIGHTS, QuantArgs
from sparsecore.quant.sites import select_sites

SCHEME_KEYS = ("input_activations", "weights")
NO_FUSION = (None, "no_fuse", "fuse_module_conv_bn_relus", "conv_bn_relus")  # BERT has no Conv-BN to fuse


@dataclass(frozen=True, kw_only=True)
class QuantizationModifier(Modifier):
    start_epoch: float = -1.0  # SparseML: -1 = from the first step
    end_epoch: float = -1.0  # accepted for SparseML recipes; quantization stays on to the end
    submodules: tuple[str, ...] | None = None
    disable_quantization_observer_epoch: float | None = None
    freeze_bn_stats_epoch: float | None = None
    quantize_embeddings: bool = True
    quantize_linear_activations: bool = False  # nn.Linear *outputs*; inputs are always quantized
    exclude_module_types: tuple[str, ...] | None = None
    activation_bits: int | None = None
    weight_bits: int | None = None
    num_calibration_steps: int | None = None
    reduce_range: bool = False
    scheme: dict | None = None
    ignore: tuple[str, ...] | None = None
    observer: Literal["moving_average_minmax", "minmax"] = "moving_average_minmax"
    strict: bool = True  # False: `ignore` entries that match nothing are skipped (SparseML's meaning)
    # SparseML legacy fields: accepted where they describe what happens here, an error where they ask for more
    quantize_embedding_activations: bool = True  # an int8 table's rows are already on its grid
    quantize_conv_activations: bool = True  # convolutions are never quantized here (BERT has none)
    exclude_batchnorm: bool = True  # BatchNorm is never quantized here
    model_fuse_fn_name: str | None = None
    model_fuse_fn_kwargs: dict | None = None
    custom_quantizable_module_types: tuple[str, ...] | None = None
    activation_qconfig_kwargs: dict | None = None
    weight_qconfig_kwargs: dict | None = None
    tensorrt: bool = False
    scheme_overrides: dict | None = None
    START_MINUS_ONE_IS_ZERO = False  # -1 is this modifier's own "from the first step"

    def __post_init__(self) -> None:
        self._check_legacy()
        if self.end_epoch >= 0:
            self.check_epochs(max(self.start_epoch, 0.0), self.end_epoch, end_required=False)
        for field in ("disable_quantization_observer_epoch", "freeze_bn_stats_epoch"):
            value = getattr(self, field)
            if value is not None and value < max(self.start_epoch, 0.0):
                self.fail(field, f"({value}) is before start_epoch ({self.start_epoch})",
                          f"use an epoch >= start_epoch or remove {field}")
        if self.num_calibration_steps is not None and self.num_calibration_steps < 1:
            self.fail("num_calibration_steps", f"is {self.num_calibration_steps}", "use 1 or more (or omit it)")
        self.config()  # validates bits, strategies and the scheme

    def _check_legacy(self) -> None:
        """SparseML's legacy fields that would ask for behaviour not implemented here are errors."""
        if self.model_fuse_fn_name not in NO_FUSION:
            self.fail("model_fuse_fn_name", f"is {self.model_fuse_fn_name!r}",
                      "module fusion is not implemented (BERT-family models have no Conv-BN to fuse): drop it")
        unsupported = {
            "custom_quantizable_module_types": "custom quantizable module types are not implemented",
            "activation_qconfig_kwargs": "torch qconfig arguments are not used: give scheme.input_activations",
            "weight_qconfig_kwargs": "torch qconfig arguments are not used: give scheme.weights",
            "scheme_overrides": "per-module scheme overrides are not implemented: use ignore / submodules",
        }
        for name, why in unsupported.items():
            if getattr(self, name):
                self.fail(name, f"is {getattr(self, name)!r}", f"{why} (drop the field or leave it empty)")
        if self.tensorrt:
            self.fail("tensorrt", "is true", "TensorRT mode is not implemented: give "
                      "scheme: {input_activations: {symmetric: true}} for symmetric activations")

    def config(self) -> QuantConfig:
        """The legacy fields and ``scheme`` merged into one typed config."""
        where = f"!{self.tag}"
        weights, activations = DEFAULT_WEIGHTS, DEFAULT_ACTIVATIONS
        if self.scheme is not None:
            unknown = [k for k in self.scheme if k not in SCHEME_KEYS]
            if unknown:
                self.fail("scheme", f"has unknown key {unknown[0]!r}", f"allowed: {', '.join(SCHEME_KEYS)}")
            parts = {}
            for key in SCHEME_KEYS:
                value = self.scheme.get(key, {})
                if value is not None and not isinstance(value, dict):
                    self.fail(f"scheme.{key}", f"is {value!r}", "give a mapping (num_bits, symmetric, strategy) or null")
                base = DEFAULT_WEIGHTS if key == "weights" else DEFAULT_ACTIVATIONS
                parts[key] = None if value is None else QuantArgs.from_dict(
                    {**base.to_dict(), **value}, f"{where}.scheme.{key}")
            weights, activations = parts["weights"], parts["input_activations"]
        weights = self._bits(weights, self.weight_bits, "weight_bits", "weights")
        activations = self._bits(activations, self.activation_bits, "activation_bits", "input_activations")
        if activations is not None and self.reduce_range:
            activations = QuantArgs(**{**activations.to_dict(), "reduce_range": True}, where=activations.where)
        if activations is not None and activations.strategy != "tensor":
            self.fail("scheme.input_activations.strategy", f"is {activations.strategy!r}",
                      "activations are quantized per tensor (integer kernels need one scale per input)")
        return QuantConfig(weights, activations, self.quantize_linear_activations, self.observer)

    def _bits(self, args: QuantArgs | None, bits: int | None, field: str, key: str) -> QuantArgs | None:
        if bits is None:
            return args
        if args is None:
            self.fail(field, f"is set but scheme.{key} is null", f"drop {field} or give scheme.{key}")
        if self.scheme is not None and key in self.scheme and self.scheme[key].get("num_bits", bits) != bits:
            self.fail(field, f"({bits}) contradicts scheme.{key}.num_bits", "give the bit width in one place")
        return QuantArgs(**{**args.to_dict(), "num_bits": bits}, where=f"!{self.tag}.{field}")

    def last_epoch(self) -> float:
        return self.end_epoch

    # ---- lifecycle ----------------------------------------------------
    def initialize(self, state: SessionState) -> None:
        self.rt.sites = select_sites(state.model, submodules=self.submodules, exclude_types=self.exclude_module_types,
                                     ignore=self.ignore, embeddings=self.quantize_embeddings, where=f"!{self.tag}",
                                     strict=self.strict)
        if not any(s.kind == "matmul" for s in self.rt.sites) and not getattr(self.rt, "warned", False):
            self.rt.warned = True
            state.warn(f"!{self.tag}: no module declares attention matmuls, they stay fp32 — for BERT models call "
                       "sparsecore.adapters.quant_attention.quantizable_attention(model) first (the CLI does)")
        self.rt.session = state
        self.rt.qstate = getattr(self.rt, "qstate", None)
        self.rt.frozen = getattr(self.rt, "frozen", False)
        self.rt.bn_frozen = getattr(self.rt, "bn_frozen", False)

    def update(self, state: SessionState, epoch: float) -> None:
        if self.rt.qstate is None and epoch >= self.start_epoch - EPOCH_EPS:
            self._start(state)
        if self.rt.qstate is None:
            return
        freeze_at = self.disable_quantization_observer_epoch
        if not self.rt.frozen and freeze_at is not None and epoch >= freeze_at - EPOCH_EPS:
            self.rt.qstate.freeze()
            self.rt.frozen = True
            state.record_update({"observers_frozen": 1.0})
        bn_at = self.freeze_bn_stats_epoch
        if not self.rt.bn_frozen and bn_at is not None and epoch >= bn_at - EPOCH_EPS:
            freeze_batchnorm_stats(state.model)
            self.rt.bn_frozen = True
            state.record_update({"batchnorm_frozen": 1.0})

    def _start(self, state) -> None:
        self.rt.qstate = QuantState(self.config()).attach(state.model, self.rt.sites)
        state.quantization = self.rt.qstate
        state.record_update({"quantized_sites": float(len(self.rt.sites))})
        if state.one_shot or self.num_calibration_steps is not None:
            self.calibrate(state, self.num_calibration_steps)
        if state.one_shot:  # post-training quantization: ranges are final once calibrated
            self.rt.qstate.freeze()
            self.rt.frozen = True

    def calibrate(self, state, steps: int | None) -> None:
        qstate = self.rt.qstate
        qstate.calibrating = True
        try:
            for _ in state.run_forward(steps, "calibrating quantization ranges"):
                pass
        finally:
            qstate.calibrating = False

    def finalize(self, state: SessionState) -> None:
        if self.rt.qstate is not None and not self.rt.frozen:
            self.rt.qstate.freeze()  # evaluation and export see the ranges training ended with
            self.rt.frozen = True

    def state_dict(self) -> dict:
        return {"started": self.rt.qstate is not None, "frozen": self.rt.frozen, "bn_frozen": self.rt.bn_frozen}

    def load_state_dict(self, state: dict) -> None:
        if state["started"] and self.rt.qstate is None:
            self.rt.qstate = QuantState(self.config()).attach(self.rt.session.model, self.rt.sites)
            self.rt.session.quantization = self.rt.qstate
        self.rt.frozen, self.rt.bn_frozen = state["frozen"], state["bn_frozen"]

    def tensor_state(self) -> dict:
        return {} if self.rt.qstate is None else self.rt.qstate.tensors()

    def load_tensor_state(self, tensors: dict) -> None:
        if self.rt.qstate is not None:
            self.rt.qstate.load_ranges(tensors, frozen=self.rt.frozen)
            self.rt.qstate.observing = not self.rt.frozen
        if self.rt.bn_frozen:
            freeze_batchnorm_stats(self.rt.session.model)


def freeze_batchnorm_stats(model: nn.Module) -> int:
    """Stop BatchNorm running-stat updates (momentum 0); returns how many layers were frozen."""
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in layers:
        m.momentum = 0.0
    return len(layers)


def check_training_end(modifier: QuantizationModifier, end: float | None) -> None:
    """Quantization must start before training ends (else nothing is ever quantized)."""
    if end is not None and modifier.start_epoch >= end - EPOCH_EPS:
        raise SparsecoreError(f"!{modifier.tag}.start_epoch ({modifier.start_epoch:g}) is not before the end of "
                              f"training (epoch {end:g})", "recipe",
                              "start quantization earlier or train longer (num_epochs / end_epoch)")
