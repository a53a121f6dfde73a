"""This machine's measured fp32 FMA peak, for the harness's "achieved vs peak" column.

A loop of independent fused multiply-adds on eight 8-wide register accumulators per thread (64 floats,
``fastmath={"contract"}`` so ``a*b + c`` becomes one FMA): nothing but FMAs, no memory traffic. It is what
a kernel could reach at best on these cores; the integer path of our engine also runs on FMAs (int8 codes
widened to fp32, see kernels/sparse_matmul.py), so the same peak bounds int8 rows. No VNNI peak is
measured: the engine has no VNNI kernel (and this project's current machines have no VNNI).
"""

from __future__ import annotations

import time

import numba as nb
import numpy as np

_LANES = 64  # eight ymm (or four zmm) accumulators


@nb.njit(fastmath={"contract"}, parallel=True, cache=False)
def _fma_loop(reps, threads, seed):
    out = np.zeros(threads, np.float32)
    for t in nb.prange(threads):
        acc = np.empty(_LANES, np.float32)
        for i in range(_LANES):
            acc[i] = seed * (i + t)
        a, b = np.float32(0.999), np.float32(1e-3)
        for _ in range(reps):
            for i in range(_LANES):
                acc[i] = acc[i] * a + b
        out[t] = acc.sum()
    return out


def fma_peak_gflops(threads: int | None = None, seconds: float = 0.5) -> float:
    """Measured fp32 GFLOP/s (2 flops per FMA) over ``threads`` threads (default: all of Numba's)."""
    threads = threads or nb.get_num_threads()
    _fma_loop(10, threads, np.float32(1.0))
    reps = 1_000_000
    while True:
        start = time.perf_counter()
        _fma_loop(reps, threads, np.float32(1.0))
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return 2 * _LANES * reps * threads / elapsed / 1e9
        reps *= 2


if __name__ == "__main__":
    print(f"fp32 FMA peak: {fma_peak_gflops(1):.1f} GFLOP/s on 1 thread, {fma_peak_gflops():.1f} on "
          f"{nb.get_num_threads()} threads")
