"""Fisher-inverse speed: the Numba Woodbury kernels vs the batched torch reference (goal: ≥ 2×).

    python benchmarks/fisher_speed.py [--block 50] [--grads 64] [--chunk 8]

On the MiniLM encoder's 36 targeted Linear weights (real shapes, 10.6M weights), B = 50, m = 64
random gradients, layer by layer (peak memory one layer's F⁻¹: ≤ 118 MB): streamed one at a time
(torch reference, rank-1 kernel) and in chunks of c (the chunked kernel OBS uses). All compute the same
F⁻¹; the table gives total seconds, seconds per gradient for the whole encoder, and the ratio.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from sparsecore.kernels.fisher import fisher_inverse_init, fisher_inverse_update, fisher_inverse_update_chunk

SHAPES = [(384, 384)] * 4 + [(1536, 384), (384, 1536)]


def torch_stream(grads: list[torch.Tensor], n_blocks: int, block: int, damp: float) -> torch.Tensor:
    m = len(grads)
    finv = (torch.eye(block) / damp).expand(n_blocks, block, block).contiguous()
    for g in grads:
        v = torch.bmm(finv, g.unsqueeze(-1)).squeeze(-1)
        denom = m + (g * v).sum(-1)
        finv -= v.unsqueeze(-1) * v.unsqueeze(-2) / denom[:, None, None]
    return finv


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--block", type=int, default=50)
    ap.add_argument("--grads", type=int, default=64)
    ap.add_argument("--damp", type=float, default=1e-7)
    ap.add_argument("--chunk", type=int, default=8, help="gradients per call of the chunked kernel")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    fisher_inverse_update(fisher_inverse_init(2, args.block, 1.0), np.ones((2, args.block), np.float32), 1)  # compile
    fisher_inverse_update_chunk(fisher_inverse_init(2, args.block, 1.0), np.ones((2, 2, args.block), np.float32), 2)
    t_numba = t_torch = t_chunk = 0.0
    worst = 0.0
    total = 0
    for layer in range(6):
        for shape in SHAPES:
            d = shape[0] * shape[1]
            total += d
            n_blocks = -(-d // args.block)
            grads = [rng.standard_normal((n_blocks, args.block), dtype=np.float32) * 1e-3 for _ in range(args.grads)]
            t = time.perf_counter()
            finv = fisher_inverse_init(n_blocks, args.block, args.damp)
            for g in grads:
                fisher_inverse_update(finv, g, args.grads)
            t_numba += time.perf_counter() - t
            stacked = np.stack(grads)
            t = time.perf_counter()
            chunked = fisher_inverse_init(n_blocks, args.block, args.damp)
            for start in range(0, args.grads, args.chunk):
                fisher_inverse_update_chunk(chunked, stacked[start:start + args.chunk], args.grads)
            t_chunk += time.perf_counter() - t
            tg = [torch.from_numpy(g) for g in grads]
            t = time.perf_counter()
            ref = torch_stream(tg, n_blocks, args.block, args.damp)
            t_torch += time.perf_counter() - t
            if layer == 0:
                for ours in (finv, chunked):
                    worst = max(worst, float((torch.from_numpy(ours) - ref).abs().max() / ref.abs().max()))
    print(f"MiniLM encoder targeted weights: {total / 1e6:.1f}M, B = {args.block}, m = {args.grads}, "
          f"{torch.get_num_threads()} threads; max relative difference (layer 0) {worst:.1e}")
    print("| implementation | seconds | s per gradient | speed-up |")
    print("|---|---:|---:|---:|")
    for label, seconds in (("torch batched reference (bmm), one gradient at a time", t_torch),
                           ("sparsecore Numba kernel, one gradient at a time", t_numba),
                           (f"sparsecore Numba kernel, chunks of {args.chunk} (OBS uses this)", t_chunk)):
        print(f"| {label} | {seconds:.1f} | {seconds / args.grads:.3f} | {t_torch / seconds:.2f} |")


if __name__ == "__main__":
    main()
