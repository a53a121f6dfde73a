"""Export validation: ONNX checker, then ONNX Runtime vs PyTorch on real inputs.

A failed validation is an error (``SparsecoreError``), never a warning.

Float exports must match PyTorch to ``atol`` on every logit.

Quantized exports are judged **in lockstep**. A rounding step sits after every quantized activation, and a value
within float noise of a rounding tie (``k + ½``) may round one way in PyTorch and the other in ONNX Runtime — both
correct; in a deep model such one-code differences happen in every row and move the free-running logits by
~1e-3 (more where near-uniform attention puts softmax outputs on exact ties). So the graph is run with every
activation quantizer's codes as extra outputs, and the fake-quant model is run on the same input taking those
codes at each of its activation quantizers, in order (:mod:`sparsecore.quant.lockstep`). The export passes when

1. the graph's activation quantizers line up with the model's (same count, order and shapes);
2. every code of the graph is a rounding of the model's own value ``v = x / scale + zero_point``:
   ``|v − code| ≤ ½ + code_tolerance`` (1e-3 of a code step; clamped values at the range's ends);
3. the logits of the model following the graph's codes match the graph's to ``atol``.

A correct graph passes whatever its ties (measured: codes within 3e-5 of a step of the model's values on
BERT-base, logits within 3e-7); a wrong scale, zero point, bias, weight code or transpose leaves codes that no
rounding explains. The free-running comparison (median and max |Δlogit|, label agreement on decisive rows) is
reported beside it, for information.
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
    atol: float  # float graphs: every |Δlogit|; quantized graphs: every |Δlogit| in lockstep
    median_atol: float | None = None  # free-running agreement (reported): median |Δlogit|
    range_fraction: float | None = None  # free-running: max |Δlogit| ≤ this × max |reference logit|
    min_agreement: float | None = None  # free-running: fraction of decisive rows with the same argmax
    decisive_fraction: float = 0.05  # a row is decisive when its top-2 margin ≥ this × max |reference logit|
    code_tolerance: float = 1e-3  # lockstep: how far past ½ step a graph's code may lie from the model's value


QUANTIZED = Tolerance(atol=1e-4, median_atol=1e-4, range_fraction=0.25, min_agreement=0.99)

# lockstep(feeds, codes of the graph's activation quantizers in graph order, code_tolerance) ->
#   (logits of the model following those codes,
#    {"checked", "unexplained", "other_way", "worst", "first_bad", "mismatch"}):
#   sparsecore.quant.lockstep.in_lockstep
Lockstep = Callable[[Feeds, list[np.ndarray], float], tuple[np.ndarray | None, dict]]


def validate_onnx(path: str | Path, cases: list[Feeds], reference: Callable[[Feeds], np.ndarray],
                  tolerance: Tolerance, lockstep: Lockstep | None = None) -> dict:
    """Run every case through ONNX Runtime and ``reference``; return the comparison report. With ``lockstep``
    (quantized exports) the verdict is the lockstep one and the free-running comparison is reported beside it."""
    try:
        onnx.checker.check_model(str(path))
    except onnx.checker.ValidationError as exc:
        raise SparsecoreError(f"ONNX checker rejected the export: {str(exc).splitlines()[0]}", str(path),
                              "report this as a bug with the model folder") from None
    if lockstep is not None:
        report, outputs = _lockstep(path, cases, lockstep, tolerance)
        report["free_running"] = _free_running(path, cases, reference, tolerance, outputs)
        report.update({k: report["free_running"][k] for k in ("median_abs_diff", "label_agreement")})
        if not report["passed"]:
            raise SparsecoreError(f"ONNX Runtime vs PyTorch in lockstep: {report['failed']}", str(path),
                                  "report this as a bug; the export was not written")
        return report
    report = _free_running(path, cases, reference, tolerance)
    if not report["passed"]:
        raise SparsecoreError(f"ONNX Runtime vs PyTorch: {report['failed']}", str(path),
                              "report this as a bug; the export was not written")
    return report


def code_outputs(model: onnx.ModelProto) -> list[str]:
    """The tensors holding the codes of each activation quantizer, in graph order: a ``QuantizeLinear``'s output,
    or the ``Clip`` that narrows it. Added to the graph's outputs (``model`` is changed)."""
    users: dict[str, list] = {}
    for node in model.graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    names = []
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear":
            out = node.output[0]
            after = users.get(out, [])
            names.append(after[0].output[0] if len(after) == 1 and after[0].op_type == "Clip" else out)
    present = {o.name for o in model.graph.output}
    model.graph.output.extend(onnx.helper.make_empty_tensor_value_info(n) for n in names if n not in present)
    return names


def _lockstep(path: str | Path, cases: list[Feeds], lockstep: Lockstep,
              tol: Tolerance) -> tuple[dict, list[np.ndarray] | None]:
    """The lockstep report, and the graph's logits per case (None when the quantizers did not line up)."""
    model = onnx.load(str(path))
    names = code_outputs(model)
    session = ort_session(model.SerializeToString(), ops={n.op_type for n in model.graph.node})
    worst_logit, checked, unexplained, other_way, worst_code, first_bad, rows = 0.0, 0, 0, 0, 0.0, None, []
    outputs = []
    for feeds in cases:
        out = session.run(None, feeds)
        outputs.append(out[0])
        want, stats = lockstep(feeds, out[1:1 + len(names)], tol.code_tolerance)
        if stats.get("mismatch"):
            return {"checker": "passed", "passed": False, "cases": rows,
                    "failed": "the graph's activation quantizers do not line up with the model's "
                              f"({stats['mismatch']})"}, None
        diff = float(np.max(np.abs(out[0] - want))) if want.size else 0.0
        diff = diff if np.isfinite(diff) else float("inf")
        batch, seq = next(iter(feeds.values())).shape
        rows.append({"batch": int(batch), "sequence_length": int(seq), "max_abs_diff": diff})
        worst_logit = max(worst_logit, diff)
        checked, unexplained = checked + stats["checked"], unexplained + stats["unexplained"]
        other_way += stats["other_way"]
        worst_code = max(worst_code, stats["worst"])
        first_bad = stats["first_bad"] if first_bad is None else first_bad
    failed = []
    if unexplained:
        failed.append(f"{unexplained} of {checked} activation codes are no rounding of the model's values "
                      f"(first at quantizer {first_bad} of {len(names)}; worst {worst_code:.3g} steps past ½)")
    if worst_logit > tol.atol:
        failed.append(f"max |Δlogit| {worst_logit:.3g} > {tol.atol:g} with the same codes")
    return {"checker": "passed", "cases": rows,
            "lockstep": {"activation_quantizers": len(names), "codes_checked": checked,
                         "codes_unexplained": unexplained, "codes_rounded_other_way": other_way,
                         "worst_code_distance": worst_code, "code_tolerance": tol.code_tolerance,
                         "max_abs_diff": worst_logit},
            "max_abs_diff": worst_logit, "atol": tol.atol, "passed": not failed,
            "failed": "; ".join(failed) or None}, outputs


def _free_running(path: str | Path, cases: list[Feeds], reference: Callable[[Feeds], np.ndarray],
                  tolerance: Tolerance, outputs: list[np.ndarray] | None = None) -> dict:
    """ONNX Runtime's logits (``outputs``, one per case, when a pass already computed them) vs ``reference``."""
    session = ort_session(path) if outputs is None else None
    rows, got_all, want_all = [], [], []
    for i, feeds in enumerate(cases):
        got = session.run(None, feeds)[0] if outputs is None else outputs[i]
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
