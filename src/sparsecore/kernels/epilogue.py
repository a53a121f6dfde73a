"""The Linears' row epilogue as explicit vector code: ``out[i] = (acc[i] + bias) · scale``, then exact GELU, then
(optionally) the next int8 Linear's uint8 activation codes.

``row_epilogue(marker, acc, bias, scale, gelu, out)`` runs on one row's block of results (``acc`` int32 sums of the
integer kernels or fp32 sums, ``out`` float32, ``out.size`` elements) as LLVM vector IR of the path's width — 16 lanes
(one zmm) on ``avx512``/``avx512_vnni``, 8 (one ymm) on ``avx2``/``avx_vnni`` — and the elements past the last full
vector (every element on ``generic``) as one-element vectors: the same operations, so every path gives the same
bits. Numba's loop vectoriser picks 256-bit vectors on AVX-512 hosts and keeps the GELU's rational erf in one
dependent chain per vector; written out, the epilogue is one pass at the vector width with a row's elements
independent. ``rows_epilogue4`` runs four rows at once and writes their codes interleaved by four features (one
i32 per token): the input layout of a next 1×4-block Linear (:mod:`.int8_block4`), with no quantize pass.

GELU is :func:`~.vecmath.gelu32`, operation for operation: ``h + h·erf(z)`` (one FMA) with h = x/2, z = x/√2
clamped, erf(z) = z·P(z²)/Q(z²). Tested across paths and against float64 in
tests/kernels/test_epilogue.py.
"""

from __future__ import annotations

import platform

import numpy as np
from llvmlite import ir
from numba import config, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from sparsecore.kernels import vecmath
from sparsecore.kernels.isa import marker_path
from sparsecore.kernels.vecmath import gelu32

# fp32 lanes per vector of each path with vector code (other paths: one element at a time)
LANES = {"avx512_vnni": 16, "avx512": 16, "avx_vnni": 8, "avx2": 8}
GROUP = 2  # vectors per step of the epilogue loop, their operations interleaved

_I64, _F32 = ir.IntType(64), ir.FloatType()
_P, _Q = vecmath._GP[::-1], vecmath._GQ[::-1]  # highest power first: the Horner order


def _splat(vec, value: float):
    return ir.Constant(vec, [float(np.float32(value))] * vec.count)


def _clamp(builder, x, low, high):
    """``min(max(x, low), high)`` as compare-and-select (``vmaxps``/``vminps``)."""
    x = builder.select(builder.fcmp_ordered(">", x, low), x, low)
    return builder.select(builder.fcmp_ordered("<", x, high), x, high)


def emit_gelus(builder: ir.IRBuilder, xs: list) -> list:
    """GELU of each float vector of ``xs`` (one type), as :func:`~.vecmath.gelu32` computes it, the vectors'
    operations interleaved step by step: their dependent chains (two Horner polynomials, a division) overlap in the
    core."""
    vec = xs[0].type
    fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec] * 3), f"llvm.fma.v{vec.count}f32")
    clamp = vecmath._GELU_CLAMP
    zs = [_clamp(builder, builder.fmul(x, _splat(vec, vecmath._SQRT_HALF)), _splat(vec, -clamp), _splat(vec, clamp))
          for x in xs]
    us = [builder.fmul(z, z) for z in zs]
    ps, qs = [_splat(vec, _P[0])] * len(xs), [_splat(vec, _Q[0])] * len(xs)
    for i in range(1, len(_P)):
        ps = [builder.call(fma, [p, u, _splat(vec, _P[i])]) for p, u in zip(ps, us)]
        if i < len(_Q):
            qs = [builder.call(fma, [q, u, _splat(vec, _Q[i])]) for q, u in zip(qs, us)]
    erfs = [builder.fdiv(builder.fmul(z, p), q) for z, p, q in zip(zs, ps, qs)]
    halves = [builder.fmul(_splat(vec, 0.5), x) for x in xs]
    return [builder.call(fma, [h, e, h]) for h, e in zip(halves, erfs)]


