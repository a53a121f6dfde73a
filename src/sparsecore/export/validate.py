"""Export validation: ONNX checker, then ONNX Runtime vs PyTorch on real inputs.

A failed validation is an error (``SparsecoreError``), never a warning.

Float exports must match PyTorch to ``atol`` on every logit. Quantized exports are held to a
different standard, because a rounding step sits after every quantized activation: fp32 noise of
1e-7 (another summation order, another erf) that lands on a rounding boundary flips one int8 code,
and that one-step change propagates to the logits. So a quantized graph must

1. match most rows to fp32 precision — median |Δlogit| ≤ ``median_atol`` (1e-4). This is the check
   that catches a wrong graph: a wrong scale, zero point, bias or transpose moves *every* row, and
   the median by orders of magnitude;
2. keep every logit within ``range_fraction`` (25%) of the largest reference |logit| (or ``atol``, if
   larger) — a bound on the worst row: rows with a flipped code move far less than that;
3. predict the same label for at least ``min_agreement`` (99%) of the rows where PyTorch is decisive
   (top-1 minus top-2 logit ≥ ``decisive_fraction`` = 5% of the largest logit). A row on the fence flips
   under any perturbation and says nothing about the graph; the report also gives the agreement over
   all rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import onnx

from sparsecore.deploy.ort_session import ort_session
from sparsecore.errors import SparsecoreError

Feeds = dict[str, np.ndarray]


@dataclass(frozen=True)
class Tolerance:
    atol: float  # float graphs: every |Δlogit|
    median_atol: float | None = None  # quantized graphs: median |Δlogit| (fp32-level on unflipped rows)
    range_fraction: float | None = None  # quantized graphs: max |Δlogit| ≤ this × max |reference logit|
    min_agreement: float | None = None  # quantized graphs: fraction of decisive rows with the same argmax
    decisive_fraction: float = 0.05  # a row is decisive when its top-2 margin ≥ this × max |reference logit|


QUANTIZED = Tolerance(atol=1e-4, median_atol=1e-4, range_fraction=0.25, min_agreement=0.99)


def validate_onnx(path: str | Path, cases: list[Feeds], reference: Callable[[Feeds], np.ndarray],
                  tolerance: Tolerance) -> dict:
    """Run every case through ONNX Runtime and ``reference``; return the comparison report."""
    try:
        onnx.checker.check_model(str(path))
    except onnx.checker.ValidationError as exc:
        raise SparsecoreError(f"ONNX checker rejected the export: {str(exc).splitlines()[0]}", str(path),
                              "report this as a bug with the model folder") from None
    session = ort_session(path)
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
    same = got.argmax(1) == want.argmax(1) if want.shape[1] > 1 else np.ones(len(want), bool)
    top2 = np.sort(want, axis=1)[:, -2:] if want.shape[1] > 1 else np.zeros((len(want), 2))
    decisive = (top2[:, 1] - top2[:, 0]) >= tol.decisive_fraction * float(np.max(np.abs(want)))
    agreement = float(np.mean(same[decisive])) if decisive.any() else 1.0
    checks = [(median <= tol.median_atol, f"median |Δlogit| {median:.3g} > {tol.median_atol:g}"),
              (worst <= atol, f"max |Δlogit| {worst:.3g} > {atol:.3g} ({tol.range_fraction:g} × max |logit|)"),
              (agreement >= tol.min_agreement, f"label agreement {agreement:.2%} < {tol.min_agreement:.0%} "
                                               f"on {int(decisive.sum())} decisive rows")]
    failed = [msg for ok, msg in checks if not ok]
    return {"atol": atol, "median_abs_diff": median, "label_agreement": agreement,
            "label_agreement_all_rows": float(np.mean(same)), "rows": int(len(want)),
            "decisive_rows": int(decisive.sum()), "passed": not failed, "failed": "; ".join(failed) or None}
