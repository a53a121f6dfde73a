"""LayerNorm over features in the features × tokens layout, with the residual add fused.

``out = LayerNorm(x + residual)`` for ``x, residual (H, T)``: each token is a column, so per-token mean and
variance accumulate along contiguous feature rows, a vector of tokens at a time. Two passes over the sums (mean,
then the variance of the centred values, as PyTorch computes it in fp32) and one that writes, on chunks of
``CHUNK`` tokens (H × 256 bytes of each array: in L2). The chunk kernel is LLVM vector IR (:func:`emit_chunk`): the
accumulators of a chunk stay in registers across the feature loop — 4 zmm or 2 × 4 ymm on the host's float path
(:func:`~.isa.float_path`), one-element vectors for the tokens past the last full vector (the same operations, so a
token's bits do not depend on where it sits). Threads take runs of whole chunks, at least ``SPAN`` tokens each.
``out`` may be ``x`` (in place). With ``codes``, the write pass also stores each output's uint8 code in a next int8
Linear's input layout — token-blocked ``(blocks, H, TB)`` (quads) or interleaved by four features ``(blocks, H/4, TB,
4)`` (1×4 blocks) — without a quantize pass; with ``blocked``, a copy of the output in the token-blocked float32 layout
a next fp32 Linear reads (:func:`~.fp32_rows.token_blocks`), without a pass of its own. Tested against float64 (and
the codes against :func:`~.quantize.quantize_u8_blocked` and :func:`~.quantize.quantize_u8_interleave4`, the copy
against :func:`~.fp32_rows.token_blocks`) in tests/kernels/test_layer_norm.py.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from llvmlite import ir
from numba import config, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from sparsecore.kernels._config import NJIT_FMA, NJIT_FMA_PARALLEL
from sparsecore.kernels.bound import bound
from sparsecore.kernels.isa import float_path, marker, marker_path

CHUNK = 64  # tokens normalised together: 64 × H floats of x, residual and out stay in L2
SPAN = 64  # fewest tokens per thread: one chunk (two threads at 128 tokens: 33 → 23 µs at H = 384, 78 → 71 µs at 768)
# path → (fp32 lanes per vector, vectors per kernel call): the sums, means and inverse deviations of the vectors stay
# in registers (16 ymm on AVX2: 4 vectors, two calls per chunk)
SHAPES = {"avx512": (16, 4), "avx2": (8, 4), "generic": (1, 16)}

_I64, _F32 = ir.IntType(64), ir.FloatType()


def emit_chunk(builder: ir.IRBuilder, lanes: int, vectors: int, x_ptr, r_ptr, residual: bool, stride, hidden,
               gamma_ptr, beta_ptr, eps, out_ptr, codes=None) -> None:
    """Emit LayerNorm of the ``lanes · vectors`` tokens whose feature-0 elements ``x_ptr``, ``r_ptr`` (read when
    ``residual``) and ``out_ptr`` point at (float*; feature f at element ``f · stride``, i64), over ``hidden`` (i64)
    features with ``gamma_ptr``, ``beta_ptr`` (float*) and ``eps`` (float).

    ``codes = (pointers, tb, qscale, zero, layout)``: also write each output into a token-blocked array with ``tb``
    (i64) tokens per block. ``layout`` ``"codes"``: its uint8 code (:func:`~.epilogue.emit_codes`, the bits of
    :func:`~.quantize.quantize_u8`), ``pointers[v]`` (i8*) where vector v's tokens sit for feature 0, feature f
    ``f · tb`` bytes further; ``"interleaved"`` (``hidden`` a multiple of 4): the four codes of features 4g … 4g+3 of a
    token as one little-endian i32, ``pointers[v]`` (i32*) where vector v's tokens sit for group 0, group g ``g · tb``
    further; ``"float"``: the output itself, ``pointers[v]`` (float*) as for ``"codes"`` in floats
    (``qscale``, ``zero`` unused)."""
    from sparsecore.kernels.epilogue import code_constants, emit_codes, emit_word4
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

    layout = None if codes is None else codes[4]
    interleaved = layout == "interleaved"
    if codes is not None:
        code_ptrs, tb, qscale, zero_point, _ = codes
    if layout in ("codes", "interleaved"):
        constants = code_constants(builder, vec, qscale, zero_point)
        byte_vec, int_vec = ir.VectorType(ir.IntType(8), lanes), ir.VectorType(ir.IntType(32), lanes)

    def normalised(f, v):
        """Feature ``f``'s output for vector ``v``, stored; returned for its code."""
        g = splat(builder.load(builder.gep(gamma_ptr, [f])))
        b = splat(builder.load(builder.gep(beta_ptr, [f])))
        d = builder.fsub(load(out_ptr, f, v), means[v])
        y = builder.call(fma, [builder.fmul(d, rstds[v]), g, b])
        builder.store(y, at(out_ptr, f, v), align=4)
        return y

    def write_pass(f, _accs):
        for v in range(vectors):
            y = normalised(f, v)
            if layout == "float":
                dst = builder.gep(code_ptrs[v], [builder.mul(f, tb)])
                builder.store(y, builder.bitcast(dst, vec.as_pointer()), align=4)
            elif layout == "codes":
                code = builder.trunc(emit_codes(builder, y, *constants), byte_vec)
                dst = builder.gep(code_ptrs[v], [builder.mul(f, tb)])
                builder.store(code, builder.bitcast(dst, byte_vec.as_pointer()), align=1)
        return []

    def write_groups(group, _accs):  # four features at a time, their codes one i32 per token
        for v in range(vectors):
            features = [builder.add(builder.mul(group, ir.Constant(_I64, 4)), ir.Constant(_I64, q)) for q in range(4)]
            word = emit_word4(builder, [emit_codes(builder, normalised(f, v), *constants) for f in features])
            dst = builder.gep(code_ptrs[v], [builder.mul(group, tb)])
            builder.store(word, builder.bitcast(dst, int_vec.as_pointer()), align=1)
        return []

    if interleaved:
        accumulate_loop(builder, zero_i, builder.sdiv(hidden, ir.Constant(_I64, 4)), None, 0, write_groups)
    else:
        accumulate_loop(builder, zero_i, hidden, None, 0, write_pass)


