"""Exact global selection over the BERT-base encoder's Linear weights (85M fp32) vs memcpy and the usual tools.

    python benchmarks/selection_speed.py [--repeats 5]

72 arrays of the real shapes (12 layers × Q, K, V, O 768×768, FFN 3072×768 and 768×3072), random
normal values, k = 90% of all values. Ours selects across the 72 arrays without concatenating them;
the others get one pre-concatenated array (their best case). Goal: ours ≤ 4× memcpy. memcpy writes
into a preallocated destination; ours is timed both ways (``out=`` preallocated masks, and fresh masks,
whose first-touch page faults cost ~37 ms here).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from sparsecore.kernels import lowest_k_masks

SHAPES = [(768, 768)] * 4 + [(3072, 768), (768, 3072)]


def timed(fn, repeats: int) -> float:
    fn()  # warm-up (and Numba compile / cache load)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sparsity", type=float, default=0.9)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s, dtype=np.float32) for _ in range(12) for s in SHAPES]
    flat = np.concatenate([a.reshape(-1) for a in arrays])
    n = flat.size
    k = int(args.sparsity * n)
    dst = np.empty_like(flat)
    outs = [np.empty(a.shape, dtype=np.bool_) for a in arrays]  # like memcpy's destination, allocated once
    flat_t = torch.from_numpy(flat)
    results = {
        "memcpy (np.copyto)": timed(lambda: np.copyto(dst, flat), args.repeats),
        "sparsecore lowest_k_masks (72 arrays, masks preallocated)": timed(
            lambda: lowest_k_masks(arrays, k, out=outs), args.repeats),
        "sparsecore lowest_k_masks (72 arrays, fresh masks)": timed(lambda: lowest_k_masks(arrays, k), args.repeats),
        "torch.kthvalue": timed(lambda: torch.kthvalue(flat_t, k), args.repeats),
        "torch.topk (largest=False)": timed(lambda: torch.topk(flat_t, k, largest=False, sorted=False),
                                            max(1, args.repeats // 2)),
        "np.partition": timed(lambda: np.partition(flat, k - 1), args.repeats),
    }
    masks = lowest_k_masks(arrays, k)
    assert sum(int(m.sum()) for m in masks) == k
    base = results["memcpy (np.copyto)"]
    print(f"{n / 1e6:.1f}M fp32 values in {len(arrays)} arrays, k = {k} ({args.sparsity:.0%}), "
          f"{torch.get_num_threads()} threads, medians of {args.repeats}")
    print("| method | ms | × memcpy |")
    print("|---|---:|---:|")
    for name, ms in results.items():
        print(f"| {name} | {ms:.0f} | {ms / base:.2f} |")


if __name__ == "__main__":
    main()
