"""Sparse fp32 Linears: the token-blocked kernels (kernels/fp32_rows.py) vs the features × tokens kernels, side by side.

    python benchmarks/fp32_kernels.py [--sparsity 0.9] [--tokens 128,4096] [--rounds 7]

BERT-base Linear shapes (768→2304 fused QKV, 768→768, 768→3072, 3072→768), random fp32 weights pruned to
``--sparsity`` unstructured and in 1×4 blocks, activations over T tokens (128 = batch 1, 4096 = batch 32 at seq 128),
every activation buffer on huge pages as the engine holds them. Each row times, on all cores, the features × tokens
kernel (``sparse_linear_t`` on ``to_csr``/``to_block4``: what the engine ran before, and runs on hosts without AVX2)
and ``fp32_linear_t`` on every float path this CPU runs (the token-blocked copy of the activations included, as the
engine pays it); results are checked against a float64 product first. Calls are interleaved in rounds and the best
round kept (this VM's speed drifts between runs). Writes benchmarks/results/fp32_kernels.json with the CPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from int8_kernels import SHAPES, cpu

from sparsecore.deploy.hugepages import huge_page_arrays
from sparsecore.kernels.fp32_packing import pack_rows
from sparsecore.kernels.fp32_rows import activation_shape, fp32_linear_t, token_blocks
from sparsecore.kernels.isa import FLOAT_PATHS, float_supported
from sparsecore.kernels.sparse_matmul import sparse_linear_t, to_block4, to_csr

RESULTS = Path(__file__).parent / "results" / "fp32_kernels.json"
KINDS = {"unstructured": ("csr", to_csr), "1×4 blocks": ("block4", to_block4)}


def pruned(n: int, k: int, sparsity: float, kind: str, rng) -> np.ndarray:
    w = rng.standard_normal((n, k)).astype(np.float32)
    keep = (np.repeat(rng.random((n, k // 4)) >= sparsity, 4, axis=1) if kind == "block4"
            else rng.random((n, k)) >= sparsity)
    return np.where(keep, w, 0).astype(np.float32)


def best_ms(calls: dict, rounds: int, per_round: int = 3) -> dict:
    """Best round's milliseconds per call for each named call, the calls interleaved."""
    for call in calls.values():
        call()  # warm-up and compilation
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            for _ in range(per_round):
                call()
            best[name] = min(best[name], (time.perf_counter() - start) / per_round * 1e3)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sparsity", type=float, default=0.9)
    ap.add_argument("--tokens", default="128,4096")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    paths = [p for p in FLOAT_PATHS if float_supported(p) and p != "generic"]
    rows = []
    for tokens in map(int, args.tokens.split(",")):
        for kind, (packing, old_format) in KINDS.items():
            for name, (n, k) in SHAPES.items():
                w = pruned(n, k, args.sparsity, packing, rng)
                buffers = huge_page_arrays({"x": (k, tokens), "xb": activation_shape(k, tokens)})
                x, xb = buffers["x"], buffers["xb"]
                x[...] = rng.standard_normal((k, tokens)).astype(np.float32)
                want = w.astype(np.float64) @ x
                old, packed = old_format(w), pack_rows(w, packing)

                def blocked(path, x=x, xb=xb, packed=packed, tokens=tokens):
                    return fp32_linear_t(packed, token_blocks(x, out=xb), tokens, path=path)

                calls = {"features × tokens": lambda old=old, x=x: sparse_linear_t(old, x)}
                calls.update({path: lambda path=path, blocked=blocked: blocked(path) for path in paths})
                for label, call in calls.items():
                    assert np.allclose(call(), want, rtol=1e-4, atol=1e-3), label
                times = best_ms(calls, args.rounds)
                row = {"kind": kind, "shape": name, "n": n, "k": k, "tokens": tokens, "nnz": int(np.count_nonzero(w)),
                       "features_x_tokens_ms": times["features × tokens"], **{f"{p}_ms": times[p] for p in paths}}
                rows.append(row)
                print(json.dumps(row), flush=True)
    result = {"cpu": cpu(), "sparsity": args.sparsity, "rounds": args.rounds, "paths": paths, "rows": rows,
              "command": " ".join(["python benchmarks/fp32_kernels.py", *sys.argv[1:]])}
    RESULTS.write_text(json.dumps(result, indent=1))
    print(table(result))


def table(result: dict) -> str:
    """The markdown table of a fp32_kernels.json result."""
    paths = result["paths"]
    head = ["weights", "shape", "tokens", "features × tokens ms", *[f"{p} ms" for p in paths],
            *[f"{p} speed-up" for p in paths], "best GFLOP/s"]
    lines = [f"CPU: {result['cpu']}; {result['sparsity']:.0%} sparsity; best of {result['rounds']} rounds", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in result["rows"]:
        old = r["features_x_tokens_ms"]
        best = min(old, *(r[f"{p}_ms"] for p in paths))
        cells = [r["kind"], r["shape"], r["tokens"], f"{old:.2f}", *[f"{r[p + '_ms']:.2f}" for p in paths],
                 *[f"{old / r[p + '_ms']:.2f}×" for p in paths], f"{2 * r['nnz'] * r['tokens'] / (best * 1e6):.0f}"]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
