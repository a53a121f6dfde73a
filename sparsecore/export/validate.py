"""Export validation: ONNX checker, then ONNX Runtime vs PyTorch on real inputs.

A failed validation is an error (``SparsecoreError``), never a warning.

Float exports must match PyTorch to ``atol`` on every logit. Quantized exports are held to a
different standard, because a rounding step sits after every quantized activation: fp32 noise of
1e-7 that lands on a rounding boundary flips one int8 code, and that one-step change propagates.
So a quantized graph must (1) match on most rows to fp32 precision (median |Δ| ≤ ``median_atol``:
same function, same codes), (2) keep every logit within ``range_fraction`` of the largest reference
logit (rows with flipped codes stay close), and (3) agree on the predicted label for at least
``min_agreement`` of the rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import onnx

from sparsecore.errors import SparsecoreError

Feeds = dict[str, np.ndarray]


@dataclass(frozen=True)
class Tolerance:
    atol: float  # float graphs: every |Δlogit|
    median_atol: float | None = None  # quantized graphs: median |Δlogit| (fp32-level on unflipped rows)
    range_fraction: float | None = None  # quantized graphs: max |Δlogit| ≤ this × max |reference logit|
    min_agreement: float | None = None  # quantized graphs: fraction of rows with the same argmax


QUANTIZED = Tolerance(atol=1e-4, median_atol=1e-4, range_fraction=0.1, min_agreement=0.99)


def validate_onnx(path: str | Path, cases: list[Feeds], reference: Callable[[Feeds], np.ndarray],
                  tolerance: Tolerance) -> dict:
    """Run every case through ONNX Runtime and ``reference``; return the comparison report."""
    import onnxruntime as ort

    try:
        onnx.checker.check_model(str(path))
    except onnx.checker.ValidationError as exc:
        raise SparsecoreError(f"ONNX checker rejected the export: {str(exc).splitlines()[0]}", str(path),
                              "report this as a bug with the model folder") from None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rows, got_all, want_all = [], [], []
    for feeds in cases:
        got = session.run(None, feeds)[0]
        want = reference(feeds)
        if got.shape != want.shape:
            raise SparsecoreError(f"ONNX Runtime output shape {got.shape} differs from PyTorch's {want.shape}",
                                  str(path), "report this as a bug; the export was not written")
        diff = float(np.max(np.abs(got - want))) if got.size else 0.0
        if not np.isfinite(diff):
            diff = float("inf")  # NaN/inf anywhere fails validation
        batch, seq = next(iter(feeds.values())).shape
        rows.append({"batch": int(batch), "sequence_length": int(seq), "max_abs_diff": diff})
        got_all.append(got.reshape(len(got), -1))
        want_all.append(want.reshape(len(want), -1))
    got, want = np.concatenate(got_all), np.concatenate(want_all)
    report = {"checker": "passed", "cases": rows, "max_abs_diff": max(r["max_abs_diff"] for r in rows)}
    report.update(_judge(got, want, report["max_abs_diff"], tolerance))
    if not report["passed"]:
        raise SparsecoreError(f"ONNX Runtime vs PyTorch: {report['failed']}", str(path),
                              "report this as a bug; the export was not written")
    return report


def _judge(got: np.ndarray, want: np.ndarray, worst: float, tol: Tolerance) -> dict:
    if tol.range_fraction is None:
        ok = worst <= tol.atol
        return {"atol": tol.atol, "passed": ok, "failed": None if ok else f"max |Δlogit| {worst:.3g} > {tol.atol:g}"}
    diff = np.abs(got - want)
    median = float(np.median(diff)) if diff.size else 0.0
    atol = max(tol.atol, tol.range_fraction * float(np.max(np.abs(want)))) if want.size else tol.atol
    agreement = float(np.mean(got.argmax(1) == want.argmax(1))) if want.shape[1] > 1 else 1.0
    checks = [(median <= tol.median_atol, f"median |Δlogit| {median:.3g} > {tol.median_atol:g}"),
              (worst <= atol, f"max |Δlogit| {worst:.3g} > {atol:.3g} ({tol.range_fraction:g} × max |logit|)"),
              (agreement >= tol.min_agreement, f"label agreement {agreement:.2%} < {tol.min_agreement:.0%}")]
    failed = [msg for ok, msg in checks if not ok]
    return {"atol": atol, "median_abs_diff": median, "label_agreement": agreement, "rows": int(len(want)),
            "passed": not failed, "failed": "; ".join(failed) or None}
