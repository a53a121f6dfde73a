"""The attention's softmax over keys, per query column, as explicit vector code.

``exp_columns(marker, st, seq, nq, colmax, colsum)``: for every query column i < ``nq`` of ``st`` (keys × queries),
``colmax[i] = max_j st[j, i]``, ``st[j, i] ← exp(st[j, i] − colmax[i])`` for j < ``seq`` and ``colsum[i] = Σ_j`` of
those, summed in key order. Columns run four vectors at a time (independent chains along each row), then a vector
at a time — 16 lanes on ``avx512``/``avx512_vnni``, 8 on ``avx2``/``avx_vnni`` — and one at a time past the last full
vector and on every other path: the same operations on every lane (:func:`emit_exp`, the algorithm of :func:`~.vecmath.exp32`: 2ⁿ·e^r, the Cephes polynomial), so every
path gives the same bits — which the quantized attention's kernels rely on to agree with each other exactly.
Tested in tests/kernels/test_softmax.py.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import config, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from sparsecore.kernels import vecmath
from sparsecore.kernels.epilogue import LANES, _splat
from sparsecore.kernels.isa import marker_path
from sparsecore.kernels.row_kernels import arg_readers

_I32, _I64, _F32 = ir.IntType(32), ir.IntType(64), ir.FloatType()
_E = (vecmath._E6, vecmath._E5, vecmath._E4, vecmath._E3, vecmath._E2, vecmath._E1)


def emit_exp(builder: ir.IRBuilder, x):
    """e^x of the float vector ``x`` (0 below −87.3, where fp32 leaves the normal range)."""
    vec = x.type
    n_lanes = vec.count

    def intrinsic_fn(name, args):
        return cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec] * args),
                                              f"llvm.{name}.v{n_lanes}f32")

    fma, floor = intrinsic_fn("fma", 3), intrinsic_fn("floor", 1)
    low = _splat(vec, vecmath._EXP_MIN)
    y = builder.select(builder.fcmp_ordered(">", x, low), x, low)
    n = builder.call(floor, [builder.call(fma, [y, _splat(vec, vecmath._LOG2E), _splat(vec, 0.5)])])
    minus_n = builder.fneg(n)
    r = builder.call(fma, [minus_n, _splat(vec, vecmath._LN2_HI), y])
    r = builder.call(fma, [minus_n, _splat(vec, vecmath._LN2_LO), r])
    p = _splat(vec, _E[0])
    for c in _E[1:]:
        p = builder.call(fma, [p, r, _splat(vec, c)])
    p = builder.fadd(builder.call(fma, [builder.fmul(p, r), r, r]), _splat(vec, 1.0))
    ints = ir.VectorType(_I32, n_lanes)
    exponent = builder.shl(builder.add(builder.fptosi(n, ints), ir.Constant(ints, [127] * n_lanes)),
                           ir.Constant(ints, [23] * n_lanes))
    result = builder.fmul(p, builder.bitcast(exponent, vec))
    return builder.select(builder.fcmp_ordered(">=", x, low), result, _splat(vec, 0.0))


def emit_columns(builder: ir.IRBuilder, lanes: int, vectors: int, st_ptr, stride, seq, colmax_ptr,
                 colsum_ptr) -> None:
    """Emit the softmax numerators of ``lanes · vectors`` columns starting at ``st_ptr`` (float*; key j's row at
    element j · ``stride``, i64) over ``seq`` (i64) keys, their maxima and sums stored at ``colmax_ptr``/``colsum_ptr``;
    the vectors of a row are independent chains."""
    from sparsecore.kernels.simd import accumulate_loop

    vec = ir.VectorType(_F32, lanes)

    def at(j, v):
        offset = builder.add(builder.mul(j, stride), ir.Constant(_I64, v * lanes))
        return builder.bitcast(builder.gep(st_ptr, [offset]), vec.as_pointer())

    def max_step(j, accs):
        xs = [builder.load(at(j, v), align=4) for v in range(vectors)]
        return [builder.select(builder.fcmp_ordered(">", x, acc), x, acc) for x, acc in zip(xs, accs)]

    zero = ir.Constant(_I64, 0)
    colmax = accumulate_loop(builder, zero, seq, _splat(vec, -np.inf), vectors, max_step)

    def exp_step(j, accs):
        new = []
        for v in range(vectors):
            e = emit_exp(builder, builder.fsub(builder.load(at(j, v), align=4), colmax[v]))
            builder.store(e, at(j, v), align=4)
            new.append(builder.fadd(accs[v], e))
        return new

    colsum = accumulate_loop(builder, zero, seq, _splat(vec, 0.0), vectors, exp_step)
    for v in range(vectors):
        for ptr, value in ((colmax_ptr, colmax[v]), (colsum_ptr, colsum[v])):
            builder.store(value, builder.bitcast(builder.gep(ptr, [ir.Constant(_I64, v * lanes)]), vec.as_pointer()),
                          align=4)


def _columns_intrinsic(lanes: int, vectors: int):
    @intrinsic
    def columns(typingctx, st, seq, col, colmax, colsum):
        if not all(isinstance(a, types.Array) and a.dtype == types.float32 for a in (st, colmax, colsum)):
            return None

        def codegen(context, builder, signature, args):
            i64, struct = arg_readers(context, builder, signature, args)
            st_struct = struct(0)
            stride = cgutils.unpack_tuple(builder, st_struct.shape, 2)[1]
            emit_columns(builder, lanes, vectors, builder.gep(st_struct.data, [i64(2)]), stride, i64(1),
                         builder.gep(struct(3).data, [i64(2)]), builder.gep(struct(4).data, [i64(2)]))
            return context.get_dummy_value()

        return types.void(st, seq, col, colmax, colsum), codegen

    return columns


def exp_columns(marker, st, seq, nq, colmax, colsum):
    """See the module docstring: ``st`` a C-contiguous 2-D float32 array with at least ``seq`` rows and ``nq`` columns,
    ``colmax``, ``colsum`` at least ``nq`` floats; ``marker`` names the path."""
    for i in range(nq):
        colmax[i] = st[:seq, i].max() if seq else -np.inf
        e = np.array([vecmath.exp32(np.float32(v - colmax[i])) for v in st[:seq, i]], np.float32)
        st[:seq, i] = e
        total = np.float32(0.0)
        for v in e:
            total += v
        colsum[i] = total


if not config.DISABLE_JIT:
    _COLUMNS = {(lanes, vectors): _columns_intrinsic(lanes, vectors) for lanes in (1, 8, 16) for vectors in (1, 4)}

    @overload(exp_columns, inline="always")
    def _exp_columns_impl(marker, st, seq, nq, colmax, colsum):
        lanes = LANES.get(marker_path(marker), 1)
        four, vector, one = _COLUMNS[(lanes, 4)], _COLUMNS[(lanes, 1)], _COLUMNS[(1, 1)]

        def impl(marker, st, seq, nq, colmax, colsum):
            i = 0
            while i + 4 * lanes <= nq:
                four(st, seq, i, colmax, colsum)
                i += 4 * lanes
            while i + lanes <= nq:
                vector(st, seq, i, colmax, colsum)
                i += lanes
            while i < nq:
                one(st, seq, i, colmax, colsum)
                i += 1

        return impl


def columns_assembly(lanes: int, cpu: str, vectors: int = 4) -> str:
    """Machine code of the softmax of ``lanes · vectors`` columns compiled for ``cpu`` (an LLVM CPU name) from a
    stand-alone module, whatever CPU this host is."""
    from sparsecore.kernels.row_kernels import assembly

    ptr = _F32.as_pointer()
    return assembly(f"softmax_columns_{lanes}", [ptr, _I64, _I64, ptr, ptr],
                    lambda builder, st, stride, seq, colmax, colsum: emit_columns(builder, lanes, vectors, st, stride,
                                                                                 seq, colmax, colsum), cpu)