def _chunk_intrinsic(lanes: int, vectors: int):
    @intrinsic
    def chunk(typingctx, x, residual, has_residual, gamma, beta, eps, out, t0, codes, qscale, zero):
        if not all(isinstance(a, types.Array) and a.dtype == types.float32 for a in (x, residual, gamma, beta, out)):
            return None
        with_codes = not isinstance(codes, types.NoneType)
        if with_codes and not (isinstance(codes, types.Array) and (codes.dtype == types.uint8 and codes.ndim in (3, 4)
                                                                   or codes.dtype == types.float32 and codes.ndim == 3)):
            return None
        interleaved = with_codes and codes.ndim == 4
        layout = "interleaved" if interleaved else "float" if with_codes and codes.dtype == types.float32 else "codes"

        def codegen(context, builder, signature, args):
            a_x, a_r, a_has, a_gamma, a_beta, a_eps, a_out, a_t0, a_codes, a_qscale, a_zero = args

            def struct(ty, value):
                return cgutils.create_struct_proxy(ty)(context, builder, value=value)

            xs = struct(x, a_x)
            hidden, stride = cgutils.unpack_tuple(builder, xs.shape, 2)
            t = context.cast(builder, a_t0, signature.args[7], types.int64)
            x_ptr, r_ptr, out_ptr = (builder.gep(struct(ty, v).data, [t]) for ty, v in
                                     ((x, a_x), (residual, a_r), (out, a_out)))
            gamma_ptr, beta_ptr = struct(gamma, a_gamma).data, struct(beta, a_beta).data
            eps_f = context.cast(builder, a_eps, signature.args[5], types.float32)
            code_args = None
            if with_codes:  # token t of feature (group) 0 sits at element (t // tb)·K·tb + t % tb: bytes, floats,
                cs = struct(codes, a_codes)  # or i32 words of four codes when interleaved (K: the groups)
                _, k, tb = cgutils.unpack_tuple(builder, cs.shape, 4 if interleaved else 3)[:3]
                data = builder.bitcast(cs.data, ir.IntType(32).as_pointer()) if interleaved else cs.data
                pointers = []
                for v in range(vectors):
                    tv = builder.add(t, ir.Constant(_I64, v * lanes))
                    block, within = builder.sdiv(tv, tb), builder.srem(tv, tb)
                    pointers.append(builder.gep(data, [builder.add(builder.mul(block, builder.mul(k, tb)), within)]))
                code_args = (pointers, tb, context.cast(builder, a_qscale, signature.args[9], types.float32),
                             context.cast(builder, a_zero, signature.args[10], types.float32), layout)
            with builder.if_else(a_has) as (with_residual, alone):
                for block, flag in ((with_residual, True), (alone, False)):
                    with block:
                        emit_chunk(builder, lanes, vectors, x_ptr, r_ptr, flag, stride, hidden, gamma_ptr, beta_ptr,
                                   eps_f, out_ptr, code_args)
            return context.get_dummy_value()

        return types.void(x, residual, has_residual, gamma, beta, eps, out, t0, codes, qscale, zero), codegen

    return chunk


