"""The one modifier base class and its typed-field validation.

Lifecycle (driven by :class:`sparsecore.session.Session`):
``initialize(state)`` once → ``update(state, epoch)`` at the start of every
batch → ``modify_loss(...)`` once per batch → ``finalize(state)`` once.
Concrete modifiers are frozen dataclasses: their fields are the recipe fields,
validated on construction; run-time state lives in ``self.rt`` (a plain object).
What a modifier may see and change of the session driving it is :class:`SessionState`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Literal, Protocol

import torch
from torch import nn

from sparsecore.errors import SparsecoreError

if TYPE_CHECKING:
    from sparsecore.pruning.masks import MaskSet
    from sparsecore.quant.qat import QuantState

Params = tuple[str, ...]
EPOCH_EPS = 1e-9  # fractional epochs are sums of 1/steps_per_epoch: compare with this slack
LOGGING_ONLY = "a SparseML logging option; sparsecore logs through the HF Trainer and Python logging"
UNUSED_BY_SPARSEML = "SparseML accepted it and did not use it either"
STEP_FIELDS = ("start_step", "end_step", "update_frequency_steps")  # -1: unset (the epoch field rules)
MAX_NUMBER = 1e15  # recipe numbers are epochs, steps, counts, rates and sparsities: anything larger is a mistake


class SessionState(Protocol):
    """The part of :class:`sparsecore.session.Session` a modifier may use: modifiers never reach into each
    other, only into this."""

    model: nn.Module
    optimizer: torch.optim.Optimizer | None
    masks: MaskSet
    steps_per_epoch: int
    problem_type: str
    teacher_disabled: bool
    one_shot: bool  # applied without training (post-training quantization freezes its ranges)
    quantization: QuantState | None  # set by the quantization modifier when it starts
    dropped_layers: list[str]  # set by the layer-pruning modifier

    @property
    def epoch(self) -> float: ...

    def warn(self, message: str) -> None: ...

    def record_update(self, values: dict[str, float]) -> None: ...  # what this modifier just did, for the logs

    def record_losses(self, values: dict[str, Any]) -> None: ...  # loss parts of this batch, for the logs

    def require_optimizer(self, tag: str) -> None: ...

    def sample_gradients(self, count: int, batch_size: int | None, desc: str,
                         params: list[tuple[str, nn.Parameter]] | None = None) -> Iterable[None]: ...

    def run_forward(self, count: int | None, desc: str) -> Iterable[None]: ...


@dataclass(frozen=True, kw_only=True)
class Modifier:
    tag: str = field(default="", repr=False, compare=False)  # the recipe tag it was written with
    rt: types.SimpleNamespace = field(default_factory=types.SimpleNamespace, init=False, repr=False, compare=False)
    # recipe fields SparseML accepted that change nothing here: field → why (dropped, reported once in notes)
    IGNORED_FIELDS: ClassVar[dict[str, str]] = {"log_types": LOGGING_ONLY}
    # SparseML's start_epoch -1 means "from the first step": read as 0 (False where -1 is an error)
    START_MINUS_ONE_IS_ZERO: ClassVar[bool] = True
    CHANGES_STRUCTURE: ClassVar[bool] = False  # initialized before the others (they see the changed model)
    SETS_LR: ClassVar[bool] = False  # owns the learning rate (the HF scheduler is then held constant)

    # ---- construction -------------------------------------------------
    @classmethod
    def from_fields(cls, tag: str, fields: dict, where: str, defaults: dict | None = None) -> "Modifier":
        """Build from recipe ``fields``: unknown, missing and mistyped fields are errors."""
        known = [f for f in dataclasses.fields(cls) if f.init and f.name != "tag"]
        allowed = [f.name for f in known]
        hints = typing.get_type_hints(cls)
        values = dict(defaults or {})
        if cls.START_MINUS_ONE_IS_ZERO and fields.get("start_epoch") in (-1, -1.0) and "start_epoch" in allowed:
            fields = {**fields, "start_epoch": 0.0}
        for key, value in fields.items():
            if key not in allowed:
                raise SparsecoreError(f"unknown field {key!r} for !{tag}", where,
                                      f"allowed fields: {', '.join(allowed)}")
            values[key] = _coerce(value, hints[key], f"!{tag}.{key}", where)
        missing = [f.name for f in known if f.name not in values
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            raise SparsecoreError(f"!{tag} is missing required field(s) {', '.join(missing)}", where,
                                  f"add {missing[0]}: <value>")
        try:
            return cls(tag=tag, **values)
        except SparsecoreError as exc:  # re-anchor field errors at the recipe location
            raise SparsecoreError(exc.what, where, exc.fix) from None

    def release(self, state: SessionState) -> None:
        """Undo what :meth:`initialize` changed in the model (``Session.validate`` changes nothing)."""

    def fail(self, field_name: str, problem: str, fix: str) -> typing.NoReturn:
        raise SparsecoreError(f"!{self.tag}.{field_name} {problem}", "recipe", fix)

    def check_epochs(self, start: float, end: float, *, end_required: bool) -> None:
        if start < 0:
            self.fail("start_epoch", f"is {start}", "use an epoch >= 0")
        if end_required and end < 0:
            self.fail("end_epoch", f"is {end}", "give an end_epoch >= start_epoch")
        if end >= 0 and end < start:
            self.fail("end_epoch", f"({end}) is before start_epoch ({start})", "make end_epoch >= start_epoch")

    def recipe_fields(self) -> dict:
        """The fields as they would be written back into a recipe."""
        out = {}
        for f in dataclasses.fields(self):
            if f.init and f.name != "tag":
                value = getattr(self, f.name)
                if f.name in STEP_FIELDS and value == -1:
                    continue  # unset: written recipes stay SparseML-readable
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    # ---- lifecycle (override what you need) ---------------------------
    def last_epoch(self) -> float:
        """Epoch at which this modifier stops acting (-1: no bound, or bound in steps)."""
        return float(getattr(self, "end_epoch", -1.0))

    def last_step(self) -> int:
        """Optimizer step at which this modifier stops acting, when its end is given in steps (else -1)."""
        return int(getattr(self, "end_step", -1))

    def initialize(self, state: SessionState) -> None:  # noqa: D401 - lifecycle hook
        """Prepare for training (resolve parameters, read settings)."""

    def update(self, state: SessionState, epoch: float) -> None:
        """Act at the start of a batch at fractional ``epoch``."""

    def modify_loss(self, state: SessionState, epoch: float, loss: torch.Tensor, student: Any,
                    teacher: Any) -> torch.Tensor:
        return loss

    def finalize(self, state: SessionState) -> None:
        """Leave the model in its final state."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` saved."""

    def tensor_state(self) -> dict[str, torch.Tensor]:
        """Tensors to checkpoint beside :meth:`state_dict` (saved as safetensors)."""
        return {}

    def load_tensor_state(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`tensor_state` saved (called right after :meth:`load_state_dict`)."""


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if origin is tuple:
        return "a name or list of names"
    if tp is Any:
        return "any value"
    return getattr(tp, "__name__", str(tp))


def _bounded(value: Any) -> bool:
    """A number (not a bool) of magnitude at most ``MAX_NUMBER`` (compared exactly: a 400-digit int too)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) <= MAX_NUMBER


