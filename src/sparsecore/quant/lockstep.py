"""Run a fake-quant model in lockstep with a runtime's activation codes: the export validation of integer graphs.

Every activation quantizer rounds ``v = x / scale + zero_point``; when ``v`` sits within float noise of a rounding
tie (``k + ½``), two correct implementations may round it apart, and that one-code difference then propagates to the
logits. :func:`following` makes every activation :class:`~sparsecore.quant.fake_quant.FakeQuantize` of a forward pass
take the runtime's codes instead of rounding itself — in call order, one array per quantizer — after checking that
each runtime code is a rounding of the model's own ``v``: ``|v − code| ≤ ½ + tau`` (at the ends of the range,
anything beyond them clamps). With the same codes on both sides, a correct graph's logits then agree to float
precision, and a wrong graph (scale, zero point, bias, weights, transposes) shows as codes no rounding explains.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import torch

_ACTIVE: list = []  # the Lockstep a forward pass follows (at most one)


class LockstepMismatch(Exception):
    """The graph's quantizers do not line up with the model's (another count, order or shape)."""


class Lockstep:
    """The runtime's activation codes for one forward pass, handed out in order, and what checking them found."""

    def __init__(self, codes: list[np.ndarray], tau: float = 0.01) -> None:
        self.codes, self.tau, self.used = codes, tau, 0
        self.checked = 0  # activation values compared
        self.unexplained = 0  # runtime codes no rounding of the model's value explains
        self.other_way = 0  # explained codes that differ from the model's own rounding (values on a tie)
        self.worst = 0.0  # the largest |v − code| − ½ seen (≤ tau when every code is explained)
        self.first_bad: int | None = None  # the first quantizer (call order) with an unexplained code

    def take(self, x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, qmin: int,
             qmax: int) -> torch.Tensor:
        """The dequantized runtime codes for the next quantizer, after checking them against ``x``."""
        if self.used >= len(self.codes):
            raise LockstepMismatch(f"the model quantizes more activations than the graph's {len(self.codes)}")
        index, self.used = self.used, self.used + 1
        codes = torch.from_numpy(np.asarray(self.codes[index]).astype(np.int32))
        if tuple(codes.shape) != tuple(x.shape):
            raise LockstepMismatch(f"activation quantizer {index}: the graph's codes have shape {tuple(codes.shape)}, "
                                   f"the model's tensor {tuple(x.shape)}")
        zero = zero_point.to(x.dtype)
        value = x / scale + zero
        distance = (value - codes).abs() - 0.5
        distance = torch.where((codes == qmin) & (value < qmin) | (codes == qmax) & (value > qmax),
                               torch.zeros_like(distance), distance)  # clamped at the range's ends
        distance = torch.where((codes < qmin) | (codes > qmax), torch.full_like(distance, np.inf), distance)
        bad = int((distance > self.tau).sum())
        own = torch.clamp(torch.round(value), qmin, qmax)
        self.other_way += int(((own != codes) & (distance <= self.tau)).sum())
        self.checked += codes.numel()
        self.unexplained += bad
        self.worst = max(self.worst, float(distance.max())) if codes.numel() else self.worst
        if bad and self.first_bad is None:
            self.first_bad = index
        return (codes.to(x.dtype) - zero) * scale

    def finish(self) -> None:
        """``LockstepMismatch`` unless every code array was taken."""
        if self.used != len(self.codes):
            raise LockstepMismatch(f"the graph quantizes {len(self.codes)} activations, the model {self.used}")


@contextmanager
def following(lockstep: Lockstep) -> Iterator[Lockstep]:
    """Activation quantizers take ``lockstep``'s codes inside the block (one block at a time)."""
    _ACTIVE.append(lockstep)
    try:
        yield lockstep
    finally:
        _ACTIVE.remove(lockstep)
    lockstep.finish()


def active() -> Lockstep | None:
    """The :class:`Lockstep` being followed, or None."""
    return _ACTIVE[-1] if _ACTIVE else None


def in_lockstep(forward: Callable[[dict], np.ndarray]) -> Callable:
    """The lockstep reference :func:`sparsecore.export.validate.validate_onnx` takes: ``(feeds, codes, tolerance) ->
    (logits of forward(feeds) following codes, stats)``; stats hold ``checked``, ``unexplained``, ``other_way``
    (codes rounded the other way at a tie), ``worst``,
    ``first_bad`` and ``mismatch`` (why the quantizers do not line up, or None)."""
    def run(feeds: dict, codes: list[np.ndarray], code_tolerance: float) -> tuple[np.ndarray | None, dict]:
        state = Lockstep(codes, code_tolerance)
        try:
            with following(state):
                logits = forward(feeds)
        except LockstepMismatch as exc:
            return None, {"mismatch": str(exc)}
        return logits, {"checked": state.checked, "unexplained": state.unexplained, "other_way": state.other_way,
                        "worst": state.worst, "first_bad": state.first_bad, "mismatch": None}
    return run
