"""fp32 Linears with K in panels against one panel, whole models side by side in one process.

    python benchmarks/fp32_panels.py runs/engine-bench-b4/bert-base-unstructured-80 [more folders] --batches 1,32
        [--rounds 5] [--results benchmarks/results/fp32_panels.json]

For each folder and batch, builds two engines from the same export: one whose fp32 Linears are packed with the
default panels (``sparsecore.kernels.fp32_packing.panel_columns``) and one with K in a single panel, checks that they
give the same logits, then times them in alternation (``--rounds`` rounds, best of each: this VM's speed drifts by
more than the difference within minutes, so only interleaved timings compare). Prints a markdown table; ``--results``
writes the rows with the machine they ran on.

    python benchmarks/fp32_panels.py FOLDER [more] --against tuned [--batches 1,32] [--results FILE]

compares instead the rule's panels (``SPARSECORE_TUNE=0``) with the widths timed on this host at load
(``sparsecore.kernels.panel_tuning``; its cache file is moved to a fresh folder first, so the timing runs and its
seconds are reported).

    python benchmarks/fp32_panels.py FOLDER [more] --against row-order [--batches 1,32] [--results FILE]

compares the weights packed group by group (a group's runs on one panel back to back, the order the kernel reads
them: ``pack_rows``' default) with each row's runs together (``group=1``), the same panels and kernel.

    python benchmarks/fp32_panels.py FOLDER [more] --against run-order [--batches 1,32] [--results FILE]

compares a group's runs on a panel in row order (``pack_rows``' default) with the same runs stored longest first
(``longest_first=True``: runs of one length follow each other, so the end of each run is easier to foresee).
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from engine_ab import alternate, onnx_of, parser, runs, write_results


def _panels(engine) -> list[str]:
    """``NxK: P×W`` (P panels of W columns) for each fp32 Linear shape of the engine's first layer."""
    layer = engine.model.layers[0]
    return [f"{layer[k].weight.shape[0]}x{layer[k].weight.shape[1]}: {layer[k].weight.panels}×{layer[k].weight.panel}"
            for k in ("qkv", "attn_out", "intermediate", "out") if hasattr(layer[k].weight, "panels")]


def _patched_pair(folder: Path, batch: int, seq: int, rounds: int, attribute: str, patch) -> tuple[dict, dict, dict]:
    """Two engines from one export, the rule's panels (timing off): the default one and one built while
    ``fp32_packing.<attribute>`` is ``patch(default)``; ``(engines, logits, best seconds)`` keyed "default" and
    "patched", timed in alternation."""
    from sparsecore.deploy.sparse_engine import SparsecoreEngine
    from sparsecore.kernels import fp32_packing

    onnx_path = onnx_of(folder)
    default = getattr(fp32_packing, attribute)
    os.environ["SPARSECORE_TUNE"] = "0"
    engines = {"default": SparsecoreEngine(onnx_path, batch, [seq])}
    setattr(fp32_packing, attribute, patch(default))
    try:
        engines["patched"] = SparsecoreEngine(onnx_path, batch, [seq])
    finally:
        setattr(fp32_packing, attribute, default)
    logits, best = alternate(engines, batch, seq, rounds)
    return engines, logits, best


def _diff(logits: dict) -> float:
    return float(np.abs(logits["default"] - logits["patched"]).max())


def measure(folder: Path, batch: int, seq: int, rounds: int) -> dict:
    """The rule's panels against K in one panel."""
    engines, logits, best = _patched_pair(folder, batch, seq, rounds, "panel_columns",
                                          lambda default: lambda k, *args, **kwargs: k)
    return {"model": folder.name, "batch": batch, "seq": seq, "panels": _panels(engines["default"]),
            "panels_ms": best["default"] * 1e3, "one_panel_ms": best["patched"] * 1e3, "max_abs_diff": _diff(logits)}


def measure_tuned(folder: Path, batch: int, seq: int, rounds: int, cache: Path) -> dict:
    """The rule's panels against the widths timed at load, the timing's seconds included."""
    from sparsecore.deploy.sparse_engine import SparsecoreEngine

    onnx_path = onnx_of(folder)
    os.environ["SPARSECORE_TUNE"] = "0"
    engines = {"rule": SparsecoreEngine(onnx_path, batch, [seq])}
    os.environ["SPARSECORE_TUNE"], os.environ["SPARSECORE_CACHE_DIR"] = "1", str(cache)
    start = time.perf_counter()
    engines["tuned"] = SparsecoreEngine(onnx_path, batch, [seq])
    load_s = time.perf_counter() - start
    logits, best = alternate(engines, batch, seq, rounds)
    return {"model": folder.name, "batch": batch, "seq": seq, "rule_panels": _panels(engines["rule"]),
            "tuned_panels": _panels(engines["tuned"]), "tuned_load_s": load_s, "rule_ms": best["rule"] * 1e3,
            "tuned_ms": best["tuned"] * 1e3, "max_abs_diff": float(np.abs(logits["rule"] - logits["tuned"]).max())}