def emit_epilogue(builder: ir.IRBuilder, lanes: int, acc_ptr, integer: bool, bias, scale, gelu: bool, out_ptr,
                  count, codes=None, stream: bool = False) -> None:
    """Emit ``out[i] = (acc[i] + bias) · scale`` (then GELU) for the ``count`` (i64) elements at ``acc_ptr`` (i32* when
    ``integer``, else float*) and ``out_ptr``: vectors of ``lanes`` elements, then one-element vectors for the rest (the
    same operations, so every element gets the same bits); ``bias``, ``scale`` float scalars. ``codes``: None (``out``
    float*) or the float scalars ``(qscale, zero)`` of a next Linear's activations, whose uint8 codes are written
    instead (``out`` i8*): ``clamp(round_half_even(y / qscale), −zero, 255 − zero) + zero``, as
    :func:`~.quantize.quantize_u8` computes them. ``stream`` (float ``out`` whose full vectors are aligned to their
    size): the full vectors are written with non-temporal stores, straight to memory."""
    from sparsecore.kernels.row_kernels import in_vectors
    from sparsecore.kernels.simd import accumulate_loop

    def run(width, first, stop):
        vec = ir.VectorType(_F32, width)
        acc_vec = ir.VectorType(ir.IntType(32) if integer else _F32, width)
        out_vec = ir.VectorType(ir.IntType(8), width) if codes else vec
        bias_v, scale_v = (_broadcast(builder, s, vec) for s in (bias, scale))
        if codes:
            qscale_v, zero_v, low, high = code_constants(builder, vec, *codes)

        def vectors(group: int):
            def step(v, _accs):
                offsets = [builder.add(first, builder.mul(builder.add(builder.mul(v, ir.Constant(_I64, group)),
                                                                      ir.Constant(_I64, g)), ir.Constant(_I64, width)))
                           for g in range(group)]
                ys = [builder.load(builder.bitcast(builder.gep(acc_ptr, [o]), acc_vec.as_pointer()), align=4)
                      for o in offsets]
                ys = [builder.fmul(builder.fadd(builder.sitofp(a, vec) if integer else a, bias_v), scale_v) for a in ys]
                if gelu:
                    ys = emit_gelus(builder, ys)
                if codes:
                    ys = [builder.trunc(c, out_vec) for c in emit_codes_of(builder, ys, qscale_v, zero_v, low, high)]
                nontemporal = stream and width > 1 and not codes
                for y, o in zip(ys, offsets):
                    store = builder.store(y, builder.bitcast(builder.gep(out_ptr, [o]), out_vec.as_pointer()),
                                          align=4 * width if nontemporal else 1)
                    if nontemporal:
                        store.set_metadata("nontemporal", builder.module.add_metadata([ir.Constant(ir.IntType(32), 1)]))
                return []

            return step

        # GROUP vectors per step, their operations interleaved; then the vectors left over one at a time
        group = GROUP if width > 1 else 1
        groups = builder.sdiv(stop, ir.Constant(_I64, group))
        accumulate_loop(builder, ir.Constant(_I64, 0), groups, None, 0, vectors(group))
        if group > 1:
            accumulate_loop(builder, builder.mul(groups, ir.Constant(_I64, group)), stop, None, 0, vectors(1))

    in_vectors(builder, lanes, count, run)


def emit_epilogue4(builder: ir.IRBuilder, lanes: int, acc_ptrs: list, integer: bool, biases: list, scales: list,
                   gelu: bool, out_ptr, count, codes) -> None:
    """Emit the epilogue of four rows at once, their codes interleaved: for each of the ``count`` (i64) tokens, the
    uint8 codes (for ``codes = (qscale, zero)``) of ``(acc_q[i] + bias_q) · scale_q`` (then GELU), q < 4, as one
    little-endian i32 at ``out_ptr[i]`` (i32*) — the layout of :func:`~.quantize.quantize_u8_interleave4`. Each
    element goes through the operations of :func:`emit_epilogue`, so the codes are its codes, bit for bit."""
    from sparsecore.kernels.row_kernels import in_vectors
    from sparsecore.kernels.simd import accumulate_loop

    def run(width, first, stop):
        vec = ir.VectorType(_F32, width)
        acc_vec = ir.VectorType(ir.IntType(32) if integer else _F32, width)
        ints = ir.VectorType(ir.IntType(32), width)
        bias_vs = [_broadcast(builder, b, vec) for b in biases]
        scale_vs = [_broadcast(builder, s, vec) for s in scales]
        constants = code_constants(builder, vec, *codes)

        def step(v, _accs):
            offset = builder.add(first, builder.mul(v, ir.Constant(_I64, width)))
            ys = [builder.load(builder.bitcast(builder.gep(p, [offset]), acc_vec.as_pointer()), align=4)
                  for p in acc_ptrs]
            ys = [builder.fmul(builder.fadd(builder.sitofp(a, vec) if integer else a, b), s)
                  for a, b, s in zip(ys, bias_vs, scale_vs)]
            if gelu:
                ys = emit_gelus(builder, ys)
            word = emit_word4(builder, emit_codes_of(builder, ys, *constants))
            builder.store(word, builder.bitcast(builder.gep(out_ptr, [offset]), ints.as_pointer()), align=1)
            return []

        accumulate_loop(builder, ir.Constant(_I64, 0), stop, None, 0, step)

    in_vectors(builder, lanes, count, run)


