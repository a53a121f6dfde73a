"""How much of a forward pass of engine="sparsecore" is Python around the kernels, not the kernels themselves.

    python benchmarks/engine_overhead.py runs/engine-bench/minilm-unstructured-95-int8 [more folders] [--batch 1]

Times the engine's forward pass (median of repeated calls, seq 128), then the same calls with every compiled Numba
kernel of ``sparsecore.kernels`` replaced by a function that returns at once: what is left is the Python the engine
runs per call (argument checks, layouts, buffers, dispatch bookkeeping). Prints a markdown table; ``--results``
writes the rows as JSON with the machine they ran on.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def _median_ms(engine, feeds: dict, calls: int) -> float:
    for _ in range(10):
        engine(feeds)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        engine(feeds)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def _stub_kernels() -> int:
    """Replace every compiled kernel a module of ``sparsecore.kernels`` holds by a no-op (the attention's scheduler,
    whose result the Python side reads, is kept); returns how many."""
    from numba.core.registry import CPUDispatcher

    from sparsecore import kernels

    count = 0
    for info in pkgutil.iter_modules(kernels.__path__):
        module = importlib.import_module(f"sparsecore.kernels.{info.name}")
        for name, value in list(vars(module).items()):
            if isinstance(value, CPUDispatcher) and name != "_schedule":
                setattr(module, name, lambda *args, **kwargs: None)
                count += 1
    return count


def measure(folders: list[Path], batch: int, calls: int) -> list[dict]:
    from sparsecore.deploy.sparse_engine import SparsecoreEngine

    rng = np.random.default_rng(0)
    feeds = {"input_ids": rng.integers(1000, 30000, (batch, 128)), "attention_mask": np.ones((batch, 128), np.int64),
             "token_type_ids": np.zeros((batch, 128), np.int64)}

    def engine(folder: Path) -> SparsecoreEngine:
        onnx_path = folder / "deployment" / "model.onnx"
        return SparsecoreEngine(onnx_path if onnx_path.is_file() else folder / "model.onnx", batch, [128])

    rows = [{"model": folder.name, "batch": batch, "forward_ms": _median_ms(engine(folder), feeds, calls)}
            for folder in folders]
    # engines not yet called (they bind their kernel calls on their first call with a token layout), loaded before
    # the kernels are stubbed: loading packs the weights with them
    fresh = [engine(folder) for folder in folders]
    _stub_kernels()
    for row, stubbed in zip(rows, fresh):
        row["python_ms"] = _median_ms(stubbed, feeds, calls)
        row["python_share"] = row["python_ms"] / row["forward_ms"]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", type=Path, nargs="+", help="trained folders with deployment/, or deployment folders")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--results", type=Path, help="write the rows and the machine as JSON here")
    args = ap.parse_args()
    rows = measure(args.folders, args.batch, args.calls)
    print("| model | batch | forward ms | Python around the kernels ms | share |\n|---|---:|---:|---:|---:|")
    for r in rows:
        cells = (r["model"], r["batch"], f"{r['forward_ms']:.2f}", f"{r['python_ms']:.2f}", f"{r['python_share']:.0%}")
        print("| " + " | ".join(str(c) for c in cells) + " |")
    if args.results:
        sys.path.insert(0, str(Path(__file__).parent))
        from engine_bench import machine

        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps({"machine": machine(), "rows": rows,
                                            "command": " ".join(sys.argv)}, indent=1) + "\n")


if __name__ == "__main__":
    main()