_CHUNKS = {shape: _chunk_intrinsic(*shape) for shape in {*SHAPES.values(), *((lanes, 1) for lanes, _ in SHAPES.values())}}


def _chunk(x, residual, has_residual, gamma, beta, eps, out, t0, t1, codes, qscale, zero):
    """Coverage runs (``NUMBA_DISABLE_JIT``, no intrinsics): the same passes in numpy."""
    o = x[:, t0:t1] + residual[:, t0:t1] if has_residual else x[:, t0:t1].copy()
    centred = o - o.mean(axis=0, dtype=np.float32)
    rstd = np.float32(1.0) / np.sqrt((centred * centred).mean(axis=0, dtype=np.float32) + np.float32(eps))
    out[:, t0:t1] = centred * rstd * gamma[:, None] + beta[:, None]
    if codes is not None and codes.dtype == np.float32:
        for t in range(t0, t1):
            codes[t // codes.shape[2], :, t % codes.shape[2]] = out[:, t]
    elif codes is not None:
        from sparsecore.kernels.quantize import quantize_u8

        tb = codes.shape[2]
        for t in range(t0, t1):
            column = quantize_u8(np.ascontiguousarray(out[:, t]), qscale, int(zero))
            if codes.ndim == 4:
                codes[t // tb, :, t % tb] = column.reshape(-1, 4)
            else:
                codes[t // tb, :, t % tb] = column


def _tokens(marker, x, residual, has_residual, gamma, beta, eps, out, t0, t1, codes, qscale, zero):
    """LayerNorm of tokens ``t0 … t1`` at the vector width of the path ``marker``'s type names (and their codes)."""
    _chunk(x, residual, has_residual, gamma, beta, eps, out, t0, t1, codes, qscale, zero)


if not config.DISABLE_JIT:

    @overload(_tokens, inline="always")
    def _tokens_impl(marker, x, residual, has_residual, gamma, beta, eps, out, t0, t1, codes, qscale, zero):
        lanes, vectors = SHAPES[marker_path(marker) if marker_path(marker) in SHAPES else "generic"]
        full, vector, one = _CHUNKS[(lanes, vectors)], _CHUNKS[(lanes, 1)], _CHUNKS[(1, 1)]
        width = lanes * vectors

        def impl(marker, x, residual, has_residual, gamma, beta, eps, out, t0, t1, codes, qscale, zero):
            t = t0
            while t + width <= t1:
                full(x, residual, has_residual, gamma, beta, eps, out, t, codes, qscale, zero)
                t += width
            while t + lanes <= t1:
                vector(x, residual, has_residual, gamma, beta, eps, out, t, codes, qscale, zero)
                t += lanes
            while t < t1:
                one(x, residual, has_residual, gamma, beta, eps, out, t, codes, qscale, zero)
                t += 1

        return impl


@nb.njit(**NJIT_FMA_PARALLEL)
def _add_layer_norm_t(marker, x, residual, has_residual, gamma, beta, eps, out, threads, span, codes, qscale, zero):
    """``codes``: None, a token-blocked (blocks, H, TB) or interleaved (blocks, H/4, TB, 4) uint8 array that also
    receives the outputs' codes for ``qscale``, ``zero`` (float32; tokens past the last one: ``zero``), or a
    token-blocked float32 array that receives the outputs themselves (tokens past the last one: ``zero``, passed as 0).
    Every argument is passed: Numba dispatches a call with omitted defaults slowly."""
    tokens = x.shape[1]
    chunks = (tokens + CHUNK - 1) // CHUNK
    tasks = max(1, min(threads, tokens // span))
    for task in nb.prange(tasks):
        c0, c1 = task * chunks // tasks, (task + 1) * chunks // tasks
        _tokens(marker, x, residual, has_residual, gamma, beta, np.float32(eps), out, c0 * CHUNK,
                min(tokens, c1 * CHUNK), codes, np.float32(qscale), np.float32(zero))
    if codes is not None and codes.shape[0]:
        _pad_codes(codes, tokens, zero)


@nb.njit(**NJIT_FMA)
def _pad_codes(codes, tokens, pad):
    """Tokens ``tokens …`` of the last block of a token-blocked or interleaved array set to ``pad`` (cast to its
    dtype)."""
    tb = codes.shape[2]
    last = codes.shape[0] - 1
    flat = codes[last].reshape(codes.shape[1], -1)  # (rows or groups, tb · (1 or 4))
    per = flat.shape[1] // tb
    for f in range(flat.shape[0]):  # element loops: a slice assignment here would be a parallel region per row
        for i in range((tokens - last * tb) * per, tb * per):
            flat[f, i] = pad


def add_layer_norm_t(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float,
                     residual: np.ndarray | None = None, out: np.ndarray | None = None,
                     codes: tuple[float, int, np.ndarray] | None = None,
                     blocked: np.ndarray | None = None) -> np.ndarray:
    """``LayerNorm(x + residual)`` over axis 0 of ``x (H, T)``; ``out=x`` normalises in place.

    ``codes = (scale, zero_point, buffer)``: also write the output's uint8 codes into ``buffer``, token-blocked
    ``(ceil(T/TB), H, TB)`` — :func:`~.quantize.quantize_u8_blocked` of the output, bit for bit — or interleaved by four
    features ``(ceil(T/TB), H/4, TB, 4)`` (H a multiple of 4) — :func:`~.quantize.quantize_u8_interleave4`'s bits
    (tokens past T: the zero point): the input a next int8 Linear reads, without a pass of its own. TB: a multiple
    of 16. ``blocked``: also write the output into this float32 ``(ceil(T/TB), H, TB)`` array — the token-blocked
    layout a next fp32 Linear reads, :func:`~.fp32_rows.token_blocks` of the output bit for bit (tokens past T: 0)."""
    return add_layer_norm_call(x, gamma, beta, eps, residual, out, codes, blocked)()


def add_layer_norm_call(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float,
                        residual: np.ndarray | None = None, out: np.ndarray | None = None,
                        codes: tuple[float, int, np.ndarray] | None = None, blocked: np.ndarray | None = None):
    """:func:`add_layer_norm_t` checked once and bound to these arrays: a callable without arguments that runs the
    kernel on their current contents and returns ``out`` (:func:`~.bound.bound`)."""
    for name, a in (("x", x), ("residual", residual), ("out", out)):
        if a is not None and (a.dtype != np.float32 or a.ndim != 2 or not a.flags.c_contiguous or a.shape != x.shape):
            raise ValueError(f"{name} must be a C-contiguous float32 array of shape {x.shape}, got {a.dtype} {a.shape}")
    gamma = np.ascontiguousarray(gamma, dtype=np.float32)
    beta = np.ascontiguousarray(beta, dtype=np.float32)
    if gamma.shape != (x.shape[0],) or beta.shape != (x.shape[0],):
        raise ValueError(f"gamma and beta must have shape ({x.shape[0]},), got {gamma.shape} and {beta.shape}")
    if out is None:
        out = np.empty_like(x)
    buffer, qscale, zero = None, np.float32(1.0), 0
    if codes is not None and blocked is not None:
        raise ValueError("pass codes or blocked, not both: a LayerNorm writes one next Linear's input")
    if blocked is not None:
        from sparsecore.kernels.quantize import check_blocked

        check_blocked(blocked, x.shape[0], x.shape[1], np.float32, "the blocked buffer", multiple=16)
        buffer = blocked
    elif codes is not None:
        from sparsecore.kernels.quantize import _params, check_blocked

        scale, zero, buffer = codes
        qscale, zero = _params(scale, zero, 0, 255)
        check_blocked(buffer, x.shape[0], x.shape[1], np.uint8, "the codes buffer", multiple=16, interleaved=True)
    return bound(_add_layer_norm_t, out, marker(float_path()), x, x if residual is None else residual,
                 residual is not None, gamma, beta, eps, out, nb.get_num_threads(), SPAN, buffer, qscale,
                 np.float32(zero))


def chunk_assembly(lanes: int, vectors: int, cpu: str) -> str:
    """Machine code of the chunk kernel (``lanes`` × ``vectors`` tokens, residual added) compiled for ``cpu`` (an LLVM
    CPU name) from a stand-alone module, whatever CPU this host is."""
    from sparsecore.kernels.row_kernels import assembly

    ptr = _F32.as_pointer()
    return assembly(f"layer_norm_{lanes}x{vectors}", [ptr, ptr, ptr, ptr, ptr, _I64, _I64, _F32],
                    lambda builder, x, r, gamma, beta, out, stride, hidden, eps: emit_chunk(
                        builder, lanes, vectors, x, r, True, stride, hidden, gamma, beta, eps, out), cpu)
