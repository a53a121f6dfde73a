"""Where the time goes in engine="sparsecore": per-op totals of one forward pass, medians of repeated runs.

    python benchmarks/engine_profile.py runs/engine-bench/bert-base-unstructured-90 [--batch 1] [--seq 128]
        [--formats quads]

Times each stage of the engine's own forward pass (``SparsecoreEngine(feeds, profile=...)``: same code,
same thread limits) and prints a markdown table: milliseconds per forward and share of the total.
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np

from sparsecore.deploy.sparse_engine import SparsecoreEngine


def profile(engine: SparsecoreEngine, batch: int, seq: int, repeats: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    feeds = {"input_ids": rng.integers(1000, 30000, (batch, seq)), "attention_mask": np.ones((batch, seq), np.int64),
             "token_type_ids": np.zeros((batch, seq), np.int64)}
    engine(feeds)  # warm-up: compiles, fills caches
    runs: dict[str, list[float]] = defaultdict(list)
    for _ in range(repeats):
        stages: dict[str, float] = {}
        engine(feeds, profile=stages)
        for key, value in stages.items():
            runs[key].append(value)
    return {key: statistics.median(values) for key, values in runs.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path, help="trained folder with deployment/, or a deployment folder")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--formats", default="auto", help="the engine's Linear formats (sparsecore.deploy.linears.FORMATS)")
    args = ap.parse_args()
    onnx_path = args.folder / "deployment" / "model.onnx"
    engine = SparsecoreEngine(onnx_path if onnx_path.is_file() else args.folder / "model.onnx", args.batch, [args.seq],
                              formats=args.formats)
    stages = profile(engine, args.batch, args.seq, args.repeats)
    total = sum(stages.values())
    print(f"{args.folder.name}, batch {args.batch}, seq {args.seq}: {total:.1f} ms per forward (sum of stage medians)")
    print("| stage | ms | share |\n|---|---:|---:|")
    for key, value in sorted(stages.items(), key=lambda kv: -kv[1]):
        print(f"| {key} | {value:.2f} | {value / total:.0%} |")


if __name__ == "__main__":
    main()