def code_constants(builder, vec, qscale, zero):
    """The vectors :func:`emit_codes` takes for activation parameters ``qscale``, ``zero`` (float scalars)."""
    qscale_v, zero_v = _broadcast(builder, qscale, vec), _broadcast(builder, zero, vec)
    return qscale_v, zero_v, builder.fneg(zero_v), builder.fsub(_splat(vec, 255.0), zero_v)


def emit_codes(builder, y, qscale_v, zero_v, low, high):
    """The uint8 codes of the float vector ``y`` as an i32 vector: ``clamp(round_half_even(y / qscale), −zero,
    255 − zero) + zero`` (:func:`~.quantize.quantize_u8`'s bits; ``low``/``high`` from :func:`code_constants`)."""
    return emit_codes_of(builder, [y], qscale_v, zero_v, low, high)[0]


def emit_codes_of(builder, ys: list, qscale_v, zero_v, low, high) -> list:
    """:func:`emit_codes` of each vector of ``ys``, their operations interleaved step by step."""
    from sparsecore.kernels.quantize import _MAGIC

    vec = ys[0].type
    qs = [_clamp(builder, builder.fdiv(y, qscale_v), low, high) for y in ys]
    qs = [builder.fadd(q, _splat(vec, _MAGIC)) for q in qs]
    qs = [builder.fsub(q, _splat(vec, _MAGIC)) for q in qs]
    return [builder.fptosi(builder.fadd(q, zero_v), ir.VectorType(ir.IntType(32), vec.count)) for q in qs]


def emit_word4(builder, codes: list):
    """The four i32 code vectors ``codes`` (each lane a code in [0, 255], as :func:`emit_codes` gives them) as one i32
    vector: lane i holds their four codes little-endian — a token's codes of four features in the interleaved
    layout of :func:`~.quantize.quantize_u8_interleave4`."""
    word = codes[0]
    for q, code in enumerate(codes[1:], start=1):
        word = builder.or_(word, builder.shl(code, ir.Constant(code.type, [8 * q] * code.type.count)))
    return word