def _coerce(value: Any, tp: Any, name: str, where: str) -> Any:
    """Check ``value`` against annotation ``tp`` (the small set recipes use)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return _coerce(value, arg, name, where)
            except SparsecoreError:
                continue
    elif origin is Literal:
        if value in typing.get_args(tp):
            return value
    elif origin is tuple:
        items = [value] if isinstance(value, str) else value
        if isinstance(items, (list, tuple)) and items and all(isinstance(v, str) for v in items):
            return tuple(items)
    elif tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
        if type(value) is int and value in (0, 1):  # SparseML recipes write 1 / 0 (often through eval)
            return bool(value)
    elif tp is float:
        if isinstance(value, str):  # YAML 1.1 reads `1e-7` (no dot) as a string; recipes mean the number
            try:
                value = float(value)
            except ValueError:
                pass
        if _bounded(value):  # finite, too (nan and inf fail the bound)
            return float(value)
    elif tp is int:
        if isinstance(value, int) and _bounded(value):
            return value
    elif tp is str:
        if isinstance(value, str):
            return value
    elif tp is dict:
        if isinstance(value, dict):
            return value
    elif tp is list:
        if isinstance(value, list):
            return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not _bounded(value):
        text = repr(value) if len(repr(value)) <= 24 else f"{repr(value)[:12]}…({len(repr(value))} digits)"
        raise SparsecoreError(f"{name} is {text}", where, f"use a finite number of magnitude at most {MAX_NUMBER:g}")
    raise SparsecoreError(f"{name} is {value!r}", where, f"expected {_describe(tp)}")
