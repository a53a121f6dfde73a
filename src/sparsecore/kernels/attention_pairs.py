"""Quantized self-attention with both products on the integer units of AVX2 (and AVX-512) hosts without VNNI:
``vpmaddwd`` over int16 pairs of centred codes.

The computation of :func:`sparsecore.kernels.attention.attention_seq_t` for quantized exports whose Q, K, V codes
are made in the kernel (``qkv_quant``), per (sequence b, head h), d = H / heads, queries in blocks of 64 tokens.
Every operand is its code minus its zero point, an int16 in [−255, 255]:

    Σ_e (q − zq)(k − zk)        scores, keys × queries
    Σ_j (v − zv)(p − zp)        context, value features × queries

Both sums are register tiles (:func:`.attention_tiles.emit_tile` with ``pairs`` products): ``tile[r, 0:64] = Σ_s
pair(A[s, r], B[s, 0:64])`` — B a row of 64 dwords, each two int16 of one query (Q: two features; P: two keys), A
two int16 of K (two features of a key) or V (two keys of a value feature) broadcast as one dword, so one
``vpmaddwd`` and one add sum 2 products for 8 queries (16 on ``avx512``). R rows × W queries stay in registers for
the whole depth: 2 rows × 4 ymm over 32 queries, twice per block, on ``avx2``. Every product is at most 255² and
every sum an exact int32 for any sequence up to 2³¹ / 255² / 2 ≈ 16,000 keys, and the scores and the context are
turned into floats as the float paths do (``float32(total)`` then the same scaling, mask, softmax of
:func:`~.softmax.exp_columns` and codes of P), so the result is :func:`~.attention.attention_seq_t`'s generic path
bit for bit. One pair product replaces the two FMAs of the float tiles (:mod:`.attention_tiles`), with no
conversion of the codes to floats.

The pairs are written as the codes are made: ``Q[e2, i] = (q[2·e2, i] − zq, q[2·e2 + 1, i] − zq)`` (features past d:
0), ``K[e2, j]`` likewise, ``P[j2, i]`` over two keys (keys past n: 0), and V as each value feature's row of keys,
read two keys at a time. ``qkv`` is read token-blocked as a QKV Linear writes it, the context written like
:mod:`.attention_tiles` writes it (rows of ``out``, or token-blocked fp32 / the next Linear's uint8 codes). Items
are split over threads by cost as in :mod:`.attention`; work arrays are allocated once per thread.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from sparsecore.kernels._config import NJIT_FMA, NJIT_FMA_PARALLEL
from sparsecore.kernels.attention_tiles import TOKENS, item_span, store_context, tile_function
from sparsecore.kernels.attention_tiles import tile_assembly as _assembly
from sparsecore.kernels.int8_attention import _code
from sparsecore.kernels.quantize import _round_clamp
from sparsecore.kernels.softmax import exp_columns

# path → (int32 lanes per vector, vectors per tile, rows per tile): lanes · vectors queries of R rows; on avx2 the
# 16 ymm registers hold 8 sums, 4 query vectors, a broadcast and a product
SHAPES = {"avx2": (8, 4, 2)}
ROWS = max(rows for _, _, rows in SHAPES.values())
MAX_KEYS = (2**31 - 1) // (2 * 255 * 255)  # longest sequence whose int32 sums cannot overflow


def _plain_tile(rows, a, a_offset, s_stride, r_stride, depth, slab, blk, out):
    """The pair sums in plain loops (coverage runs): dwords of ``a`` and ``slab`` as two int16."""
    a2 = a.reshape(-1).view(np.int16).reshape(-1, 2).astype(np.int64)
    b2 = slab[blk].reshape(-1).view(np.int16).reshape(-1, 2).astype(np.int64)
    for r in range(rows):
        for i in range(TOKENS):
            out[r, i] = sum(int(a2[a_offset + s * s_stride + r * r_stride] @ b2[TOKENS * s + i]) for s in range(depth))


tiles = tile_function(SHAPES, "pairs", _plain_tile, """The int16-pair register tile
(:func:`~.attention_tiles.tile_function`, ``vpmaddwd`` products): ``a`` and ``slab`` int32 dwords of two int16.""")


@nb.njit(inline="always", **NJIT_FMA)
def _pair(low, high):
    """Two int16 values (as int32) in one dword, ``low`` in the low half."""
    return (low & np.int32(0xFFFF)) | (high << np.int32(16))


@nb.njit(inline="always", **NJIT_FMA)
def _centred_run(qkv, row, start, n, scale, zero, dst):
    """``dst[i] = code − zero`` of row ``row``'s tokens ``start … start + n − 1`` of the token-blocked ``qkv (blocks,
    3H, TB)`` into the int16 ``dst``, the run split where it crosses a block."""
    tb = qkv.shape[2]
    i = 0
    while i < n:
        blk, at = (start + i) // tb, (start + i) % tb
        m = min(n - i, tb - at)
        src = qkv[blk, row, at:at + m]
        for t in range(m):
            dst[i + t] = _code(src[t], scale, zero) - zero
        i += m


@nb.njit(inline="always", **NJIT_FMA)
def _pairs_run(qkv, row, last, start, n, scale, zero, dst):
    """Rows ``row`` and ``row + 1`` (0 in its place when ``row + 1`` > ``last``) of :func:`_centred_run`, paired: ``dst[i]
    (int32)`` holds both rows' token ``start + i``, ``row``'s in the low half."""
    tb = qkv.shape[2]
    i = 0
    while i < n:
        blk, at = (start + i) // tb, (start + i) % tb
        m = min(n - i, tb - at)
        src = qkv[blk, row, at:at + m]
        if row + 1 <= last:
            nxt = qkv[blk, row + 1, at:at + m]
            for t in range(m):
                dst[i + t] = _pair(_code(src[t], scale, zero) - zero, _code(nxt[t], scale, zero) - zero)
        else:
            for t in range(m):
                dst[i + t] = _pair(_code(src[t], scale, zero) - zero, np.int32(0))
        i += m


@nb.njit(**NJIT_FMA_PARALLEL)
def attention_pairs_t(marker, qkv, starts, add_mask, heads, order, bounds, s_scale, p_scale, p_zero, c_scale,
                      in_scales, in_zeros, first_only, longest, out, blocked, qscale, qzero):
    """Attention of the packed sequences ``starts`` of ``qkv`` (fp32 Q, K, V; their codes for ``in_scales``,
    ``in_zeros``) into ``out``, or token-blocked into ``blocked`` (arguments as
    :func:`~.attention_tiles.attention_tiles_t`; ``marker`` names a path of :data:`SHAPES`). ``qkv``: token-blocked
    ``(blocks, 3H, TB)`` — a QKV Linear's ``blocked_out`` —, or ``(1, 3H, T)``."""
    tbo = 1 if blocked is None else blocked.shape[2]
    hidden = out.shape[0]
    d = hidden // heads
    d2 = (d + 1) // 2
    scale = np.float32(1.0 / math.sqrt(d))
    sq, sk, sv = in_scales[0], in_scales[1], in_scales[2]
    zq, zk, zv = np.int32(in_zeros[0]), np.int32(in_zeros[1]), np.int32(in_zeros[2])
    qblocks = (longest + TOKENS - 1) // TOKENS
    n2_max = (longest + 1) // 2
    # K's pair rows an odd number of 64-byte lines apart: the scores tile reads a dword of each of d2 rows per key
    # pair, which a power-of-two row stride would pile onto a few cache sets
    ld = 16 * ((longest + 15) // 16 | 1)
    lo, hi = np.float32(-p_zero), np.float32(255 - p_zero)
    for task in nb.prange(bounds.size - 1):
        qx = np.zeros((qblocks, d2, TOKENS, 2), np.int16)  # Q − zq, two features a dword
        kx = np.zeros((d2, ld, 2), np.int16)  # K − zk, two features a dword; keys along a row
        vx = np.zeros((d, n2_max, 2), np.int16)  # V − zv: a value feature's row over the keys, two keys a dword
        px = np.zeros((1, n2_max, TOKENS, 2), np.int16)  # P − zp, two keys a dword
        q32 = qx.reshape(qblocks, d2, 2 * TOKENS).view(np.int32)
        k32 = kx.reshape(d2, 2 * ld).view(np.int32)
        v32 = vx.reshape(d, 2 * n2_max).view(np.int32)
        p32 = px.reshape(1, n2_max, 2 * TOKENS).view(np.int32)
        st = np.empty((longest, TOKENS), np.float32)  # one block of Sᵀ / P: keys × queries
        tile = np.empty((ROWS, TOKENS), np.int32)
        colmax, colsum = np.empty(TOKENS, np.float32), np.empty(TOKENS, np.float32)
        for item in range(bounds[task], bounds[task + 1]):
            b, h, c0, seq, nq, o0 = item_span(order, item, heads, starts, first_only)
            if seq == 0:
                continue
            blocks = (nq + TOKENS - 1) // TOKENS
            n2 = (seq + 1) // 2
            for e2 in range(d2):  # Q and K in feature pairs (the feature past an odd d: 0)
                for blk in range(blocks):
                    t0 = blk * TOKENS
                    width = min(TOKENS, nq - t0)
                    _pairs_run(qkv, h * d + 2 * e2, h * d + d - 1, c0 + t0, width, sq, zq, q32[blk, e2, :width])
                    q32[blk, e2, width:] = 0  # queries past nq
                _pairs_run(qkv, hidden + h * d + 2 * e2, hidden + h * d + d - 1, c0, seq, sk, zk, k32[e2, :seq])
            for e in range(d):  # V: a feature's row of keys (the key past an odd n: 0)
                row = vx[e].reshape(-1)
                _centred_run(qkv, 2 * hidden + h * d + e, c0, seq, sv, zv, row)
                row[seq:2 * n2] = 0
            for blk in range(blocks):
                j = 0
                while j < seq:  # Sᵀ rows j … j+R−1: K pairs of keys j.. (stride 1), Q pairs of this block
                    rows = tiles(marker, seq - j, k32, j, ld, 1, d2, q32, blk, tile)
                    for r in range(rows):
                        m = add_mask[b, j + r]
                        row, acc = st[j + r], tile[r]
                        for i in range(TOKENS):
                            row[i] = (np.float32(acc[i]) * s_scale) * scale + m
                    j += rows
                exp_columns(marker, st, seq, TOKENS, colmax, colsum)
                for j2 in range(n2):  # P = E / Σ as its codes minus the zero point, two keys a dword
                    first, dst = st[2 * j2], p32[0, j2]
                    if 2 * j2 + 1 < seq:
                        second = st[2 * j2 + 1]
                        for i in range(TOKENS):
                            dst[i] = _pair(np.int32(_round_clamp((first[i] / colsum[i]) / p_scale, lo, hi)),
                                           np.int32(_round_clamp((second[i] / colsum[i]) / p_scale, lo, hi)))
                    else:  # the key past an odd n: 0
                        for i in range(TOKENS):
                            dst[i] = _pair(np.int32(_round_clamp((first[i] / colsum[i]) / p_scale, lo, hi)),
                                           np.int32(0))
                t0 = blk * TOKENS
                width = min(TOKENS, nq - t0)
                e = 0
                while e < d:  # ctxᵀ rows e … e+R−1: V pairs of features e.. (stride n2_max), P pairs
                    rows = tiles(marker, d - e, v32, e * n2_max, 1, n2_max, n2, p32, 0, tile)
                    for r in range(rows):
                        store_context(marker, tile[r], colsum, True, c_scale, out, blocked, h * d + e + r, o0 + t0,
                                      width, tbo, qscale, qzero)
                    e += rows


def tile_assembly(path: str, cpu: str) -> str:
    """Machine code of the ``path`` pair tile compiled for ``cpu`` (an LLVM CPU name) from a stand-alone module,
    whatever CPU this host is."""
    return _assembly(path, cpu, SHAPES, products="pairs")
