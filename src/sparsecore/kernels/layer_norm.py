"""LayerNorm over features in the features × tokens layout, with the residual add fused.

``out = LayerNorm(x + residual)`` for ``x, residual (H, T)``: each token is a column, so per-token mean and
variance accumulate along contiguous feature rows, a vector of tokens at a time. Two passes over the sums (mean,
then the variance of the centred values, as PyTorch computes it in fp32) and one that writes, on chunks of
``CHUNK`` tokens (H × 256 bytes of each array: in L2). The chunk kernel is LLVM vector IR (:func:`emit_chunk`): the
accumulators of a chunk stay in registers across the feature loop — 4 zmm or 2 × 4 ymm on the host's float path
(:func:`~.isa.float_path`), one-element vectors for the tokens past the last full vector (the same operations, so a
token's bits do not depend on where it sits). Threads take runs of whole chunks, at least ``SPAN`` tokens each.
``out`` may be ``x`` (in place). Tested against float64 in tests/kernels/test_layer_norm.py.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from llvmlite import ir
from numba import config, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from sparsecore.kernels._config import NJIT_FMA_PARALLEL
from sparsecore.kernels.isa import float_path, marker, marker_path

CHUNK = 64  # tokens normalised together: 64 × H floats of x, residual and out stay in L2
SPAN = 256  # fewest tokens per thread: at 128 tokens two threads took 2.5x the time of one (the threads' chunks
# share pages and prefetched lines, and one chunk is less work than waking a thread)
# path → (fp32 lanes per vector, vectors per kernel call): the sums, means and inverse deviations of the vectors stay
# in registers (16 ymm on AVX2: 4 vectors, two calls per chunk)
SHAPES = {"avx512": (16, 4), "avx2": (8, 4), "generic": (1, 16)}

_I64, _F32 = ir.IntType(64), ir.FloatType()


def emit_chunk(builder: ir.IRBuilder, lanes: int, vectors: int, x_ptr, r_ptr, residual: bool, stride, hidden,
               gamma_ptr, beta_ptr, eps, out_ptr) -> None:
    """Emit LayerNorm of the ``lanes · vectors`` tokens whose feature-0 elements ``x_ptr``, ``r_ptr`` (read when
    ``residual``) and ``out_ptr`` point at (float*; feature f at element ``f · stride``, i64), over ``hidden`` (i64)
    features with ``gamma_ptr``, ``beta_ptr`` (float*) and ``eps`` (float)."""
    from sparsecore.kernels.simd import accumulate_loop

    vec = ir.VectorType(_F32, lanes)
    fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec] * 3), f"llvm.fma.v{lanes}f32")
    sqrt = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec]), f"llvm.sqrt.v{lanes}f32")
    zero = ir.Constant(vec, [0.0] * lanes)

    def splat(value):
        first = builder.insert_element(ir.Constant(vec, ir.Undefined), value, ir.Constant(ir.IntType(32), 0))
        return builder.shuffle_vector(first, ir.Constant(vec, ir.Undefined),
                                      ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes))

    def at(ptr, f, v):
        offset = builder.add(builder.mul(f, stride), ir.Constant(_I64, v * lanes))
        return builder.bitcast(builder.gep(ptr, [offset]), vec.as_pointer())

    def load(ptr, f, v):
        return builder.load(at(ptr, f, v), align=4)

    def add_pass(f, sums):
        new = []
        for v in range(vectors):
            o = builder.fadd(load(x_ptr, f, v), load(r_ptr, f, v)) if residual else load(x_ptr, f, v)
            builder.store(o, at(out_ptr, f, v), align=4)
            new.append(builder.fadd(sums[v], o))
        return new

    inv_h = splat(builder.fdiv(ir.Constant(_F32, 1.0), builder.sitofp(hidden, _F32)))
    zero_i = ir.Constant(_I64, 0)
    means = [builder.fmul(s, inv_h) for s in accumulate_loop(builder, zero_i, hidden, zero, vectors, add_pass)]

    def var_pass(f, sums):
        new = []
        for v in range(vectors):
            d = builder.fsub(load(out_ptr, f, v), means[v])
            new.append(builder.call(fma, [d, d, sums[v]]))
        return new

    variances = accumulate_loop(builder, zero_i, hidden, zero, vectors, var_pass)
    eps_v, one = splat(eps), ir.Constant(vec, [1.0] * lanes)
    rstds = [builder.fdiv(one, builder.call(sqrt, [builder.call(fma, [var, inv_h, eps_v])])) for var in variances]

    def write_pass(f, _accs):
        g = splat(builder.load(builder.gep(gamma_ptr, [f])))
        b = splat(builder.load(builder.gep(beta_ptr, [f])))
        for v in range(vectors):
            d = builder.fsub(load(out_ptr, f, v), means[v])
            builder.store(builder.call(fma, [builder.fmul(d, rstds[v]), g, b]), at(out_ptr, f, v), align=4)
        return []

    accumulate_loop(builder, zero_i, hidden, None, 0, write_pass)


def _chunk_intrinsic(lanes: int, vectors: int):
    @intrinsic
    def chunk(typingctx, x, residual, has_residual, gamma, beta, eps, out, t0):
        if not all(isinstance(a, types.Array) and a.dtype == types.float32 for a in (x, residual, gamma, beta, out)):
            return None

        def codegen(context, builder, signature, args):
            a_x, a_r, a_has, a_gamma, a_beta, a_eps, a_out, a_t0 = args

            def struct(ty, value):
                return cgutils.create_struct_proxy(ty)(context, builder, value=value)

            xs = struct(x, a_x)
            hidden, stride = cgutils.unpack_tuple(builder, xs.shape, 2)
            t = context.cast(builder, a_t0, signature.args[7], types.int64)
            x_ptr, r_ptr, out_ptr = (builder.gep(struct(ty, v).data, [t]) for ty, v in
                                     ((x, a_x), (residual, a_r), (out, a_out)))
            gamma_ptr, beta_ptr = struct(gamma, a_gamma).data, struct(beta, a_beta).data
            eps_f = context.cast(builder, a_eps, signature.args[5], types.float32)
            with builder.if_else(a_has) as (with_residual, alone):
                for block, flag in ((with_residual, True), (alone, False)):
                    with block:
                        emit_chunk(builder, lanes, vectors, x_ptr, r_ptr, flag, stride, hidden, gamma_ptr, beta_ptr,
                                   eps_f, out_ptr)
            return context.get_dummy_value()

        return types.void(x, residual, has_residual, gamma, beta, eps, out, t0), codegen

    return chunk


_CHUNKS = {shape: _chunk_intrinsic(*shape) for shape in {*SHAPES.values(), *((lanes, 1) for lanes, _ in SHAPES.values())}}


def _chunk(x, residual, has_residual, gamma, beta, eps, out, t0, t1):
    """Coverage runs (``NUMBA_DISABLE_JIT``, no intrinsics): the same passes in numpy."""
    o = x[:, t0:t1] + residual[:, t0:t1] if has_residual else x[:, t0:t1].copy()
    centred = o - o.mean(axis=0, dtype=np.float32)
    rstd = np.float32(1.0) / np.sqrt((centred * centred).mean(axis=0, dtype=np.float32) + np.float32(eps))
    out[:, t0:t1] = centred * rstd * gamma[:, None] + beta[:, None]


def _tokens(marker, x, residual, has_residual, gamma, beta, eps, out, t0, t1):
    """LayerNorm of tokens ``t0 … t1`` at the vector width of the path ``marker``'s type names."""
    _chunk(x, residual, has_residual, gamma, beta, eps, out, t0, t1)


