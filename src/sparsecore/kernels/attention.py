"""Fused multi-head self-attention in the features × tokens layout (Numba, parallel over sequences × heads).

Input is the fused projection ``QKVᵀ (3H, T)`` (rows: H query features, H key, H value; the tokens of each
sequence side by side, sequence b in columns ``starts[b]:starts[b+1]`` — padded to one length or packed at
their own lengths), output ``ctxᵀ (H, T)`` — the layout the sparse Linear kernels read and write, so nothing is
transposed. The (sequence, head) items are split over the threads by their cost (length²). Per (sequence b,
head h), with d = H / heads:

    Sᵀ[j, i] = (k_j · q_i)/√d + mask[b, j]      keys × queries, one contiguous row per key
    P = softmax over j (per query column i)      max, exp and column sums run along contiguous rows
    ctxᵀ[e, i] = Σ_j v_j[e] · P[j, i] / sum_i

Both products are axpy sweeps over contiguous rows of length seq with eight rows per accumulator update
(the grouping of ``sparse_matmul``); the head's q slab (d·seq floats, 32 KB for BERT) stays in L1.
The softmax is :func:`sparsecore.kernels.softmax.exp_columns` (vector code, the same bits on every path). The
additive mask follows Hugging Face: 0 for real tokens, float32 min for padding (their probability is exactly 0).

Quantized exports (``quant``): Q, K and V are turned into their integer codes minus zero point as each head's
slices are read (``qkv_quant``), or the caller has done it (:func:`sparsecore.kernels.quantize.codes_inplace`);
both products then sum integers exactly, as
``MatMulInteger`` does, and are scaled in the graph's order: ``S = (Σ q·k)·(sq·sk)·(1/√d) + mask``; P =
softmax(S) normalised, then its codes ``clip(round(P/sp) + zp, 0, 255) − zp``; ``ctx = (Σ p·v)·(sp·sv)``.
Quantized attention whose codes are made here (``qkv_quant``) runs both products on integer register tiles where
the host's integer path has them — ``vpdpbusd`` on VNNI (:mod:`.attention_vnni`), ``vpmaddwd`` on int16 pairs on
``avx2`` (:mod:`.attention_pairs`) —, reading a token-blocked ``qkv`` as it lies; elsewhere, on a host with an AVX2
or AVX-512 float path, fp32 attention and those quantized sequences of at most ``MAX_EXACT`` tokens run on float
register tiles (:mod:`.attention_tiles`: the same bits for codes, whose sums are exact); longer quantized sequences
run both products on the integer units when the host has an integer path (:mod:`.int8_attention`). Every one gives
the loops' bits.
"""

from __future__ import annotations

import functools
import math

import numba as nb
import numpy as np

from sparsecore.kernels._config import NJIT_FMA, NJIT_FMA_PARALLEL
from sparsecore.kernels.isa import float_path, integer_path, marker
from sparsecore.kernels.quantize import _round_clamp, pad_blocked
from sparsecore.kernels.softmax import exp_columns


@nb.njit(inline="always", **NJIT_FMA)
def _two_rows_times_matrix(acc0, acc1, coef0, coef1, rows):
    """``acc0 += Σ_r coef0[r]·rows[r]`` and the same for acc1/coef1, in one sweep: every row of ``rows``
    loaded once serves both accumulators, eight rows per pass (the loads, not the FMAs, bound this loop,
    so each load feeds two rows)."""
    n = coef0.size
    r = 0
    while r + 8 <= n:
        a0, a1, a2, a3 = coef0[r], coef0[r + 1], coef0[r + 2], coef0[r + 3]
        a4, a5, a6, a7 = coef0[r + 4], coef0[r + 5], coef0[r + 6], coef0[r + 7]
        b0, b1, b2, b3 = coef1[r], coef1[r + 1], coef1[r + 2], coef1[r + 3]
        b4, b5, b6, b7 = coef1[r + 4], coef1[r + 5], coef1[r + 6], coef1[r + 7]
        x0, x1, x2, x3 = rows[r], rows[r + 1], rows[r + 2], rows[r + 3]
        x4, x5, x6, x7 = rows[r + 4], rows[r + 5], rows[r + 6], rows[r + 7]
        for t in range(acc0.size):
            y0, y1, y2, y3, y4, y5, y6, y7 = x0[t], x1[t], x2[t], x3[t], x4[t], x5[t], x6[t], x7[t]
            acc0[t] += ((a0 * y0 + a1 * y1) + (a2 * y2 + a3 * y3)) + ((a4 * y4 + a5 * y5) + (a6 * y6 + a7 * y7))
            acc1[t] += ((b0 * y0 + b1 * y1) + (b2 * y2 + b3 * y3)) + ((b4 * y4 + b5 * y5) + (b6 * y6 + b7 * y7))
        r += 8
    while r < n:
        a0, b0 = coef0[r], coef1[r]
        x0 = rows[r]
        for t in range(acc0.size):
            acc0[t] += a0 * x0[t]
            acc1[t] += b0 * x0[t]
        r += 1


