"""The quantized attention products on the CPU's integer units: ``Σ q·k`` and ``Σ p·v`` as exact int32 sums of uint8
codes, through the 1×4-block row kernel of :mod:`.int8_block4` exact for any int8 weights (``vpdpbusd`` on VNNI,
``vpmaddwd`` on int16-widened codes on AVX2: :func:`~.int8_block4.block4_row_exact`).

Per (sequence, head), with codes q, k, v, p ∈ [0, 255] and zero points zq, zk, zv, zp (d = head width, n = keys):

    Σ_e (q − zq)(k − zk) = Σ_e q·k' + ck·Σ_e q − zq·Σ_e k' − zq·ck·d        k' = k − 128 (int8), ck = 128 − zk
    Σ_j (v − zv)(p − zp) = Σ_j v'·p + cv·Σ_j p − zp·Σ_j v' − zp·cv·n        v' = v − 128 (int8), cv = 128 − zv

The first sums are the kernel's (uint8 activations q or p, int8 "weights" k' or v'), the rest are row and column
sums; every term is an exact integer (|Σ| < 2³¹ for d, n ≤ 65,536), so the scores and the context are those of
:func:`.attention.attention_seq_t`'s float path bit for bit — it sums the same integers exactly in fp32. Q and
each key row of P are interleaved by four features/keys and token-blocked as :func:`.int8_block4.interleave4`
lays them out; K' and V' are dense rows of 1×4 blocks. Scaling, mask, softmax and the codes of P follow the float
path line for line. Work arrays are per task, sized for the longest sequence, allocated once per call.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from sparsecore.kernels._config import NJIT_FMA, NJIT_FMA_PARALLEL
from sparsecore.kernels.int8_block4 import block4_row_exact
from sparsecore.kernels.quantize import _round_clamp
from sparsecore.kernels.softmax import exp_columns


@nb.njit(inline="always", **NJIT_FMA)
def _code(x, scale, zero):
    """The uint8 code of ``x`` as an int32 (``QuantizeLinear``: round half to even, saturate)."""
    return np.int32(_round_clamp(x / scale, np.float32(-zero), np.float32(255 - zero))) + zero


@nb.njit(**NJIT_FMA)
def _dense_rows(codes_t, rows, blocks, out_bytes, row_sums):
    """Rows ``r < rows`` of the int8 "weights" ``codes − 128`` from ``codes_t[c, r]`` (int32 codes, c < columns),
    packed as ``blocks`` 1×4 blocks per row (columns past the end: 0) into ``out_bytes (rows·blocks, 4)``;
    ``row_sums[r] = Σ_c (codes − 128)``."""
    columns = codes_t.shape[0]
    for r in range(rows):
        total = np.int32(0)
        for c4 in range(blocks):
            for s in range(4):
                c = 4 * c4 + s
                w = np.int32(codes_t[c, r]) - 128 if c < columns else np.int32(0)
                out_bytes[r * blocks + c4, s] = np.int8(w)
                total += w
        row_sums[r] = total


@nb.njit(**NJIT_FMA)
def _interleave(codes, rows, columns, tb, out, column_sums):
    """``out[b, r4, i, s] = codes[4·r4 + s, tb·b + i]`` for rows < ``rows`` (rows past it: 0) and columns <
    ``columns`` (uint8: the codes are in [0, 255]); ``column_sums[c] = Σ_r codes[r, c]``."""
    column_sums[:columns] = 0
    for r4 in range((rows + 3) // 4):
        for s in range(4):
            r = 4 * r4 + s
            if r < rows:
                src = codes[r]
                for c in range(columns):
                    column_sums[c] += src[c]
        for b in range((columns + tb - 1) // tb):
            dst = out[b, r4]
            width = min(tb, columns - b * tb)
            for s in range(4):
                r = 4 * r4 + s
                if r < rows:
                    src = codes[r, b * tb:b * tb + width]
                    for i in range(width):
                        dst[i, s] = np.uint8(src[i])
                else:
                    for i in range(width):
                        dst[i, s] = 0


@nb.njit(**NJIT_FMA)
def _row(marker, index, values, values4, j0, j1, xb, b, out):
    """:func:`.int8_block4.block4_row_exact`, compiled once per path for both products (not inlined at each)."""
    block4_row_exact(marker, index, values, values4, j0, j1, xb, b, out)


@nb.njit(**NJIT_FMA_PARALLEL)
def _attention_int8(marker, qkv, starts, add_mask, heads, order, bounds, s_scale, p_scale, p_zero, c_scale,
                    in_scales, in_zeros, first_only, tb, longest, out):
    hidden = out.shape[0]
    d = hidden // heads
    d4 = (d + 3) // 4
    scale = np.float32(1.0 / math.sqrt(d))
    sq, sk, sv = in_scales[0], in_scales[1], in_scales[2]
    zq, zk, zv = np.int32(in_zeros[0]), np.int32(in_zeros[1]), np.int32(in_zeros[2])
    ck, cv = np.int32(128) - zk, np.int32(128) - zv
    n4 = (longest + 3) // 4
    qblocks = (longest + tb - 1) // tb
    for task in nb.prange(bounds.size - 1):
        # per-task work arrays, sized for the longest sequence
        index_k = np.empty(longest * d4, np.uint16)  # dense rows: block c of every row
        for i in range(index_k.size):
            index_k[i] = i % d4
        index_v = np.empty(d * n4, np.uint16)
        k_bytes = np.empty((longest * d4, 4), np.int8)
        v_bytes = np.empty((d * n4, 4), np.int8)
        k_sums = np.empty(longest, np.int32)
        v_sums = np.empty(d, np.int32)
        qx = np.zeros((qblocks, d4, tb, 4), np.uint8)
        px = np.zeros((qblocks, n4, tb, 4), np.uint8)
        q_sums = np.empty(qblocks * tb, np.int32)
        p_sums = np.empty(qblocks * tb, np.int32)
        codes = np.empty((max(d, longest), longest), np.int32)  # Q, K or V codes (features × tokens)
        codes_p = np.empty((longest, longest), np.int32)  # P codes (keys × queries)
        st = np.empty((longest, longest), np.float32)
        acc = np.empty(tb, np.int32)
        colmax = np.empty(longest, np.float32)
        colsum = np.empty(longest, np.float32)
        k_values, v_values = k_bytes.reshape(-1).view(np.int32), v_bytes.reshape(-1).view(np.int32)
        for item in range(bounds[task], bounds[task + 1]):
            b, h = order[item] // heads, order[item] % heads
            c0, c1 = starts[b], starts[b + 1]
            seq = c1 - c0
            nq = min(1, seq) if first_only else seq
            o0 = b if first_only else c0
            if seq == 0:
                continue
            blocks_q = (nq + tb - 1) // tb
            # K' rows (keys × d) and their sums
            for e in range(d):
                src = qkv[hidden + h * d + e, c0:c1]
                for j in range(seq):
                    codes[e, j] = _code(src[j], sk, zk)
            _dense_rows(codes[:d, :seq], seq, d4, k_bytes, k_sums)
            # Q codes interleaved by four features, and each query's Σ q
            for e in range(d):
                src, dst = qkv[h * d + e, c0:c0 + nq], codes[e]
                for i in range(nq):
                    dst[i] = _code(src[i], sq, zq)
            _interleave(codes, d, nq, tb, qx, q_sums)
            # scores Sᵀ (keys × queries): exact Σ (q − zq)(k − zk), then the float path's scaling and mask
            for j in range(seq):
                m = add_mask[b, j]
                base = np.int32(zq) * (k_sums[j] + ck * d)
                row = st[j]
                for qb in range(blocks_q):
                    _row(marker, index_k, k_values, k_bytes, j * d4, (j + 1) * d4, qx, qb, acc)
                    for i in range(min(tb, nq - qb * tb)):
                        total = acc[i] + ck * q_sums[qb * tb + i] - base
                        row[qb * tb + i] = (np.float32(total) * s_scale) * scale + m
            exp_columns(marker, st, seq, nq, colmax, colsum)
            # P codes interleaved by four keys (padding keys: 0), and each query's Σ p
            lo, hi = np.float32(-p_zero), np.float32(255 - p_zero)
            for j in range(seq):
                row, dst = st[j], codes_p[j]
                for i in range(nq):
                    dst[i] = np.int32(_round_clamp((row[i] / colsum[i]) / p_scale, lo, hi)) + p_zero
            _interleave(codes_p, seq, nq, tb, px, p_sums)
            # V' rows (d × keys) and their sums; context = exact Σ (v − zv)(p − zp) · (sp·sv)
            for e in range(d):
                src = qkv[2 * hidden + h * d + e, c0:c1]
                for j in range(seq):
                    codes[e, j] = _code(src[j], sv, zv)
            n4_seq = (seq + 3) // 4
            _dense_rows(codes[:d, :seq].T, d, n4_seq, v_bytes, v_sums)
            for i in range(d * n4_seq):  # V' rows hold n4_seq blocks each
                index_v[i] = i % n4_seq
            for e in range(d):
                base = np.int32(p_zero) * (v_sums[e] + cv * seq)
                dst = out[h * d + e, o0:o0 + nq]
                for qb in range(blocks_q):
                    _row(marker, index_v, v_values, v_bytes, e * n4_seq, (e + 1) * n4_seq, px, qb, acc)
                    for i in range(min(tb, nq - qb * tb)):
                        dst[qb * tb + i] = np.float32(acc[i] + cv * p_sums[qb * tb + i] - base) * c_scale