if not config.DISABLE_JIT:

    @overload(_tokens, inline="always")
    def _tokens_impl(marker, x, residual, has_residual, gamma, beta, eps, out, t0, t1):
        lanes, vectors = SHAPES[marker_path(marker) if marker_path(marker) in SHAPES else "generic"]
        full, vector, one = _CHUNKS[(lanes, vectors)], _CHUNKS[(lanes, 1)], _CHUNKS[(1, 1)]
        width = lanes * vectors

        def impl(marker, x, residual, has_residual, gamma, beta, eps, out, t0, t1):
            t = t0
            while t + width <= t1:
                full(x, residual, has_residual, gamma, beta, eps, out, t)
                t += width
            while t + lanes <= t1:
                vector(x, residual, has_residual, gamma, beta, eps, out, t)
                t += lanes
            while t < t1:
                one(x, residual, has_residual, gamma, beta, eps, out, t)
                t += 1

        return impl


@nb.njit(**NJIT_FMA_PARALLEL)
def _add_layer_norm_t(marker, x, residual, has_residual, gamma, beta, eps, out, threads, span):
    tokens = x.shape[1]
    chunks = (tokens + CHUNK - 1) // CHUNK
    tasks = max(1, min(threads, tokens // span))
    for task in nb.prange(tasks):
        c0, c1 = task * chunks // tasks, (task + 1) * chunks // tasks
        _tokens(marker, x, residual, has_residual, gamma, beta, np.float32(eps), out, c0 * CHUNK,
                min(tokens, c1 * CHUNK))


def add_layer_norm_t(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float,
                     residual: np.ndarray | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """``LayerNorm(x + residual)`` over axis 0 of ``x (H, T)``; ``out=x`` normalises in place."""
    for name, a in (("x", x), ("residual", residual), ("out", out)):
        if a is not None and (a.dtype != np.float32 or a.ndim != 2 or not a.flags.c_contiguous or a.shape != x.shape):
            raise ValueError(f"{name} must be a C-contiguous float32 array of shape {x.shape}, got {a.dtype} {a.shape}")
    gamma = np.ascontiguousarray(gamma, dtype=np.float32)
    beta = np.ascontiguousarray(beta, dtype=np.float32)
    if gamma.shape != (x.shape[0],) or beta.shape != (x.shape[0],):
        raise ValueError(f"gamma and beta must have shape ({x.shape[0]},), got {gamma.shape} and {beta.shape}")
    if out is None:
        out = np.empty_like(x)
    _add_layer_norm_t(marker(float_path()), x, x if residual is None else residual, residual is not None, gamma, beta,
                      eps, out, nb.get_num_threads(), SPAN)
    return out


def chunk_assembly(lanes: int, vectors: int, cpu: str) -> str:
    """Machine code of the chunk kernel (``lanes`` × ``vectors`` tokens, residual added) compiled for ``cpu`` (an LLVM
    CPU name) from a stand-alone module, whatever CPU this host is."""
    from sparsecore.kernels.row_kernels import assembly

    ptr = _F32.as_pointer()
    return assembly(f"layer_norm_{lanes}x{vectors}", [ptr, ptr, ptr, ptr, ptr, _I64, _I64, _F32],
                    lambda builder, x, r, gamma, beta, out, stride, hidden, eps: emit_chunk(
                        builder, lanes, vectors, x, r, True, stride, hidden, gamma, beta, eps, out), cpu)
