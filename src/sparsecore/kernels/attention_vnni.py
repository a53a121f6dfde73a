"""Quantized self-attention with both products on VNNI register tiles: ``vpdpbusd`` over the codes of Q, K, V and P.

The computation of :func:`sparsecore.kernels.attention.attention_seq_t` for quantized exports whose Q, K, V codes
are made in the kernel (``qkv_quant``), per (sequence b, head h), d = H / heads, queries in blocks of 64 tokens.
With codes q, k, v, p ∈ [0, 255], zero points zq, zk, zv, zp, k' = k − 128 and v' = v − 128 (int8), ck = 128 − zk,
cv = 128 − zv:

    Σ_e (q − zq)(k − zk) = Σ_e q·k' + ck·Σ_e q − zq·(Σ_e k' + ck·d)        scores, keys × queries
    Σ_j (v − zv)(p − zp) = Σ_j p·v' + cv·Σ_j p − zp·(Σ_j v' + cv·n)        context, value features × queries

The first sums are register tiles (:func:`.attention_tiles.emit_tile` with ``dot4`` products): ``tile[r, 0:64] = Σ_s
dot4(A[s, r], B[s, 0:64])`` — B a row of 64 dwords, each the four uint8 codes of one query (Q: four features; P: four
keys), A the four int8 values K' (four features of a key) or V' (four keys of a value feature) broadcast as one dword,
so one ``vpdpbusd`` adds 4 products for 16 queries (8 on ``avx_vnni``). R rows × W queries stay in registers for the
whole depth: 4 rows × 4 zmm on ``avx512_vnni``, 2 × 4 ymm over 32 queries (twice per block) on ``avx_vnni``. Every
sum is an exact int32, and the scores and the context are turned into floats as the float paths do
(``float32(total)`` then the same scaling, mask, softmax of :func:`~.softmax.exp_columns` and codes of P), so the
result is :func:`~.attention.attention_seq_t`'s generic path bit for bit, for any sequence length.

The dwords are built with shifts as the codes are made: ``Q[e4, i] = Σ_s q[4·e4 + s, i] << 8s`` (features past d:
0), ``K'[e4, j]`` likewise with ``k ^ 0x80`` (the byte of k − 128), ``P[j4, i]`` over four keys (keys past n: 0), and V'
is each value feature's row of ``v ^ 0x80`` bytes read four keys at a time. The context is written like
:mod:`.attention_tiles` writes it (rows of ``out``, or token-blocked fp32 / the next Linear's uint8 codes). Items are
split over threads by cost as in :mod:`.attention`; work arrays are allocated once per thread.
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

# path → (int32 lanes per vector, vectors per tile, rows per tile): lanes · vectors queries (64, or 32 twice per block
# on avx_vnni, whose 16 ymm registers hold 8 sums, 4 query vectors and a broadcast) of R rows
SHAPES = {"avx512_vnni": (16, 4, 4), "avx_vnni": (8, 4, 2)}
ROWS = max(rows for _, _, rows in SHAPES.values())

def _plain_tile(rows, a, a_offset, s_stride, r_stride, depth, slab, blk, out):
    """The dot4 sums in plain loops (coverage runs): dwords of ``a`` as four int8, of ``slab`` as four uint8."""
    a4 = a.reshape(-1).view(np.int8).reshape(-1, 4).astype(np.int32)
    b4 = slab[blk].reshape(-1).view(np.uint8).reshape(-1, 4).astype(np.int32)
    for r in range(rows):
        for i in range(TOKENS):
            out[r, i] = sum(int(a4[a_offset + s * s_stride + r * r_stride] @ b4[TOKENS * s + i]) for s in range(depth))


tiles = tile_function(SHAPES, "dot4", _plain_tile, """The VNNI register tile (:func:`~.attention_tiles.tile_function`,
dot4 products): ``a`` int32 or uint8 read as dwords of four int8, ``slab`` int32 dwords of four uint8.""")


@nb.njit(inline="always", **NJIT_FMA)
def _pack(src, scale, zero, flip, shift, dst, sums):
    """``dst[i] (|)= (code(src[i]) ^ flip) << shift`` (assigned when ``shift`` is 0) and ``sums[i] += code − flip``."""
    if shift == 0:
        for i in range(src.size):
            c = _code(src[i], scale, zero)
            dst[i] = c ^ flip
            sums[i] += c - flip
    else:
        for i in range(src.size):
            c = _code(src[i], scale, zero)
            dst[i] |= (c ^ flip) << shift
            sums[i] += c - flip


@nb.njit(inline="always", **NJIT_FMA)
def _pack_bytes(src, scale, zero, dst):
    """``dst[i] = code(src[i]) ^ 0x80`` (the int8 byte of code − 128); returns ``Σ (code − 128)``."""
    total = np.int32(0)
    for i in range(src.size):
        c = _code(src[i], scale, zero)
        dst[i] = np.uint8(c ^ 128)
        total += c - 128
    return total


@nb.njit(inline="always", **NJIT_FMA)
def _pack_run(qkv, row, start, n, scale, zero, flip, shift, dst, sums):
    """:func:`_pack` of row ``row``'s tokens ``start … start + n − 1`` of the token-blocked ``qkv (blocks, 3H, TB)``
    into ``dst[:n]``, ``sums[:n]``, the run split where it crosses a block."""
    tb = qkv.shape[2]
    i = 0
    while i < n:
        blk, at = (start + i) // tb, (start + i) % tb
        m = min(n - i, tb - at)
        _pack(qkv[blk, row, at:at + m], scale, zero, flip, shift, dst[i:i + m], sums[i:i + m])
        i += m


@nb.njit(**NJIT_FMA_PARALLEL)
def attention_vnni_t(marker, qkv, starts, add_mask, heads, order, bounds, s_scale, p_scale, p_zero, c_scale,
                     in_scales, in_zeros, first_only, longest, out, blocked, qscale, qzero):
    """Attention of the packed sequences ``starts`` of ``qkv`` (fp32 Q, K, V; their codes for ``in_scales``,
    ``in_zeros``) into ``out``, or token-blocked into ``blocked`` (arguments as
    :func:`~.attention_tiles.attention_tiles_t`; ``marker`` names a VNNI path). ``qkv``: token-blocked ``(blocks, 3H,
    TB)`` — a QKV Linear's ``blocked_out``, each item's rows read from a few contiguous slabs —, or ``(1, 3H, T)``."""
    tbo = 1 if blocked is None else blocked.shape[2]
    tbi = qkv.shape[2]
    hidden = out.shape[0]
    d = hidden // heads
    d4 = (d + 3) // 4
    scale = np.float32(1.0 / math.sqrt(d))
    sq, sk, sv = in_scales[0], in_scales[1], in_scales[2]
    zq, zk, zv = np.int32(in_zeros[0]), np.int32(in_zeros[1]), np.int32(in_zeros[2])
    ck, cv, zp = np.int32(128) - zk, np.int32(128) - zv, np.int32(p_zero)
    qblocks = (longest + TOKENS - 1) // TOKENS
    n4_max = (longest + 3) // 4
    lo, hi = np.float32(-p_zero), np.float32(255 - p_zero)
    for task in nb.prange(bounds.size - 1):
        qx = np.zeros((qblocks, d4, TOKENS), np.int32)  # Q codes, four features a dword
        q_sums = np.zeros(qblocks * TOKENS, np.int32)
        kx = np.empty((d4, longest), np.int32)  # K' bytes, four features a dword; keys along a row
        k_sums = np.empty(longest, np.int32)
        vx = np.empty((d, 4 * n4_max), np.uint8)  # V' bytes: a value feature's row over the keys
        px = np.empty((1, n4_max, TOKENS), np.int32)  # P codes, four keys a dword
        p_sums = np.empty(TOKENS, np.int32)
        v_sums = np.empty(d, np.int32)
        st = np.empty((longest, TOKENS), np.float32)  # one block of Sᵀ / P: keys × queries
        tile = np.empty((ROWS, TOKENS), np.int32)
        colmax, colsum = np.empty(TOKENS, np.float32), np.empty(TOKENS, np.float32)
        for item in range(bounds[task], bounds[task + 1]):
            b, h, c0, seq, nq, o0 = item_span(order, item, heads, starts, first_only)
            if seq == 0:
                continue
            blocks = (nq + TOKENS - 1) // TOKENS
            n4 = (seq + 3) // 4
            qx[:blocks] = 0  # features past d and queries past nq stay 0
            q_sums[:blocks * TOKENS] = 0
            k_sums[:seq] = 0
            for e in range(d):
                shift = np.int32(8 * (e % 4))
                for blk in range(blocks):
                    t0 = blk * TOKENS
                    width = min(TOKENS, nq - t0)
                    _pack_run(qkv, h * d + e, c0 + t0, width, sq, zq, np.int32(0), shift, qx[blk, e // 4],
                              q_sums[t0:t0 + width])
                _pack_run(qkv, hidden + h * d + e, c0, seq, sk, zk, np.int32(128), shift, kx[e // 4], k_sums)
            for e in range(d):
                row = vx[e]
                total = np.int32(0)
                j = 0
                while j < seq:  # the run of keys, block by block of qkv
                    blk, at = (c0 + j) // tbi, (c0 + j) % tbi
                    m = min(seq - j, tbi - at)
                    total += _pack_bytes(qkv[blk, 2 * hidden + h * d + e, at:at + m], sv, zv, row[j:j + m])
                    j += m
                row[seq:4 * n4] = 0  # keys past n: v' = 0
                v_sums[e] = total
            for blk in range(blocks):
                j = 0
                while j < seq:  # Sᵀ rows j … j+R−1: K' dwords of keys j.. (stride 1), Q dwords of this block
                    rows = tiles(marker, seq - j, kx, j, longest, 1, d4, qx, blk, tile)
                    for r in range(rows):
                        m = add_mask[b, j + r]
                        base = zq * (k_sums[j + r] + ck * d)
                        row, acc, qs = st[j + r], tile[r], q_sums[blk * TOKENS:(blk + 1) * TOKENS]
                        for i in range(TOKENS):
                            row[i] = (np.float32(np.int32(acc[i] + ck * qs[i] - base)) * s_scale) * scale + m
                    j += rows
                exp_columns(marker, st, seq, TOKENS, colmax, colsum)
                p_sums[:] = 0
                for j4 in range(n4):  # P = E / Σ as its codes, four keys a dword (keys past n: 0)
                    dst = px[0, j4]
                    for s in range(4):
                        jj = 4 * j4 + s
                        if jj >= seq:
                            break
                        row = st[jj]
                        if s == 0:
                            for i in range(TOKENS):
                                c = np.int32(_round_clamp((row[i] / colsum[i]) / p_scale, lo, hi)) + zp
                                dst[i] = c
                                p_sums[i] += c
                        else:
                            for i in range(TOKENS):
                                c = np.int32(_round_clamp((row[i] / colsum[i]) / p_scale, lo, hi)) + zp
                                dst[i] |= c << (8 * s)
                                p_sums[i] += c
                t0 = blk * TOKENS
                width = min(TOKENS, nq - t0)
                e = 0
                while e < d:  # ctxᵀ rows e … e+R−1: V' dwords of features e.. (stride n4_max), P dwords
                    rows = tiles(marker, d - e, vx, e * n4_max, 1, n4_max, n4, px, 0, tile)
                    for r in range(rows):
                        acc = tile[r]
                        base = zp * (v_sums[e + r] + cv * seq)
                        for i in range(width):
                            acc[i] = acc[i] + cv * p_sums[i] - base
                        store_context(marker, acc, colsum, True, c_scale, out, blocked, h * d + e + r, o0 + t0, width,
                                      tbo, qscale, qzero)
                    e += rows


def tile_assembly(path: str, cpu: str) -> str:
    """Machine code of the ``path`` VNNI tile compiled for ``cpu`` (an LLVM CPU name) from a stand-alone module,
    whatever CPU this host is."""
    return _assembly(path, cpu, SHAPES, products="dot4")
