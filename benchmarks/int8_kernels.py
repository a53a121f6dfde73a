"""Sparse int8 Linears on the integer units vs the fp32-widening int8 kernel, side by side.

    python benchmarks/int8_kernels.py [--sparsity 0.9] [--tokens 128,4096] [--iters 20]

BERT-base Linear shapes (768→2304 fused QKV, 768→768, 768→3072, 3072→768), random int8 codes pruned to
``--sparsity`` in 1×4 blocks and unstructured, uint8 activations over T tokens (128 = batch 1, 4096 = batch 32
at seq 128). Each row times, on all cores, the widening kernel (``sparse_linear_t`` on a ``Block4``/``CSR`` of
int8 codes: codes widened to fp32, FMAs — what the engine ran before the integer kernels, and runs for
unstructured codes on hosts without VNNI) and :func:`sparsecore.kernels.int8_linear.int8_matmul` — 1×4 blocks
(:mod:`~sparsecore.kernels.int8_block4`) or quads (:mod:`~sparsecore.kernels.int8_quads`) — on every integer
path this CPU runs for that kind; every result is checked equal to the exact int64 product first. Reports
medians (ms), useful GOP/s (2 × stored non-zero weights × tokens / time) and each path's speed-up over the
widening kernel; writes benchmarks/results/int8_kernels.json with the CPU it ran on.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from sparsecore.kernels import int8_block4, int8_quads
from sparsecore.kernels.int8_linear import int8_matmul
from sparsecore.kernels.isa import PATHS, host_features, supported
from sparsecore.kernels.sparse_matmul import sparse_linear_t, to_block4, to_csr

SHAPES = {"qkv": (2304, 768), "attn_out": (768, 768), "intermediate": (3072, 768), "output": (768, 3072)}
RESULTS = Path(__file__).parent / "results" / "int8_kernels.json"


def median_ms(fn, iters: int) -> float:
    fn()  # warm-up (and compilation)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times))


def block_pruned_codes(n: int, k: int, sparsity: float, rng) -> np.ndarray:
    codes = rng.integers(-127, 128, (n, k // 4, 4)).astype(np.int8)
    codes[rng.random((n, k // 4)) < sparsity] = 0
    return codes.reshape(n, k)


def unstructured_codes(n: int, k: int, sparsity: float, rng) -> np.ndarray:
    codes = rng.integers(-127, 128, (n, k)).astype(np.int8)
    codes[rng.random((n, k)) < sparsity] = 0
    return codes


# kind → (codes, widening format, integer packing, activation layout, the kind's integer paths)
KINDS = {
    "1×4 blocks": (block_pruned_codes, to_block4, int8_block4.pack_block4_int8, int8_block4.interleave4,
                   int8_block4.TOKENS),
    "unstructured": (unstructured_codes, to_csr, int8_quads.pack_quads, int8_quads.token_blocks, int8_quads.TOKENS),
}


def cpu() -> str:
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    model = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), "unknown")
    wanted = ("avx2", "fma", "avx512f", "avx512vnni", "avxvnni", "amx-int8")
    return f"{model}; LLVM features: {', '.join(f for f in wanted if f in host_features())}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sparsity", type=float, default=0.9)
    ap.add_argument("--tokens", default="128,4096")
    ap.add_argument("--iters", type=int, default=20)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    paths = [p for p in PATHS if supported(p) and p != "generic"]
    rows = []
    for tokens in map(int, args.tokens.split(",")):
        for kind, (make, widen, pack, layout, kind_paths) in KINDS.items():
            for name, (n, k) in SHAPES.items():
                codes = make(n, k, args.sparsity, rng)
                xq = rng.integers(0, 256, (k, tokens)).astype(np.uint8)
                want = codes.astype(np.int64) @ xq.astype(np.int64)
                widened, packed = widen(codes), pack(codes)
                assert np.array_equal(sparse_linear_t(widened, xq), want.astype(np.float32))
                row = {"kind": kind, "shape": name, "n": n, "k": k, "tokens": tokens,
                       "nnz": int(np.count_nonzero(codes))}
                row["fp32_widening_ms"] = median_ms(lambda w=widened, x=xq: sparse_linear_t(w, x), args.iters)
                for path in (p for p in paths if p in kind_paths):
                    xb = layout(xq, kind_paths[path])
                    assert np.array_equal(int8_matmul(packed, xb, tokens, path), want), path
                    row[f"{path}_ms"] = median_ms(lambda p=path, x=xb, w=packed, t=tokens: int8_matmul(w, x, t, p),
                                                   args.iters)
                rows.append(row)
                print(json.dumps(row), flush=True)
    result = {"cpu": cpu(), "sparsity": args.sparsity, "iters": args.iters, "paths": paths, "rows": rows,
              "command": " ".join(["python benchmarks/int8_kernels.py", *sys.argv[1:]])}
    RESULTS.write_text(json.dumps(result, indent=1))
    print(table(result))


def table(result: dict) -> str:
    paths = result["paths"]
    head = ["weights", "shape", "tokens", "fp32-widening ms", *[f"{p} ms" for p in paths],
            *[f"{p} speed-up" for p in paths], "best GOP/s"]
    lines = [f"CPU: {result['cpu']}; {result['sparsity']:.0%} sparsity; medians over {result['iters']} runs",
             "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in result["rows"]:
        ran = [p for p in paths if f"{p}_ms" in r]
        best = min(r[f"{p}_ms"] for p in ran)
        cells = [r["kind"], r["shape"], r["tokens"], f"{r['fp32_widening_ms']:.2f}",
                 *[f"{r[p + '_ms']:.2f}" if p in ran else "–" for p in paths],
                 *[f"{r['fp32_widening_ms'] / r[p + '_ms']:.2f}×" if p in ran else "–" for p in paths],
                 f"{2 * r['nnz'] * r['tokens'] / (best * 1e6):.0f}"]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
