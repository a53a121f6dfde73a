"""Export validation: ONNX checker, then ONNX Runtime vs PyTorch on real inputs.

A failed validation is an error (``SparsecoreError``), never a warning.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import onnx

from sparsecore.errors import SparsecoreError

Feeds = dict[str, np.ndarray]


def validate_onnx(path: str | Path, cases: list[Feeds], reference: Callable[[Feeds], np.ndarray],
                  atol: float) -> dict:
    """Run every case through ONNX Runtime and ``reference``; return the comparison report."""
    import onnxruntime as ort

    try:
        onnx.checker.check_model(str(path))
    except onnx.checker.ValidationError as exc:
        raise SparsecoreError(f"ONNX checker rejected the export: {str(exc).splitlines()[0]}", str(path),
                              "report this as a bug with the model folder") from None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rows = []
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
    worst = max(r["max_abs_diff"] for r in rows)
    report = {"checker": "passed", "atol": atol, "cases": rows, "max_abs_diff": worst, "passed": worst <= atol}
    if not report["passed"]:
        raise SparsecoreError(f"ONNX Runtime logits differ from PyTorch by {worst:.3g} > {atol:g}", str(path),
                              "report this as a bug; the export was not written")
    return report