def measure_order(folder: Path, batch: int, seq: int, rounds: int) -> dict:
    """Weights packed group by group against row by row, the rule's panels for both."""
    engines, logits, best = _patched_pair(folder, batch, seq, rounds, "pack_rows",
                                          lambda default: functools.partial(default, group=1))
    return {"model": folder.name, "batch": batch, "seq": seq, "panels": _panels(engines["default"]),
            "grouped_ms": best["default"] * 1e3, "row_order_ms": best["patched"] * 1e3, "max_abs_diff": _diff(logits)}


def measure_run_order(folder: Path, batch: int, seq: int, rounds: int) -> dict:
    """A (group, panel)'s runs in row order against longest first, the rule's panels for both."""
    engines, logits, best = _patched_pair(folder, batch, seq, rounds, "pack_rows",
                                          lambda default: functools.partial(default, longest_first=True))
    return {"model": folder.name, "batch": batch, "seq": seq, "panels": _panels(engines["default"]),
            "row_order_ms": best["default"] * 1e3, "longest_first_ms": best["patched"] * 1e3,
            "max_abs_diff": _diff(logits)}


MODES = {  # --against → (table head, one row of it from a measured dict)
    "one-panel": (("| model | batch | panels (first layer) | panels ms | one panel ms | ratio | max abs Δlogit |\n"
                  "|---|---:|---|---:|---:|---:|---:|"),
                  lambda r: f"| {r['model']} | {r['batch']} | {', '.join(r['panels'])} | {r['panels_ms']:.1f} | "
                            f"{r['one_panel_ms']:.1f} | {r['panels_ms'] / r['one_panel_ms']:.2f} | "
                            f"{r['max_abs_diff']:.1e} |"),
    "tuned": (("| model | batch | rule's panels (first layer) | tuned | load with timing s | rule ms | tuned ms | ratio "
              "| max abs Δlogit |\n|---|---:|---|---|---:|---:|---:|---:|---:|"),
              lambda r: f"| {r['model']} | {r['batch']} | {', '.join(r['rule_panels'])} | "
                        f"{', '.join(r['tuned_panels'])} | {r['tuned_load_s']:.1f} | {r['rule_ms']:.1f} | "
                        f"{r['tuned_ms']:.1f} | {r['tuned_ms'] / r['rule_ms']:.2f} | {r['max_abs_diff']:.1e} |"),
    "row-order": (("| model | batch | panels (first layer) | grouped ms | row order ms | ratio | max abs Δlogit |\n"
                  "|---|---:|---|---:|---:|---:|---:|"),
                  lambda r: f"| {r['model']} | {r['batch']} | {', '.join(r['panels'])} | {r['grouped_ms']:.1f} | "
                            f"{r['row_order_ms']:.1f} | {r['grouped_ms'] / r['row_order_ms']:.2f} | "
                            f"{r['max_abs_diff']:.1e} |"),
    "run-order": (("| model | batch | panels (first layer) | longest first ms | row order ms | ratio "
                   "| max abs Δlogit |\n|---|---:|---|---:|---:|---:|---:|"),
                  lambda r: f"| {r['model']} | {r['batch']} | {', '.join(r['panels'])} | {r['longest_first_ms']:.1f} | "
                            f"{r['row_order_ms']:.1f} | {r['longest_first_ms'] / r['row_order_ms']:.2f} | "
                            f"{r['max_abs_diff']:.1e} |"),
}


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--against", choices=tuple(MODES), default="one-panel")
    args = ap.parse_args()
    head, line = MODES[args.against]
    if args.against == "tuned":  # the timing runs into a fresh cache, so its seconds are reported
        measure_one = functools.partial(measure_tuned, cache=Path(tempfile.mkdtemp(prefix="fp32-panels-")))
    else:
        measure_one = {"row-order": measure_order, "run-order": measure_run_order}.get(args.against, measure)
    print(head, flush=True)
    rows = []
    for folder, batch, rounds in runs(args):
        rows.append(measure_one(folder, batch, args.seq, rounds))
        print(line(rows[-1]), flush=True)
    write_results(args.results, rows)


if __name__ == "__main__":
    main()
