"""fp32 self-attention on the register-blocked row kernels of :mod:`.fp32_rows` (the AVX-512 and AVX2 float paths).

The same computation as :func:`sparsecore.kernels.attention.attention_seq_t` on fp32 inputs, per (sequence b,
head h) with d = H / heads, queries taken in blocks of 64 tokens (``TOKENS``):

    Sᵀ[j, block] = k_j · (Q_block/√d) + mask[b, j]       one dense row of d weights (k_j) over the block's q slab
    P = softmax over j per query column                   :func:`~.attention.exp_columns`, on the block in place
    ctxᵀ[e, block] = (Σ_j v_j[e] · P[j, block]) / sum      one dense row of seq weights (v[e]) over P's slab

Both products are the row kernel's ``dense`` rows: the 64 outputs in registers for the whole row, one broadcast
and one FMA per vector per weight, the block's slab (d × 64 or seq × 64 floats: 16 KB / 32 KB for BERT at 128
tokens) in L1 — where the plain loops of :mod:`.attention` load eight rows per accumulator pass. Keys and values
of the head are copied once per item (K as rows of d, V with its key axis padded to even length); the scores'
padding rows are zero. Items are split over threads by cost as in :mod:`.attention`. Tested against the plain
kernel in tests/kernels/test_attention.py.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from sparsecore.kernels._config import NJIT_FMA_PARALLEL
from sparsecore.kernels.attention import exp_columns
from sparsecore.kernels.fp32_rows import TOKENS, dense_row


@nb.njit(**NJIT_FMA_PARALLEL)
def attention_rows_t(marker, qkv, starts, add_mask, heads, order, bounds, first_only, out):
    """fp32 attention of the packed sequences ``starts`` of ``qkv (3H, T)`` into ``out`` (see the module docstring;
    arguments as :func:`~.attention.attention_seq_t` after its checks; ``marker`` names the float path)."""
    hidden = out.shape[0]
    d = hidden // heads
    scale = np.float32(1.0 / math.sqrt(d))
    none = np.zeros(0, np.uint16)  # dense rows read no column indices
    for task in nb.prange(bounds.size - 1):
        acc = np.empty(TOKENS, np.float32)
        for item in range(bounds[task], bounds[task + 1]):
            b, h = order[item] // heads, order[item] % heads
            c0, c1 = starts[b], starts[b + 1]
            seq = c1 - c0
            if seq == 0:
                continue
            nq = 1 if first_only else seq
            o0 = b if first_only else c0
            blocks = (nq + TOKENS - 1) // TOKENS
            padded = seq + seq % 2
            qb = np.zeros((blocks, d, TOKENS), np.float32)  # the queries · 1/√d, token-blocked
            for e in range(d):
                src = qkv[h * d + e]
                for i in range(nq):
                    qb[i // TOKENS, e, i % TOKENS] = src[c0 + i] * scale
            keys = np.empty((seq, d), np.float32)  # row j: key j
            for e in range(d):
                src = qkv[hidden + h * d + e]
                for j in range(seq):
                    keys[j, e] = src[c0 + j]
            values = np.zeros((d, padded), np.float32)  # row e: feature e of every value
            for e in range(d):
                values[e, :seq] = qkv[2 * hidden + h * d + e, c0:c1]
            kflat, vflat = keys.reshape(-1), values.reshape(-1)
            scores = np.zeros((blocks, padded, TOKENS), np.float32)  # keys × queries per block; padding rows 0
            colmax, colsum = np.empty(TOKENS, np.float32), np.empty(TOKENS, np.float32)
            for blk in range(blocks):
                st = scores[blk]
                for j in range(seq):
                    dense_row(marker, none, kflat, kflat, j * d, (j + 1) * d, qb, blk, acc)
                    m = add_mask[b, j]
                    row = st[j]
                    for i in range(TOKENS):
                        row[i] = acc[i] + m
                exp_columns(st, seq, TOKENS, colmax, colsum)
                t0 = blk * TOKENS
                width = min(TOKENS, nq - t0)
                for e in range(d):
                    dense_row(marker, none, vflat, vflat, e * padded, (e + 1) * padded, scores, blk, acc)
                    dst = out[h * d + e, o0 + t0:o0 + t0 + width]
                    for i in range(width):
                        dst[i] = acc[i] / colsum[i]
