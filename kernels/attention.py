"""Fused multi-head self-attention in the features × tokens layout (Numba, parallel over batch × heads).

Input is the fused projection ``QKVᵀ (3H, T)`` (rows: H query features, H key, H value; T = batch·seq
tokens, sequence-major within a batch), output ``ctxᵀ (H, T)`` — the layout the sparse Linear kernels
read and write, so nothing is transposed. Per (sequence b, head h), with d = H / heads:

    Sᵀ[j, i] = (k_j · q_i)/√d + mask[b, j]      keys × queries, one contiguous row per key
    P = softmax over j (per query column i)      max, exp and column sums run along contiguous rows
    ctxᵀ[e, i] = Σ_j v_j[e] · P[j, i] / sum_i

Both products are axpy sweeps over contiguous rows of length seq with eight rows per accumulator update
(the grouping of ``sparse_matmul``); the head's q slab (d·seq floats, 32 KB for BERT) stays in L1.
``exp`` is the vectorised :func:`sparsecore.kernels.vecmath.exp32`. The additive mask follows Hugging
Face: 0 for real tokens, float32 min for padding (their probability is exactly 0).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from sparsecore.kernels._config import NJIT_FMA, NJIT_FMA_PARALLEL
from sparsecore.kernels.vecmath import exp32


@nb.njit(inline="always", **NJIT_FMA)
def _axpy8(acc, w0, w1, w2, w3, w4, w5, w6, w7, x0, x1, x2, x3, x4, x5, x6, x7):
    for t in range(acc.size):
        acc[t] += ((w0 * x0[t] + w1 * x1[t]) + (w2 * x2[t] + w3 * x3[t])) + (
            (w4 * x4[t] + w5 * x5[t]) + (w6 * x6[t] + w7 * x7[t]))


@nb.njit(inline="always", **NJIT_FMA)
def _rows_times_matrix(acc, coef, rows):
    """``acc += Σ_r coef[r] · rows[r]`` (coef (R,), rows (R, L) with contiguous rows), eight rows a step."""
    n = coef.size
    r = 0
    while r + 8 <= n:
        _axpy8(acc, coef[r], coef[r + 1], coef[r + 2], coef[r + 3], coef[r + 4], coef[r + 5], coef[r + 6],
               coef[r + 7], rows[r], rows[r + 1], rows[r + 2], rows[r + 3], rows[r + 4], rows[r + 5],
               rows[r + 6], rows[r + 7])
        r += 8
    while r < n:
        c = coef[r]
        x = rows[r]
        for t in range(acc.size):
            acc[t] += c * x[t]
        r += 1


@nb.njit(**NJIT_FMA_PARALLEL)
def _attention_t(qkv, add_mask, batch, seq, heads, out):
    hidden = out.shape[0]
    d = hidden // heads
    scale = np.float32(1.0 / math.sqrt(d))
    for bh in nb.prange(batch * heads):
        b, h = bh // heads, bh % heads
        c0, c1 = b * seq, (b + 1) * seq
        q = np.ascontiguousarray(qkv[h * d:(h + 1) * d, c0:c1])  # (d, seq)
        kt = np.ascontiguousarray(qkv[hidden + h * d:hidden + (h + 1) * d, c0:c1].T) * scale  # (seq, d)
        vt = np.ascontiguousarray(qkv[2 * hidden + h * d:2 * hidden + (h + 1) * d, c0:c1])  # (d, seq)
        st = np.empty((seq, seq), np.float32)                 # keys × queries
        colmax = np.full(seq, -np.inf, np.float32)
        for j in range(seq):
            row = st[j]
            row[:] = add_mask[b, j]
            _rows_times_matrix(row, kt[j], q)
            for i in range(seq):
                colmax[i] = max(colmax[i], row[i])
        colsum = np.zeros(seq, np.float32)
        for j in range(seq):
            row = st[j]
            for i in range(seq):
                e = exp32(row[i] - colmax[i])
                row[i] = e
                colsum[i] += e
        inv = np.float32(1.0) / colsum
        for e in range(d):
            acc = out[h * d + e, c0:c1]
            acc[:] = 0.0
            _rows_times_matrix(acc, vt[e], st)
            for i in range(seq):
                acc[i] *= inv[i]


def attention_t(qkv: np.ndarray, add_mask: np.ndarray, batch: int, seq: int, heads: int,
                out: np.ndarray | None = None) -> np.ndarray:
    """Self-attention context ``(H, batch·seq)`` from fused ``qkv (3H, batch·seq)`` and ``add_mask (batch, seq)``."""
    three_h, tokens = qkv.shape
    hidden = three_h // 3
    if qkv.dtype != np.float32 or not qkv.flags.c_contiguous or three_h % 3 or hidden % heads or tokens != batch * seq:
        raise ValueError(f"qkv must be a C-contiguous float32 (3H, batch·seq) array with H divisible by heads, "
                         f"got {qkv.dtype} {qkv.shape} for batch {batch}, seq {seq}, heads {heads}")
    add_mask = np.ascontiguousarray(add_mask, dtype=np.float32)
    if add_mask.shape != (batch, seq):
        raise ValueError(f"add_mask must have shape ({batch}, {seq}), got {add_mask.shape}")
    if out is None:
        out = np.empty((hidden, tokens), np.float32)
    if tokens:
        _attention_t(qkv, add_mask, batch, seq, heads, out)
    return out
