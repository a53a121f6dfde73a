"""This machine's measured fp32 FMA peak, for the harness's "achieved vs peak" column.

A loop of nothing but fused multiply-adds on ``CHAINS`` independent register accumulators per thread, written as
LLVM vector IR (``numba.extending.intrinsic``) on the widest vectors the host has — 512-bit where AVX-512 runs, else
256-bit — so the loop measures the FMA units, not what the auto-vectoriser picks (LLVM's loop vectoriser prefers
256-bit vectors on AVX-512 cores and would report half of a two-pipe 512-bit core). Twelve chains cover an FMA
latency of 4 cycles on two pipes (8 in flight) with margin. No memory traffic: what a kernel could reach at best.
No ``vpdpbusd`` (integer) peak is measured.

    python benchmarks/peak.py
"""

from __future__ import annotations

import time

import numba as nb
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from sparsecore.kernels.isa import host_features

CHAINS = 12
LANES = 16 if "avx512f" in host_features() else 8


@intrinsic
def _fma_chains(typingctx, reps, seed):
    """Run ``reps`` rounds of ``acc ← acc·a + b`` on CHAINS vectors of LANES floats that start at ``seed``·(1 + c/100)
    (distinct and unknown at compile time: nothing folds); returns their lane sum."""

    def codegen(context, builder, signature, args):
        vec = ir.VectorType(ir.FloatType(), LANES)
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec] * 3), f"llvm.fma.v{LANES}f32")
        a = ir.Constant(vec, [0.999] * LANES)
        b = ir.Constant(vec, [1e-3] * LANES)
        start = ir.Constant(ir.IntType(64), 0)
        end = context.cast(builder, args[0], signature.args[0], types.int64)
        seed = context.cast(builder, args[1], signature.args[1], types.float32)
        first = builder.insert_element(ir.Constant(vec, ir.Undefined), seed, ir.Constant(ir.IntType(32), 0))
        seeds = builder.shuffle_vector(first, ir.Constant(vec, ir.Undefined),
                                       ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES))
        inits = [builder.fmul(seeds, ir.Constant(vec, [1.0 + c / 100] * LANES)) for c in range(CHAINS)]

        def step(j, accs):
            return [builder.call(fma, [acc, a, b]) for acc in accs]

        accs = _loop(builder, start, end, inits, step)
        total = ir.Constant(ir.FloatType(), 0.0)
        for acc in accs:
            for lane in range(LANES):
                total = builder.fadd(total, builder.extract_element(acc, ir.Constant(ir.IntType(32), lane)))
        return total

    return types.float32(reps, seed), codegen


def _loop(builder, start, end, inits, step):
    """``for j in [start, end)`` carrying one accumulator per value of ``inits``; returns them after the loop."""
    entry = builder.basic_block
    header, body, done = (builder.append_basic_block(f"peak.{name}") for name in ("header", "body", "done"))
    builder.branch(header)
    builder.position_at_end(header)
    j = builder.phi(start.type)
    accs = [builder.phi(init.type) for init in inits]
    j.add_incoming(start, entry)
    for acc, init in zip(accs, inits):
        acc.add_incoming(init, entry)
    builder.cbranch(builder.icmp_signed("<", j, end), body, done)
    builder.position_at_end(body)
    new = step(j, accs)
    j.add_incoming(builder.add(j, ir.Constant(start.type, 1)), builder.basic_block)
    for acc, value in zip(accs, new):
        acc.add_incoming(value, builder.basic_block)
    builder.branch(header)
    builder.position_at_end(done)
    return accs


@nb.njit(parallel=True, cache=False)
def _fma_loop(reps, threads, seed):
    out = np.zeros(threads, np.float32)
    for t in nb.prange(threads):
        out[t] = _fma_chains(reps, seed + np.float32(t))
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
            return 2 * CHAINS * LANES * reps * threads / elapsed / 1e9
        reps *= 2


if __name__ == "__main__":
    print(f"fp32 FMA peak ({LANES * 32}-bit vectors, {CHAINS} chains): {fma_peak_gflops(1):.1f} GFLOP/s on 1 thread, "
          f"{fma_peak_gflops():.1f} on {nb.get_num_threads()} threads")
