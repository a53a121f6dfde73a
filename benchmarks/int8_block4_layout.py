"""1×4-block int8 models with all Linears on the interleaved layout (their inputs' codes written by the stages
before them, or quantized by each Linear itself), all on the quads' token-blocked one, and (with ``--threshold``)
each Linear's layout by a stored-weight threshold: whole models side by side in one process.

    python benchmarks/int8_block4_layout.py runs/engine-bench-b4/bert-base-block4-80-int8 [more folders]
        --batches 1,32 [--rounds 5] [--threshold 128] [--results benchmarks/results/int8_block4_layout.json]

For each folder and batch, builds the engines from the same int8 export: one whose 1×4-block Linears all read the
interleaved layout (``[block][K/4][TB][4]``: ``vpdpbusd``, or ``vpmaddubsw`` on AVX2, reads a token's four features
without unpacks; the LayerNorms and the FFN's intermediate Linear write the codes of the next Linear's input in it),
the same engine with every Linear quantizing its own input (``unfused``: a pass over each input), one whose Linears
all read the quads' token-blocked layout (``[block][K][TB]``, which the LayerNorm, the attention and the FFN write
codes into; four rows unpacked per block),
and with ``--threshold`` one whose Linears read the token-blocked layout below that many stored weights per input
column (``sparsecore.kernels.int8_linear.TOKEN_BLOCKED_BELOW``). Checks they give the same logits, then times them
in alternation (``--rounds`` rounds, best of each: this VM's speed drifts by more than the difference
within minutes, so only interleaved timings compare). Prints a markdown table; ``--results`` writes the rows with the
machine they ran on.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from engine_ab import alternate, onnx_of, parser, runs, write_results


def measure(folder: Path, batch: int, seq: int, rounds: int, threshold: float | None) -> dict:
    from sparsecore.deploy.sparse_engine import SparsecoreEngine
    from sparsecore.kernels import int8_linear
    from sparsecore.kernels.isa import integer_path

    onnx_path = onnx_of(folder)
    default = dict(int8_linear.TOKEN_BLOCKED_BELOW)
    engines = {}
    layouts = {"interleaved": 0.0, "token-blocked": float("inf")}  # → TOKEN_BLOCKED_BELOW on the path
    if threshold is not None:
        layouts["threshold"] = threshold
    for name, below in layouts.items():
        int8_linear.TOKEN_BLOCKED_BELOW[integer_path()] = below  # what token_blocked() reads when a Linear is built
        try:
            engines[name] = SparsecoreEngine(onnx_path, batch, [seq])
        finally:
            int8_linear.TOKEN_BLOCKED_BELOW.clear()
            int8_linear.TOKEN_BLOCKED_BELOW.update(default)
    engines["unfused"] = SparsecoreEngine(onnx_path, batch, [seq])
    engines["unfused"].model.fused_inputs = False  # each Linear quantizes its own input: the same bits
    model = engines["threshold" if threshold is not None else "interleaved"].model
    linears = [layer[k] for layer in model.layers for k in ("qkv", "attn_out", "intermediate", "out")]
    if not any("block4" in getattr(linear, "format", "") for linear in linears):
        raise SystemExit(f"{folder}: no 1×4-block int8 Linear in this model — pass an int8 export pruned in 1×4 blocks")
    logits, best = alternate(engines, batch, seq, rounds)
    return {"model": folder.name, "batch": batch, "seq": seq, "threshold": threshold,
            "token_blocked": sum(linear.token_blocked for linear in linears) if threshold is not None else None,
            "linears": len(linears), **{f"{name.replace('-', '_')}_ms": best[name] * 1e3 for name in engines},
            "max_abs_diff": max(float(np.abs(logits[name] - logits["interleaved"]).max()) for name in engines)}


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--threshold", type=float, help="also time each Linear's layout by this many stored weights per "
                    "input column (token-blocked below it)")
    args = ap.parse_args()
    rows = []
    print("| model | batch | interleaved ms | unfused ms | interleaved / unfused | token-blocked ms | "
          "interleaved / token-blocked | threshold: token-blocked Linears | threshold ms | max abs Δlogit |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|", flush=True)
    for folder, batch, rounds in runs(args):
        r = measure(folder, batch, args.seq, rounds, args.threshold)
        rows.append(r)
        split = (f"{r['token_blocked']} of {r['linears']} | {r['threshold_ms']:.1f}" if args.threshold is not None
                 else "– | –")
        print(f"| {r['model']} | {batch} | {r['interleaved_ms']:.1f} | {r['unfused_ms']:.1f} | "
              f"{r['interleaved_ms'] / r['unfused_ms']:.2f} | {r['token_blocked_ms']:.1f} | "
              f"{r['interleaved_ms'] / r['token_blocked_ms']:.2f} | {split} | {r['max_abs_diff']:.1e} |", flush=True)
    write_results(args.results, rows)


if __name__ == "__main__":
    main()