def _broadcast(builder, scalar, vec):
    first = builder.insert_element(ir.Constant(vec, ir.Undefined), scalar, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(first, ir.Constant(vec, ir.Undefined),
                                  ir.Constant(ir.VectorType(ir.IntType(32), vec.count), [0] * vec.count))


def _vector_epilogue(lanes: int, stream: bool = False):
    @intrinsic
    def vectors(typingctx, acc, bias, scale, gelu, qscale, zero, out, count):
        ok = (isinstance(acc, types.Array) and acc.dtype in (types.int32, types.float32) and
              isinstance(out, types.Array) and out.dtype in (types.float32, types.uint8) and
              isinstance(gelu, types.Boolean))
        if not ok:
            return None

        def codegen(context, builder, signature, args):
            a_acc, a_gelu, a_out, a_count = args[0], args[3], args[6], args[7]

            def data(ty, value):
                return cgutils.create_struct_proxy(ty)(context, builder, value=value).data

            def f32(i):
                return context.cast(builder, args[i], signature.args[i], types.float32)

            acc_ptr, out_ptr = data(acc, a_acc), data(out, a_out)
            n = context.cast(builder, a_count, signature.args[7], types.int64)
            integer = acc.dtype == types.int32
            codes = (f32(4), f32(5)) if out.dtype == types.uint8 else None
            with builder.if_else(a_gelu) as (with_gelu, plain):
                for block, flag in ((with_gelu, True), (plain, False)):
                    with block:
                        emit_epilogue(builder, lanes, acc_ptr, integer, f32(1), f32(2), flag, out_ptr, n, codes,
                                      stream)
            return context.get_dummy_value()

        return types.void(acc, bias, scale, gelu, qscale, zero, out, count), codegen

    return vectors


_VECTORS = {lanes: _vector_epilogue(lanes) for lanes in (1, 8, 16)}
_STREAMING = {lanes: _vector_epilogue(lanes, stream=True) for lanes in (1, 8, 16)}


def _vector_epilogue4(lanes: int):
    @intrinsic
    def vectors4(typingctx, acc, bias, scale, row, gelu, qscale, zero, out):
        ok = (isinstance(acc, types.Array) and acc.dtype in (types.int32, types.float32) and acc.ndim == 2 and
              all(isinstance(a, types.Array) and a.dtype == types.float32 for a in (bias, scale)) and
              isinstance(out, types.Array) and out.dtype == types.uint8 and out.ndim == 2 and
              acc.layout == "C" and out.layout == "C" and isinstance(gelu, types.Boolean))
        if not ok:
            return None

        def codegen(context, builder, signature, args):
            from sparsecore.kernels.row_kernels import arg_readers

            i64, struct = arg_readers(context, builder, signature, args)
            accs = struct(0)
            stride = cgutils.unpack_tuple(builder, accs.shape, 2)[1]
            acc_ptrs = [builder.gep(accs.data, [builder.mul(stride, ir.Constant(_I64, q))]) for q in range(4)]
            rows = [builder.add(i64(3), ir.Constant(_I64, q)) for q in range(4)]
            biases = [builder.load(builder.gep(struct(1).data, [r])) for r in rows]
            scales = [builder.load(builder.gep(struct(2).data, [r])) for r in rows]
            outs = struct(7)
            count = cgutils.unpack_tuple(builder, outs.shape, 2)[0]
            out_ptr = builder.bitcast(outs.data, ir.IntType(32).as_pointer())
            codes = tuple(context.cast(builder, args[i], signature.args[i], types.float32) for i in (5, 6))
            integer = acc.dtype == types.int32
            with builder.if_else(args[4]) as (with_gelu, plain):
                for block, flag in ((with_gelu, True), (plain, False)):
                    with block:
                        emit_epilogue4(builder, lanes, acc_ptrs, integer, biases, scales, flag, out_ptr, count, codes)
            return context.get_dummy_value()

        return types.void(acc, bias, scale, row, gelu, qscale, zero, out), codegen

    return vectors4


_VECTORS4 = {lanes: _vector_epilogue4(lanes) for lanes in (1, 8, 16)}


def _plain(acc, bias, scale, gelu, out, qscale, zero):
    """Coverage runs (``NUMBA_DISABLE_JIT``): the same arithmetic in Python."""
    f = np.float32
    for i in range(out.size):
        x = (f(acc[i]) + f(bias)) * f(scale)
        x = gelu32(x) if gelu else x
        if out.dtype == np.uint8:
            q = min(max(x / f(qscale), f(-zero)), f(255 - zero))
            x = np.uint8(np.rint(q) + zero)
        out[i] = x


def row_epilogue(marker, acc, bias, scale, gelu, out, qscale=1.0, zero=0):
    """``out[i] = (acc[i] + bias) · scale`` for ``i < out.size`` (then exact GELU when ``gelu``), at the vector width of
    the path ``marker``'s type names (one element at a time on paths without vectors: the same bits); ``acc`` holds
    at least ``out.size`` int32 or float32 sums. A uint8 ``out`` receives the codes of those values for activation
    parameters ``qscale``, ``zero`` (:func:`~.quantize.quantize_u8`'s bits): a next int8 Linear's input."""
    _plain(acc, bias, scale, gelu, out, qscale, zero)


if not config.DISABLE_JIT:

    @overload(row_epilogue, inline="always")
    def _row_epilogue_impl(marker, acc, bias, scale, gelu, out, qscale=1.0, zero=0):
        kernel = _VECTORS[LANES.get(marker_path(marker), 1)]

        def impl(marker, acc, bias, scale, gelu, out, qscale=1.0, zero=0):
            kernel(acc, np.float32(bias), np.float32(scale), gelu, np.float32(qscale), np.float32(zero), out, out.size)

        return impl


def row_epilogue_stream(marker, acc, bias, scale, gelu, out):
    """:func:`row_epilogue` to a float32 ``out`` whose full vectors are written with non-temporal stores (straight to
    memory, no read of the lines first): for outputs too large to be read back from the caches. ``out``'s first
    element must be aligned to the path's vector size (64 bytes covers every path); the bits are
    :func:`row_epilogue`'s. A thread that wrote with it runs :func:`store_fence` before others read."""
    _plain(acc, bias, scale, gelu, out, 1.0, 0)


def store_fence():
    """``sfence``: this thread's non-temporal stores are visible before any store it makes after."""


if not config.DISABLE_JIT:

    @overload(row_epilogue_stream, inline="always")
    def _row_epilogue_stream_impl(marker, acc, bias, scale, gelu, out):
        kernel = _STREAMING[LANES.get(marker_path(marker), 1)]

        def impl(marker, acc, bias, scale, gelu, out):
            kernel(acc, np.float32(bias), np.float32(scale), gelu, np.float32(1.0), np.float32(0.0), out, out.size)

        return impl

    @intrinsic
    def _sfence(typingctx):
        def codegen(context, builder, signature, args):
            if platform.machine() in ("x86_64", "AMD64"):
                fence = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), []),
                                                       "llvm.x86.sse.sfence")
                builder.call(fence, [])
            return context.get_dummy_value()

        return types.void(), codegen

    @overload(store_fence, inline="always")
    def _store_fence_impl():
        return lambda: _sfence()


