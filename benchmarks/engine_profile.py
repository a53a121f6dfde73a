"""Where the time goes in engine="sparsecore": per-op totals of one forward pass, medians of repeated runs.

    python benchmarks/engine_profile.py runs/engine-bench/bert-base-unstructured-90 [--batch 1] [--seq 128]

Times each stage of SparseBert.__call__ (same code path, same BLAS thread limit as the engine) and
prints a markdown table: milliseconds per forward and share of the total.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from sparsecore.deploy.sparse_engine import SparsecoreEngine, layer_norm_t


def profile(engine: SparsecoreEngine, batch: int, seq: int, repeats: int) -> dict[str, float]:
    m = engine.model
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 30000, (batch, seq))
    mask = np.ones((batch, seq), np.int64)
    types = np.zeros((batch, seq), np.int64)
    runs: dict[str, list[float]] = defaultdict(list)

    def timed(key, totals, fn, *args, **kw):
        start = time.perf_counter()
        out = fn(*args, **kw)
        totals[key] += (time.perf_counter() - start) * 1e3
        return out

    with engine._pools.limit(limits=1 if engine._single_blas else None, user_api="blas"):
        for rep in range(repeats + 1):
            totals: dict[str, float] = defaultdict(float)
            add_mask = (1.0 - mask.astype(np.float32)) * np.finfo(np.float32).min
            xt = timed("embeddings + LayerNorm", totals, m.embed_t, ids, types)
            for layer in m.layers:
                qkv = timed(f"QKV Linear ({layer['qkv'].format})", totals, layer["qkv"], xt)
                ctx = timed("attention (QKᵀ, softmax, ·V)", totals, m.attention_t, qkv, add_mask, batch, seq)
                h = timed(f"attention output Linear ({layer['attn_out'].format})", totals, layer["attn_out"], ctx)
                h += xt
                xt = timed("residual LayerNorm ×2", totals, layer_norm_t, h, *layer["ln1"], m.a.eps)
                inter = timed(f"intermediate Linear + GELU ({layer['intermediate'].format})", totals,
                              layer["intermediate"], xt, gelu=True)
                h = timed(f"output Linear ({layer['out'].format})", totals, layer["out"], inter)
                h += xt
                xt = timed("residual LayerNorm ×2", totals, layer_norm_t, h, *layer["ln2"], m.a.eps)
            if rep:  # the first pass warms caches and compiles
                for key, value in totals.items():
                    runs[key].append(value)
    return {key: statistics.median(values) for key, values in runs.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path, help="trained folder with deployment/, or a deployment folder")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    onnx_path = args.folder / "deployment" / "model.onnx"
    engine = SparsecoreEngine(onnx_path if onnx_path.is_file() else args.folder / "model.onnx", args.batch, [args.seq])
    stages = profile(engine, args.batch, args.seq, args.repeats)
    total = sum(stages.values())
    print(f"{args.folder.name}, batch {args.batch}, seq {args.seq}: {total:.1f} ms per forward (sum of stage medians)")
    print("| stage | ms | share |\n|---|---:|---:|")
    for key, value in sorted(stages.items(), key=lambda kv: -kv[1]):
        print(f"| {key} | {value:.2f} | {value / total:.0%} |")


if __name__ == "__main__":
    main()
