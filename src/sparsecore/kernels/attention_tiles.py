"""Self-attention on register tiles: both products as small dense GEMMs in LLVM vector IR, fp32 or exact integer codes.

The computation of :func:`sparsecore.kernels.attention.attention_seq_t`, per (sequence b, head h) with d = H / heads,
queries in blocks of 64 tokens (a slab ``qb[block, e, 0:64]``, the queries · 1/√d, or their codes):

    Sᵀ[j, block] = Σ_e K[e, j] · qb[block, e, :] + mask[b, j]      keys × queries
    P = softmax over j per query column                           :func:`~.softmax.exp_columns`
    ctxᵀ[e, block] = Σ_j V[e, j] · P[j, block] / sum               (codes: · (sp·sv))

Both products are ``tile[r, 0:64] = Σ_s A[s, r] · B[s, 0:64]`` for R rows at once (:func:`emit_tile`): per step s,
the B row (64 floats of the slab, in L1) is loaded once into registers and serves R broadcasts of A, so the R × 64
sums stay in registers for the whole depth — 4 keys × 4 zmm on ``avx512``, 2 × 4 ymm over 32 tokens (twice per
block) on ``avx2``. A is read where it lies, through two strides: K and V straight from the ``qkv`` rows (keys j
consecutive in a row; a value feature e is a row), so nothing is transposed or copied for fp32.

Quantized exports run here too when every sequence is at most ``MAX_EXACT`` tokens: Q, K, V and P become their
integer codes minus zero points held as float32 (|code| ≤ 255), so each product is an exact integer below 2¹⁶ and
every partial sum stays below 2²⁴ — exact in fp32, whatever the order: the integer path's bits (tested against it).
Longer sequences keep :mod:`.int8_attention`. Items are split over threads by cost as in :mod:`.attention`; work
arrays are allocated once per thread, sized for the longest sequence. The context can be written token-blocked
(``blocked``): fp32, or the next quad Linear's uint8 codes through :func:`~.epilogue.row_epilogue` — that Linear's
input without a pass of its own.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from llvmlite import ir
from numba import config, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from sparsecore.kernels._config import NJIT_FMA, NJIT_FMA_PARALLEL
from sparsecore.kernels.isa import marker_path
from sparsecore.kernels.quantize import _round_clamp
from sparsecore.kernels.row_kernels import arg_readers
from sparsecore.kernels.softmax import exp_columns

TOKENS = 64  # queries per block
MAX_EXACT = 256  # longest sequence whose integer products sum exactly in fp32: 256 · 255² < 2²⁴
# path → (fp32 lanes per vector, vectors per tile, rows per tile): lanes · vectors tokens of R rows
SHAPES = {"avx512": (16, 4, 4), "avx2": (8, 4, 2)}
ROWS = max(rows for _, _, rows in SHAPES.values())

_I32, _I64, _F32 = ir.IntType(32), ir.IntType(64), ir.FloatType()


PRODUCTS = ("fma", "dot4", "pairs")  # the tile's products: fp32 FMAs, VNNI dot4 of bytes, int16 pairs (vpmaddwd)


def emit_tile(builder: ir.IRBuilder, lanes: int, vectors: int, rows: int, a_ptr, s_stride, r_stride, depth, b_ptr,
              out_ptr, products: str = "fma") -> None:
    """Emit ``out[r, 0:W] = Σ_{s < depth} a[s·s_stride + r·r_stride] · b[s·64 : s·64 + W]`` for r < ``rows``, W = lanes ·
    vectors (float* ``a_ptr``, ``b_ptr`` — rows of 64 floats —, ``out_ptr`` rows of 64 floats; i64 strides and depth).
    Integer ``products`` take i32* pointers and int32 sums: ``dot4`` — a dword of a is four int8, a dword of b four
    uint8, each product the sum of their four products (one ``vpdpbusd`` per vector and row) —, ``pairs`` — a dword
    is two int16 in both, each product the sum of their two products (``vpmaddwd`` and an add; exact unless both
    pairs are −32768·−32768)."""
    from sparsecore.kernels.simd import accumulate_loop

    if products not in PRODUCTS:
        raise ValueError(f"products must be one of {PRODUCTS}, got {products!r}")
    integer = products != "fma"
    vec = ir.VectorType(_I32 if integer else _F32, lanes)
    if products == "pairs":
        words = ir.VectorType(ir.IntType(16), 2 * lanes)
        name = {8: "llvm.x86.avx2.pmadd.wd", 16: "llvm.x86.avx512.pmaddw.d.512"}[lanes]
        pmadd = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [words] * 2), name)

        def product(acc, x, w):
            return builder.add(acc, builder.call(pmadd, [builder.bitcast(x, words), builder.bitcast(w, words)]))
    else:
        name = f"llvm.x86.avx512.vpdpbusd.{32 * lanes}" if integer else f"llvm.fma.v{lanes}f32"
        op = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec] * 3), name)

        def product(acc, x, w):
            return builder.call(op, [acc, x, w] if integer else [w, x, acc])

    def const(value):
        return ir.Constant(_I64, value)

    def step(s, accs):
        b_row = builder.gep(b_ptr, [builder.mul(s, const(TOKENS))])
        xs = [builder.load(builder.bitcast(builder.gep(b_row, [const(v * lanes)]), vec.as_pointer()), align=4)
              for v in range(vectors)]
        new = []
        a_row = builder.gep(a_ptr, [builder.mul(s, s_stride)])
        for r in range(rows):
            a = builder.load(builder.gep(a_row, [builder.mul(const(r), r_stride)]))
            first = builder.insert_element(ir.Constant(vec, ir.Undefined), a, ir.Constant(_I32, 0))
            w = builder.shuffle_vector(first, ir.Constant(vec, ir.Undefined),
                                       ir.Constant(ir.VectorType(_I32, lanes), [0] * lanes))
            for v in range(vectors):
                acc = accs[r * vectors + v]
                new.append(product(acc, xs[v], w))
        return new

    accs = accumulate_loop(builder, const(0), depth, ir.Constant(vec, [0 if integer else 0.0] * lanes), rows * vectors,
                           step)
    for r in range(rows):
        for v in range(vectors):
            p = builder.gep(out_ptr, [const(r * TOKENS + v * lanes)])
            builder.store(accs[r * vectors + v], builder.bitcast(p, vec.as_pointer()), align=4)


def _tile_intrinsic(lanes: int, vectors: int, rows: int, products: str):
    integer = products != "fma"

    @intrinsic
    def tile(typingctx, a, a_offset, s_stride, r_stride, depth, slab, blk, t_offset, out):
        arrays = all(isinstance(x, types.Array) for x in (a, slab, out)) and slab.ndim == 3
        if integer:
            ok = arrays and a.dtype in (types.int32, types.uint8) and slab.dtype == out.dtype == types.int32
        else:
            ok = arrays and a.dtype == slab.dtype == out.dtype == types.float32
        if not ok:
            return None

        def codegen(context, builder, signature, args):
            i64, struct = arg_readers(context, builder, signature, args)
            slab_struct = struct(5)
            slab_rows = cgutils.unpack_tuple(builder, slab_struct.shape, 3)[1]
            block_start = builder.mul(builder.mul(i64(6), slab_rows), ir.Constant(_I64, TOKENS))
            b_ptr = builder.gep(slab_struct.data, [builder.add(block_start, i64(7))])
            out_ptr = builder.gep(struct(8).data, [i64(7)])
            a_ptr = builder.bitcast(struct(0).data, (_I32 if integer else _F32).as_pointer())
            emit_tile(builder, lanes, vectors, rows, builder.gep(a_ptr, [i64(1)]), i64(2), i64(3), i64(4), b_ptr,
                      out_ptr, products)
            return context.get_dummy_value()

        return types.void(a, a_offset, s_stride, r_stride, depth, slab, blk, t_offset, out), codegen

    return tile


def tile_function(shapes: dict, products: str, plain, doc: str):
    """``tiles(marker, rows_left, a, a_offset, s_stride, r_stride, depth, slab, blk, out)``: ``out[r, 0:64] = Σ_s
    a.flat[a_offset + s·s_stride + r·r_stride] · slab[blk, s, 0:64]`` for the R rows of the path ``marker`` names in
    ``shapes`` (path → lanes, vectors, R), or one row when ``rows_left`` < R; returns how many rows it computed. The
    register tile of :func:`emit_tile` with ``products``, ``plain(rows, …)`` under ``NUMBA_DISABLE_JIT``."""
    most = max(rows for _, _, rows in shapes.values())

    def tiles(marker, rows_left, a, a_offset, s_stride, r_stride, depth, slab, blk, out):
        rows = min(rows_left, most)
        plain(rows, a, a_offset, s_stride, r_stride, depth, slab, blk, out)
        return rows

    tiles.__doc__ = doc
    if config.DISABLE_JIT:
        return tiles
    kernels = {(path, r): _tile_intrinsic(lanes, vectors, r, products) for path, (lanes, vectors, rows) in shapes.items()
               for r in (rows, 1)}

    @overload(tiles, inline="always")
    def _tiles_impl(marker, rows_left, a, a_offset, s_stride, r_stride, depth, slab, blk, out):
        path = marker_path(marker)
        lanes, vectors, rows = shapes[path]
        full, one = kernels[(path, rows)], kernels[(path, 1)]
        width = lanes * vectors

        def impl(marker, rows_left, a, a_offset, s_stride, r_stride, depth, slab, blk, out):
            if rows_left >= rows:
                for t in range(0, TOKENS, width):
                    full(a, a_offset, s_stride, r_stride, depth, slab, blk, t, out)
                return rows
            for t in range(0, TOKENS, width):
                one(a, a_offset, s_stride, r_stride, depth, slab, blk, t, out)
            return 1

        return impl

    return tiles


def _plain_tile(rows, a, a_offset, s_stride, r_stride, depth, slab, blk, out):
    """The float sums in plain loops (coverage runs)."""
    flat = a.reshape(-1)
    for r in range(rows):
        acc = np.zeros(TOKENS, np.float32)
        for s in range(depth):
            acc += flat[a_offset + s * s_stride + r * r_stride] * slab[blk, s]
        out[r] = acc


tiles = tile_function(SHAPES, "fma", _plain_tile, """The float register tile: see :func:`tile_function`.""")


@nb.njit(inline="always", **NJIT_FMA)
def _codes(src, scale, zero, dst):
    """``dst[i] = clip(round(src[i] / scale) + zero, 0, 255) − zero`` (the codes minus zero point, as float32)."""
    lo, hi = np.float32(-zero), np.float32(255 - zero)
    for i in range(dst.size):
        dst[i] = _round_clamp(src[i] / scale, lo, hi)


def _write(marker, acc, colsum, codes, c_scale, row, qscale, qzero):
    """One context row segment: ``acc / colsum`` (fp32), ``acc · c_scale`` (codes; ``acc`` float32 or int32) — or,
    into a uint8 ``row``, the codes of ``acc · c_scale`` for ``qscale``, ``qzero`` (:func:`~.epilogue.row_epilogue`:
    quantizing the fp32 row gives the same bits)."""
    for i in range(row.size):
        row[i] = np.float32(acc[i]) * c_scale if codes else acc[i] / colsum[i]


if not config.DISABLE_JIT:

    @overload(_write, inline="always")
    def _write_impl(marker, acc, colsum, codes, c_scale, row, qscale, qzero):
        from sparsecore.kernels.epilogue import row_epilogue

        if row.dtype == types.uint8:
            return lambda marker, acc, colsum, codes, c_scale, row, qscale, qzero: row_epilogue(
                marker, acc, 0.0, c_scale, False, row, qscale, qzero)

        def impl(marker, acc, colsum, codes, c_scale, row, qscale, qzero):
            if codes:
                for i in range(row.size):
                    row[i] = np.float32(acc[i]) * c_scale
            else:
                for i in range(row.size):
                    row[i] = acc[i] / colsum[i]

        return impl


@nb.njit(inline="always", **NJIT_FMA)
def item_span(order, item, heads, starts, first_only):
    """``(b, h, c0, seq, nq, o0)`` of work item ``item`` (``order[item] = b·heads + h``): sequence b, head h, the
    sequence's first token c0 and length seq, its queries nq (1 when ``first_only``) and where their context goes in
    the output, o0 (column b when ``first_only``, else c0)."""
    b, h = order[item] // heads, order[item] % heads
    c0 = starts[b]
    seq = starts[b + 1] - c0
    return b, h, c0, seq, 1 if first_only else seq, b if first_only else c0


@nb.njit(inline="always", **NJIT_FMA)
def store_context(marker, acc, colsum, codes, c_scale, out, blocked, row, token, width, tbo, qscale, qzero):
    """Context row ``row`` of tokens ``token … token + width − 1`` from ``acc[0:width]`` (:func:`_write`): into ``out``,
    or into the token-blocked ``blocked`` (blocks of ``tbo`` tokens), the run split where it crosses a block."""
    if blocked is None:
        _write(marker, acc[:width], colsum, codes, c_scale, out[row, token:token + width], qscale, qzero)
        return
    i = 0
    while i < width:
        blk, at = (token + i) // tbo, (token + i) % tbo
        n = min(width - i, tbo - at)
        _write(marker, acc[i:i + n], colsum[i:i + n], codes, c_scale, blocked[blk, row, at:at + n], qscale, qzero)
        i += n


@nb.njit(**NJIT_FMA_PARALLEL)
def attention_tiles_t(marker, qkv, starts, add_mask, heads, order, bounds, s_scale, p_scale, p_zero, c_scale,
                      in_scales, in_zeros, first_only, longest, out, blocked, qscale, qzero):
    """Attention of the packed sequences ``starts`` of ``qkv (3H, T)`` into ``out`` (arguments as
    :func:`~.attention.attention_seq_t` after its checks; ``in_scales`` empty: fp32, else the codes of Q, K, V and P
    with the scales of ``quant``; ``marker`` names the float path). ``blocked``: None, or a token-blocked ``(blocks,
    H, TB)`` array written instead of ``out`` — float32 values, or uint8 codes for ``qscale``, ``qzero`` (float32)."""
    tbo = 1 if blocked is None else blocked.shape[2]
    hidden = out.shape[0]
    d = hidden // heads
    scale = np.float32(1.0 / math.sqrt(d))
    codes = in_scales.size > 0
    qblocks = (longest + TOKENS - 1) // TOKENS
    for task in nb.prange(bounds.size - 1):
        qb = np.zeros((qblocks, d, TOKENS), np.float32)  # queries · 1/√d (or their codes), token-blocked
        scores = np.empty((1, longest, TOKENS), np.float32)  # one block of Sᵀ / P: keys × queries
        # the codes of K, then V (fp32: read from qkv), rows an odd number of 64-byte lines apart: the Sᵀ tile reads
        # one element of each of d rows per step, which a power-of-two row stride would pile onto a few cache sets
        ld = 16 * ((longest + 15) // 16 | 1)
        kv = np.empty((2 * d if codes else 0, ld), np.float32)
        tile = np.empty((ROWS, TOKENS), np.float32)
        colmax, colsum = np.empty(TOKENS, np.float32), np.empty(TOKENS, np.float32)
        st = scores[0]
        for item in range(bounds[task], bounds[task + 1]):
            b, h, c0, seq, nq, o0 = item_span(order, item, heads, starts, first_only)
            if seq == 0:
                continue
            blocks = (nq + TOKENS - 1) // TOKENS
            for e in range(d):
                src = qkv[h * d + e, c0:c0 + nq]
                for blk in range(blocks):
                    dst = qb[blk, e]
                    width = min(TOKENS, nq - blk * TOKENS)
                    if codes:
                        _codes(src[blk * TOKENS:blk * TOKENS + width], in_scales[0], in_zeros[0], dst[:width])
                    else:
                        for i in range(width):
                            dst[i] = src[blk * TOKENS + i] * scale
                    dst[width:] = 0.0
            if codes:  # K and V as codes, rows of stride `ld`
                for e in range(d):
                    _codes(qkv[hidden + h * d + e, c0:c0 + seq], in_scales[1], in_zeros[1], kv[e, :seq])
                    _codes(qkv[2 * hidden + h * d + e, c0:c0 + seq], in_scales[2], in_zeros[2], kv[d + e, :seq])
                a, k_at, v_at, stride = kv, 0, d * ld, ld
            else:
                a, k_at, v_at, stride = qkv, (hidden + h * d) * qkv.shape[1] + c0, (2 * hidden + h * d) * qkv.shape[
                    1] + c0, qkv.shape[1]
            for blk in range(blocks):
                j = 0
                while j < seq:  # Sᵀ rows j … j+R−1: step e along K's rows, keys consecutive in a row
                    rows = tiles(marker, seq - j, a, k_at + j, stride, 1, d, qb, blk, tile)
                    for r in range(rows):
                        m = add_mask[b, j + r]
                        row, acc = st[j + r], tile[r]
                        if codes:
                            for i in range(TOKENS):
                                row[i] = (acc[i] * s_scale) * scale + m
                        else:
                            for i in range(TOKENS):
                                row[i] = acc[i] + m
                    j += rows
                exp_columns(marker, st, seq, TOKENS, colmax, colsum)
                if codes:  # P = E / Σ as its codes minus the zero point
                    lo, hi = np.float32(-p_zero), np.float32(255 - p_zero)
                    for jj in range(seq):
                        row = st[jj]
                        for i in range(TOKENS):
                            row[i] = _round_clamp((row[i] / colsum[i]) / p_scale, lo, hi)
                t0 = blk * TOKENS
                width = min(TOKENS, nq - t0)
                e = 0
                while e < d:  # ctxᵀ rows e … e+R−1: step j along P's rows, a value feature per row of V
                    rows = tiles(marker, d - e, a, v_at + e * stride, 1, stride, seq, scores, 0, tile)
                    for r in range(rows):
                        store_context(marker, tile[r], colsum, codes, c_scale, out, blocked, h * d + e + r, o0 + t0,
                                      width, tbo, qscale, qzero)
                    e += rows


def tile_assembly(path: str, cpu: str, shapes: dict = SHAPES, products: str = "fma") -> str:
    """Machine code of the ``path`` tile kernel (``shapes[path]``, ``products``) compiled for ``cpu`` (an LLVM CPU
    name) from a stand-alone module, whatever CPU this host is."""
    from sparsecore.kernels.row_kernels import assembly

    lanes, vectors, rows = shapes[path]
    ptr = (_F32 if products == "fma" else _I32).as_pointer()
    return assembly(f"attention_tile_{path}", [ptr, _I64, _I64, _I64, ptr, ptr],
                    lambda builder, a, s_stride, r_stride, depth, b, out: emit_tile(
                        builder, lanes, vectors, rows, a, s_stride, r_stride, depth, b, out, products), cpu)