def rows_epilogue4(marker, acc, bias, scale, row, gelu, out, qscale, zero):
    """The epilogue of rows ``row … row+3`` (``acc (4, ≥ tb)`` their int32 or float32 sums, ``bias``/``scale`` the
    Linear's (N,) float32 arrays) written as uint8 codes for ``qscale``, ``zero``, interleaved: ``out (tb, 4)``,
    ``out[i, q]`` the code of row ``row + q`` at token i — :func:`row_epilogue`'s codes of each row, bit for bit."""
    codes = np.empty(out.shape[0], np.uint8)
    for q in range(4):
        _plain(acc[q], bias[row + q], scale[row + q], gelu, codes, qscale, zero)
        out[:, q] = codes


if not config.DISABLE_JIT:

    @overload(rows_epilogue4, inline="always")
    def _rows_epilogue4_impl(marker, acc, bias, scale, row, gelu, out, qscale, zero):
        kernel = _VECTORS4[LANES.get(marker_path(marker), 1)]

        def impl(marker, acc, bias, scale, row, gelu, out, qscale, zero):
            kernel(acc, bias, scale, row, gelu, np.float32(qscale), np.float32(zero), out)

        return impl


def epilogue_assembly(lanes: int, integer: bool, gelu: bool, cpu: str, codes: bool = False,
                      stream: bool = False) -> str:
    """Machine code of the vector epilogue (``lanes`` wide; ``codes``: writing uint8 codes; ``stream``: non-temporal
    stores) compiled for ``cpu`` (an LLVM CPU name) from a stand-alone module, whatever CPU this host is."""
    from sparsecore.kernels.row_kernels import assembly

    acc_type = ir.IntType(32) if integer else _F32
    out_type = ir.IntType(8) if codes else _F32
    quant = (ir.Constant(_F32, 0.05), ir.Constant(_F32, 7.0)) if codes else None
    return assembly(f"epilogue_{lanes}", [acc_type.as_pointer(), out_type.as_pointer(), _I64],
                    lambda builder, acc, out, n: emit_epilogue(builder, lanes, acc, integer, ir.Constant(_F32, 0.5),
                                                               ir.Constant(_F32, 2.0), gelu, out, n, quant,
                                                               stream), cpu)


def epilogue4_assembly(lanes: int, gelu: bool, cpu: str) -> str:
    """Machine code of the four-row interleaving epilogue (``lanes`` wide, int32 sums, uint8 codes) compiled for
    ``cpu`` (an LLVM CPU name) from a stand-alone module, whatever CPU this host is."""
    from sparsecore.kernels.row_kernels import assembly

    i32p = ir.IntType(32).as_pointer()
    return assembly(f"epilogue4_{lanes}", [i32p, i32p, i32p, i32p, i32p, _I64],
                    lambda builder, a0, a1, a2, a3, out, n: emit_epilogue4(
                        builder, lanes, [a0, a1, a2, a3], True, [ir.Constant(_F32, 0.5 * q) for q in range(4)],
                        [ir.Constant(_F32, 2.0 + q) for q in range(4)], gelu, out, n,
                        (ir.Constant(_F32, 0.05), ir.Constant(_F32, 7.0))), cpu)