@nb.njit(inline="always", **NJIT_FMA)
def _rows_times_matrix(out, coef, rows):
    """``out[i] += Σ_r coef[i, r]·rows[r]`` for every i, two output rows per sweep."""
    m = out.shape[0]
    for i in range(0, m - 1, 2):
        _two_rows_times_matrix(out[i], out[i + 1], coef[i], coef[i + 1], rows)
    if m % 2:
        _two_rows_times_matrix(out[m - 1], out[m - 1], coef[m - 1], np.zeros_like(coef[m - 1]), rows)


@nb.njit(**NJIT_FMA)
def _schedule(lengths, heads, tasks):
    """Longest-first greedy split of the (sequence, head) items over ``tasks`` threads by their cost L²:
    returns ``order`` (items grouped by task) and ``bounds`` (task i runs ``order[bounds[i]:bounds[i+1]]``)."""
    n = lengths.size * heads
    cost = np.empty(n, np.int64)
    for item in range(n):
        length = lengths[item // heads]
        cost[item] = length * length + 1
    load = np.zeros(tasks, np.int64)
    owner = np.empty(n, np.int64)
    for item in np.argsort(-cost, kind="mergesort"):
        best = 0
        for t in range(1, tasks):
            if load[t] < load[best]:
                best = t
        owner[item] = best
        load[best] += cost[item]
    bounds = np.zeros(tasks + 1, np.int64)
    for item in range(n):
        bounds[owner[item] + 1] += 1
    for t in range(tasks):
        bounds[t + 1] += bounds[t]
    fill = bounds[:-1].copy()
    order = np.empty(n, np.int64)
    for item in range(n):
        order[fill[owner[item]]] = item
        fill[owner[item]] += 1
    return order, bounds


@nb.njit(inline="always", **NJIT_FMA)
def _to_codes(x, scale, zero):
    """``x ← clip(round(x / scale) + zero, 0, 255) − zero`` in place (``x`` C-contiguous): as
    :func:`sparsecore.kernels.quantize.codes_inplace`, bit for bit."""
    flat = x.reshape(-1)
    lo, hi = np.float32(-zero), np.float32(255 - zero)
    for i in range(flat.size):
        flat[i] = _round_clamp(flat[i] / scale, lo, hi)


@nb.njit(**NJIT_FMA_PARALLEL)
def _attention_t(marker, qkv, starts, add_mask, heads, order, bounds, s_scale, p_scale, p_zero, c_scale, in_scales,
                 in_zeros, first_only, out):
    hidden = out.shape[0]
    d = hidden // heads
    scale = np.float32(1.0 / math.sqrt(d))
    quantized = p_scale > 0
    for task in nb.prange(bounds.size - 1):
        for item in range(bounds[task], bounds[task + 1]):
            b, h = order[item] // heads, order[item] % heads
            c0, c1 = starts[b], starts[b + 1]
            seq = c1 - c0
            nq = min(1, seq) if first_only else seq  # queries: the first token only, or every token
            o0 = b if first_only else c0  # where the queries' context goes in out
            # copies: the codes below are made in place, and qkv stays as it is
            q = qkv[h * d:(h + 1) * d, c0:c0 + nq].copy()  # (d, nq)
            kt = np.ascontiguousarray(qkv[hidden + h * d:hidden + (h + 1) * d, c0:c1].T)  # (seq, d)
            vt = qkv[2 * hidden + h * d:2 * hidden + (h + 1) * d, c0:c1].copy()  # (d, seq)
            if in_scales.size:  # fp32 Q, K, V: their integer codes, quantized here rather than in a pass of their own
                _to_codes(q, in_scales[0], in_zeros[0])
                _to_codes(kt, in_scales[1], in_zeros[1])
                _to_codes(vt, in_scales[2], in_zeros[2])
            st = np.empty((seq, nq), np.float32)                  # keys × queries
            if quantized:  # integer codes: Σ exact, then ·(sq·sk) and ·1/√d in the graph's order
                st[:] = 0.0
                _rows_times_matrix(st, kt, q)
                for j in range(seq):
                    row = st[j]
                    m = add_mask[b, j]
                    for i in range(nq):
                        row[i] = (row[i] * s_scale) * scale + m
            else:
                kt *= scale
                for j in range(seq):
                    st[j, :] = add_mask[b, j]
                _rows_times_matrix(st, kt, q)
            colmax, colsum = np.empty(nq, np.float32), np.empty(nq, np.float32)
            exp_columns(marker, st, seq, nq, colmax, colsum)
            inv = np.float32(1.0) / colsum
            if quantized:  # P = E / Σ as its uint8 codes minus the zero point; ctx = Σ codes·codes · (sp·sv)
                lo, hi = np.float32(-p_zero), np.float32(255 - p_zero)
                for j in range(seq):
                    row = st[j]
                    for i in range(nq):
                        row[i] = _round_clamp((row[i] / colsum[i]) / p_scale, lo, hi)
                inv[:] = c_scale
            ctx = np.zeros((d, nq), np.float32)
            _rows_times_matrix(ctx, vt, st)
            for e in range(d):
                acc = out[h * d + e, o0:o0 + nq]
                for i in range(nq):
                    acc[i] = ctx[e, i] * inv[i]


def attention_t(qkv: np.ndarray, add_mask: np.ndarray, batch: int, seq: int, heads: int,
                out: np.ndarray | None = None, quant: tuple[float, float, int, float] | None = None) -> np.ndarray:
    """Self-attention context ``(H, batch·seq)`` from fused ``qkv (3H, batch·seq)`` and ``add_mask (batch, seq)``.
    ``quant = (sq·sk, sp, zp, sp·sv)``: Q/K/V hold integer codes and the products run as the integer graph's
    (see the module docstring)."""
    if qkv.ndim != 2 or qkv.shape[1] != batch * seq:
        raise ValueError(f"qkv must be a C-contiguous float32 (3H, batch·seq) array with H divisible by heads, "
                         f"got {qkv.dtype} {qkv.shape} for batch {batch}, seq {seq}, heads {heads}")
    return attention_seq_t(qkv, np.arange(batch + 1, dtype=np.int64) * seq, heads, add_mask, out, quant)


def attention_seq_t(qkv: np.ndarray, starts: np.ndarray, heads: int, add_mask: np.ndarray | None = None,
                    out: np.ndarray | None = None, quant: tuple[float, float, int, float] | None = None,
                    qkv_quant: tuple[tuple[float, int], ...] | None = None, first_only: bool = False,
                    blocked_out: np.ndarray | None = None, out_codes: tuple[float, int] | None = None,
                    tokens: int | None = None) -> np.ndarray:
    """Self-attention of sequences of any lengths side by side: sequence b is columns ``starts[b]:starts[b+1]``
    of ``qkv (3H, T)`` (T ≥ ``starts[-1]``; columns after it are left alone in ``out (H, T)``). ``first_only``:
    the context of each sequence's first token only (attending to all its keys), column b of ``out (H, B)`` —
    all a classifier head reads of the last layer.
    ``add_mask (B, ≥ longest)``: the additive mask of each sequence's keys (None: every token is real, the
    packed layout of a batch without its padding). Work is split over the threads by cost (length²), so a batch of
    uneven lengths keeps every core busy. ``quant`` as in :func:`attention_t`. ``qkv_quant = ((sq, zq), (sk, zk),
    (sv, zv))`` (with ``quant``): ``qkv`` holds fp32 Q, K, V and each head's slices are turned into their codes as
    they are read (``qkv`` is left as it is) — the same result as :func:`~sparsecore.kernels.quantize.codes_inplace`
    on each third first, without a pass over the whole tensor.

    ``blocked_out``: the context is written token-blocked into this ``(ceil(C/TB), H, TB)`` array instead of ``out``
    (C = the columns ``out`` would have) and returned — float32 values (:func:`~.fp32_rows.token_blocks`' layout) or,
    with ``out_codes = (scale, zero_point)``, uint8 codes (:func:`~.quantize.quantize_u8_blocked` of the fp32
    context, bit for bit): the input of a next token-blocked Linear. Tokens past the real ones hold 0 / the zero
    point.

    ``qkv`` may also be token-blocked, ``(blocks, 3H, TB)`` (a QKV Linear's ``blocked_out``: token t in block t // TB),
    standing for a ``(3H, tokens)`` array (``tokens`` ≤ blocks·TB, default blocks·TB): read as it lies on a host with
    integer attention tiles (:mod:`.attention_vnni`, :mod:`.attention_pairs`), laid out as rows first elsewhere."""
    return attention_call(qkv, starts, heads, add_mask, out, quant, qkv_quant, first_only, blocked_out, out_codes,
                          tokens)()


def attention_call(qkv: np.ndarray, starts: np.ndarray, heads: int, add_mask: np.ndarray | None = None,
                   out: np.ndarray | None = None, quant: tuple[float, float, int, float] | None = None,
                   qkv_quant: tuple[tuple[float, int], ...] | None = None, first_only: bool = False,
                   blocked_out: np.ndarray | None = None, out_codes: tuple[float, int] | None = None,
                   tokens: int | None = None):
    """:func:`attention_seq_t` checked once and bound to these arrays: a callable without arguments that runs the
    attention on their current contents (``starts`` and ``add_mask`` included: they are read at binding) and
    returns the context."""
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    three_h, tokens = _qkv_shape(qkv, tokens)
    hidden = three_h // 3
    layout = _layout(starts, heads) if starts.ndim == 1 and starts.size >= 1 and heads > 0 else None
    if (qkv.dtype != np.float32 or not qkv.flags.c_contiguous or three_h % 3 or hidden % heads or layout is None
            or starts[-1] > tokens):
        raise ValueError(f"qkv must be a C-contiguous float32 (3H, T) or (blocks, 3H, TB) array with H divisible by "
                         f"heads and starts non-decreasing from 0 to at most T, got {qkv.dtype} {qkv.shape}, heads "
                         f"{heads}, starts {starts[:4]}…")
    lengths, order, bounds = layout
    batch, longest = lengths.size, int(lengths.max(initial=0))
    if add_mask is None:
        add_mask = np.zeros((batch, longest), np.float32)
    add_mask = np.ascontiguousarray(add_mask, dtype=np.float32)
    if add_mask.ndim != 2 or add_mask.shape[0] != batch or add_mask.shape[1] < longest:
        raise ValueError(f"add_mask must have shape ({batch}, {longest}), got {add_mask.shape}")
    columns = batch if first_only else tokens
    blocked, qscale, qzero = _blocked_target(blocked_out, out_codes, hidden, columns)
    s_scale, p_scale, p_zero, c_scale = quant if quant is not None else (1.0, 0.0, 0, 1.0)
    if quant is not None and not (s_scale > 0 and p_scale > 0 and c_scale > 0 and 0 <= p_zero <= 255):
        raise ValueError(f"quant must be positive scales and a zero point in [0, 255], got {quant}")
    in_scales, in_zeros = _NO_CODES
    if qkv_quant is not None:
        codes = _code_arrays(tuple(tuple(qz) for qz in qkv_quant)) if quant is not None else None
        if codes is None:
            raise ValueError(f"qkv_quant must be three (scale > 0, zero point in [0, 255]) pairs, with quant; "
                             f"got {qkv_quant}")
        in_scales, in_zeros = codes
    from sparsecore.kernels import attention_pairs, attention_tiles, attention_vnni

    fpath = float_path()
    path = integer_path()
    # codes made here, both products on integer tiles: VNNI dot4, or int16 pairs while their sums cannot overflow
    integer_tiles = reads_blocked_qkv(in_scales.size > 0) and (path in attention_vnni.SHAPES or
                                                               longest <= attention_pairs.MAX_KEYS)
    relayout = qkv.ndim == 3 and not integer_tiles  # the other kernels read (3H, T) rows: laid out on every call
    rows = np.empty((three_h, tokens), np.float32) if relayout else qkv
    exact = in_scales.size and max(longest, hidden // heads) <= attention_tiles.MAX_EXACT
    tiles = integer_tiles or fpath != "generic" and (quant is None or exact)  # fp32, or codes whose sums are exact in fp32
    into = blocked if tiles else None  # the tile kernel writes the token-blocked layout itself
    if out is None:
        out = np.empty((hidden, 0 if into is not None else columns), np.float32)
    elif out.dtype != np.float32 or out.ndim != 2 or out.shape[0] != hidden or out.shape[1] < (
            batch if first_only else starts[-1]):
        raise ValueError(f"out must be a float32 ({hidden}, ≥ {batch if first_only else starts[-1]}) array, got "
                         f"{out.dtype} {out.shape}")
    f = np.float32
    if not starts[-1]:
        kernel, args = None, ()
    elif integer_tiles:
        kernel = attention_vnni.attention_vnni_t if path in attention_vnni.SHAPES else attention_pairs.attention_pairs_t
        args = (
            marker(path), qkv if qkv.ndim == 3 else qkv[None], starts, add_mask, heads, order, bounds, f(s_scale),
            f(p_scale), int(p_zero), f(c_scale), in_scales, in_zeros, first_only, longest, out, into, qscale, qzero)
    elif tiles:
        kernel, args = attention_tiles.attention_tiles_t, (
            marker(fpath), rows, starts, add_mask, heads, order, bounds, f(s_scale), f(p_scale), int(p_zero),
            f(c_scale), in_scales, in_zeros, first_only, longest, out, into, qscale, qzero)
    elif in_scales.size and path != "generic":  # codes made here: both products on the integer units
        from sparsecore.kernels.int8_attention import _attention_int8
        from sparsecore.kernels.int8_block4 import EXACT_TOKENS

        kernel, args = _attention_int8, (marker(path), rows, starts, add_mask, heads, order, bounds, f(s_scale),
                                         f(p_scale), int(p_zero), f(c_scale), in_scales, in_zeros, first_only,
                                         EXACT_TOKENS[path], longest, out)
    else:
        # the plain loops: one compiled version (the softmax one column at a time gives every path's bits)
        kernel, args = _attention_t, (marker("generic"), rows, starts, add_mask, heads, order, bounds, f(s_scale),
                                      f(p_scale), int(p_zero), f(c_scale), in_scales, in_zeros, first_only, out)
    real = batch if first_only else int(starts[-1])

    def run() -> np.ndarray:
        if relayout:
            rows[...] = qkv.transpose(1, 0, 2).reshape(three_h, -1)[:, :tokens]
        if kernel is not None:
            kernel(*args)
        if blocked is None:
            return out
        if into is None:  # a kernel that writes (H, T) rows: the context laid out afterwards (the same values/codes)
            _relayout_context(out, blocked, real, out_codes)
        return pad_blocked(blocked, real, qzero)

    return run


def _relayout_context(out: np.ndarray, blocked: np.ndarray, real: int, out_codes) -> None:
    """The context's ``real`` columns of ``out (H, ≥ real)`` written token-blocked into ``blocked`` (fp32 values, or
    their codes for ``out_codes``)."""
    from sparsecore.kernels.quantize import quantize_u8_blocked

    blocks, hidden, tb = blocked.shape
    ctx = np.zeros((hidden, blocks * tb), np.float32)
    ctx[:, :real] = out[:, :real]  # a caller's out may stop at the real tokens
    if out_codes is None:
        blocked[...] = ctx.reshape(hidden, blocks, tb).transpose(1, 0, 2)
    else:
        quantize_u8_blocked(ctx, out_codes[0], out_codes[1], tb, out=blocked)


_NO_CODES = (np.zeros(0, np.float32), np.zeros(0, np.int64))
_LAYOUTS: dict = {}  # (starts, heads, threads) → (lengths, order, bounds): a model asks for the same few each call


def _layout(starts: np.ndarray, heads: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(lengths, order, bounds)`` of the packed sequences ``starts`` (:func:`_schedule` over this thread's Numba
    threads), or None when ``starts`` does not start at 0 or decreases. The last few are kept."""
    threads = nb.get_num_threads()
    key = (starts.tobytes(), heads, threads)
    layout = _LAYOUTS.get(key)
    if layout is None:
        lengths = np.diff(starts)
        if starts[0] != 0 or np.any(lengths < 0):
            return None
        layout = (lengths, *_schedule(lengths, heads, max(1, min(threads, lengths.size * heads))))
        if len(_LAYOUTS) >= 64:  # a server's many batch shapes: start over (clear() is atomic across threads)
            _LAYOUTS.clear()
        _LAYOUTS[key] = layout
    return layout


@functools.lru_cache(maxsize=256)
def _code_arrays(qkv_quant: tuple) -> tuple[np.ndarray, np.ndarray] | None:
    """The scales and zero points of Q, K, V's codes as the kernels take them; None unless ``qkv_quant`` is three
    (scale > 0, zero point in [0, 255]) pairs."""
    if len(qkv_quant) != 3 or not all(len(qz) == 2 and np.isfinite(qz[0]) and qz[0] > 0 and 0 <= qz[1] <= 255
                                      for qz in qkv_quant):
        return None
    return np.array([qz[0] for qz in qkv_quant], np.float32), np.array([qz[1] for qz in qkv_quant], np.int64)


def reads_blocked_qkv(quantized: bool) -> bool:
    """True when :func:`attention_seq_t` reads a token-blocked qkv as it lies (quantized attention with its codes made
    in the kernel, on a path with integer attention tiles: VNNI or int16 pairs): a QKV Linear that can write its
    output token-blocked should."""
    from sparsecore.kernels import attention_pairs, attention_vnni

    return quantized and integer_path() in {**attention_vnni.SHAPES, **attention_pairs.SHAPES}


def _qkv_shape(qkv: np.ndarray, tokens: int | None) -> tuple[int, int]:
    """``(3H, T)`` of a ``(3H, T)`` or token-blocked ``(blocks, 3H, TB)`` qkv (T: ``tokens``, at most blocks·TB);
    ``(0, 0)`` for any other shape."""
    if qkv.ndim == 2:
        return qkv.shape if tokens in (None, qkv.shape[1]) else (0, 0)
    if qkv.ndim == 3:
        blocks, three_h, tb = qkv.shape
        if tokens is None or 0 <= tokens <= blocks * tb:
            return three_h, blocks * tb if tokens is None else tokens
    return 0, 0


def _blocked_target(blocked_out, out_codes, hidden: int, columns: int):
    """``(blocked, qscale, qzero)`` for the kernels after checking ``blocked_out`` and ``out_codes``."""
    if blocked_out is None:
        if out_codes is not None:
            raise ValueError("out_codes needs blocked_out: the codes are written token-blocked")
        return None, np.float32(1.0), np.float32(0.0)
    from sparsecore.kernels.quantize import _params, check_blocked

    check_blocked(blocked_out, hidden, columns, np.float32 if out_codes is None else np.uint8, "blocked_out")
    if out_codes is None:
        return blocked_out, np.float32(1.0), np.float32(0.0)
    qscale, qzero = _params(*out_codes, 0, 255)
    return blocked_out, qscale, np.float32(qzero)
