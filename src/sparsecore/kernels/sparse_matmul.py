"""Sparse-weight × dense-activation products for pruned Linear layers, fp32, parallel over output rows.

Layout: features × tokens ("transposed"). A Linear ``y = x Wᵀ + b`` over T tokens is computed as

    Yᵀ (N, T) = W (N, K) · Xᵀ (K, T) + b[:, None]

so every stored weight ``W[n, k]`` scales one contiguous row ``Xᵀ[k, :]`` into the contiguous
accumulator row ``Yᵀ[n, :]`` — a vectorised axpy, no gathers. Cost: one multiply-add per stored weight
and token (2·S·T flops for S stored weights), Xᵀ rows read in the order of the column indices. How the
kernels are organised (``benchmarks/test_sparse_kernels.py`` times them on BERT-base shapes):

* Register tiles (:mod:`.simd`, LLVM vector IR): every full 64-token strip of a row keeps its 64
  accumulators in eight vector registers over the whole (row, panel) run of weights, so the accumulators
  are loaded and stored once per run instead of once per eight weights (the loop below).
* Token tails (< 64 tokens): eight stored weights (CSR) or two 1×4 blocks per accumulator update, the
  accumulator row read and written once per eight products.
* Work is split into contiguous row ranges (few tokens) or token-tile ranges (many tokens, see
  ``_split``); inside a task, tokens in tiles of ``TILE`` and K in panels of ``PANEL`` columns, so the
  slab of Xᵀ a panel reads (``PANEL × TILE`` floats, 384 KB) stays in the core's L2 while every row of
  the range uses it: BERT's K = 3072 output Linear reads a 1.5 MB Xᵀ at 128 tokens, more than L2.
* fp32 FMA contraction and vectorised GELU (see ``_config.NJIT_FMA`` and :mod:`.vecmath`).

Formats (built once from a dense matrix, exact: the products are those of the non-zero weights):
* CSR — ``indptr (N+1,) int64``, ``indices (S,)`` uint16 (int32 when K > 65536), ``values (S,) float32``:
  any sparsity pattern. Memory ≈ 6 bytes per stored weight.
* block4 — 1×4 blocks along K (what ``mask_type: block4`` prunes): ``indptr (N+1,) int64``,
  ``blocks (S,)`` uint16/int32 (block column, k = 4·c), ``values (S, 4) float32``. ≈ 18 bytes per block.
* int8 — either format built from an int8 code matrix keeps int8 values (CSR: 3 bytes per stored weight).
Both keep ``panels (N, P+1) int64``: where each row's entries of each K panel start (``panels[:, 0] =
indptr[:-1]``, ``panels[:, -1] = indptr[1:]``). Each (row, panel) segment is padded with zero weights to a
multiple of the group (8 entries / 2 blocks; on average 3.5 entries / 0.5 blocks per segment, ~5% more
stored entries at 90% sparsity with 768-column panels): the kernels then have no remainder loop, whose
one-entry passes over the accumulator row cost more than the padding's zero products. ``nnz`` counts the real non-zeros.

int8 (the integer exports' ``MatMulInteger``): int8 weight codes times uint8 activation codes ``xt``. The
kernels widen both to fp32 in registers and accumulate with the same FMAs: every product |q·w| ≤ 255·128 <
2¹⁵ is exact and so is every partial sum below 2²⁴ = 16.7 M — the int32 accumulator's value, with a wide
margin at BERT scale; past it each addition rounds once (2⁻²⁴ relative). The caller folds the activation
zero point into the bias (Σ w·(q − z) = Σ w·q − z·Σ w) and passes the per-row rescale ``sa·sb`` as ``scale``.
uint8 rows are a quarter of the fp32 rows' L2→L1 traffic. On AVX2 without VNNI widening to fp32 beats integer
SIMD: ``vpmaddubsw`` saturates u8·s8 pairs at 16 bits, and a plain int16/int32 loop does not vectorise as well.
The same codes held as float32 values (weights and activations) run the fp32 kernel unchanged, with the same
bits: the engine picks per host (:func:`sparsecore.kernels.isa.csr_activations`).

Optional fused epilogue: bias, per-row scale, then exact GELU ``x·½(1 + erf(x/√2))`` (BERT's activation).
Every kernel is tested against dense ``x @ W.T`` in tests/kernels/test_sparse_matmul.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np
from numba.extending import overload

from sparsecore.kernels._config import NJIT_FMA, NJIT_FMA_PARALLEL
from sparsecore.kernels.simd import WIDTH, row_tile
from sparsecore.kernels.vecmath import gelu32

TILE = 128  # tokens per tile: one accumulator row is 512 B
PANEL = 768  # columns of K per panel: a panel of Xᵀ is PANEL × TILE × 4 B = 384 KB, inside a 1 MB L2


@dataclass(frozen=True)
class CSR:
    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    shape: tuple[int, int]
    panels: np.ndarray

    @property
    def nnz(self) -> int:
        return int(np.count_nonzero(self.values))


@dataclass(frozen=True)
class Block4:
    indptr: np.ndarray
    blocks: np.ndarray
    values: np.ndarray  # (nb, 4) float32 or int8
    shape: tuple[int, int]
    panels: np.ndarray

    @property
    def nnz(self) -> int:
        return int(np.count_nonzero(self.values))


def _segments(rows, cols, values, n: int, k: int, width: int, group: int, index_dtype):
    """Entries (row-major, columns sorted) regrouped by (row, K panel) segment, each segment padded to a
    multiple of ``group`` with zero-valued copies of its last entry (same column: already in cache).
    Returns ``indptr (n+1,)``, ``panels (n, P+1)``, indices, values."""
    n_panels = max(1, -(-k // width))
    seg = rows.astype(np.int64) * n_panels + cols // width  # non-decreasing
    counts = np.bincount(seg, minlength=n * n_panels)
    padded = -(-counts // group) * group
    first = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=first[1:])
    starts = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(padded, out=starts[1:])
    slot_seg = np.repeat(np.arange(counts.size), padded)
    rank = np.arange(starts[-1]) - starts[slot_seg]
    real = rank < counts[slot_seg]
    src = first[slot_seg] + np.minimum(rank, counts[slot_seg] - 1)
    out_values = values[src]
    out_values[~real] = 0.0
    panels = np.empty((n, n_panels + 1), dtype=np.int64)
    panels[:, :-1] = starts[:-1].reshape(n, n_panels)
    panels[:, -1] = starts[n_panels::n_panels]
    indptr = np.append(panels[:, 0], starts[-1])
    return indptr, panels, cols[src].astype(index_dtype), np.ascontiguousarray(out_values)


def _dense(w: np.ndarray) -> np.ndarray:
    w = np.asarray(w)
    if w.ndim != 2 or w.dtype not in (np.float32, np.int8):
        raise ValueError(f"weights must be a 2-D float32 or int8 array, got {w.dtype} {w.shape}")
    if w.shape[1] >= 2**31:
        raise ValueError("K must be < 2**31 (column indices are int32)")
    return np.ascontiguousarray(w)


def _index_dtype(columns: int) -> type:
    """uint16 column indices while they fit (K ≤ 65536, every BERT-family Linear), else int32."""
    return np.uint16 if columns <= 2**16 else np.int32


def to_csr(w: np.ndarray) -> CSR:
    """CSR of a dense (N, K) float32 or int8 matrix (entries equal to 0 are dropped, -0.0 included); the
    values keep the matrix's dtype."""
    w = _dense(w)
    rows, cols = np.nonzero(w)
    indptr, panels, indices, values = _segments(rows, cols, w[rows, cols], w.shape[0], w.shape[1], PANEL, 8,
                                                _index_dtype(w.shape[1]))
    return CSR(indptr, indices, values, w.shape, panels)


def to_block4(w: np.ndarray) -> Block4:
    """1×4 blocks along K: a block is stored when any of its four weights is non-zero. K % 4 == 0."""
    w = _dense(w)
    n, k = w.shape
    if k % 4:
        raise ValueError(f"block4 needs K divisible by 4, got K = {k}")
    grouped = w.reshape(n, k // 4, 4)
    rows, cols = np.nonzero(np.any(grouped != 0, axis=2))
    indptr, panels, blocks, values = _segments(rows, cols, grouped[rows, cols], n, k // 4, PANEL // 4, 2,
                                               _index_dtype(k // 4))
    return Block4(indptr, blocks, values, w.shape, panels)


@nb.njit(**NJIT_FMA)
def _gelu_tile(acc):
    for t in range(acc.size):
        x = acc[t]
        acc[t] = gelu32(x)


@nb.njit(inline="always", **NJIT_FMA)
def _csr_segment(index, values, j, end, xs, acc):
    # acc += Σ_j values[j] · xs[index[j]], eight entries per accumulator pass (segments are padded to
    # multiples of 8). xs is C-contiguous, so its rows are known-contiguous and the loop vectorises
    # (flat offset ranges into one buffer keep LLVM from vectorising it; slicing the tail columns out of Xᵀ
    # per entry would create a view per entry: _linear_t copies the tail to xs once per tile instead).
    # The float32 casts are no-ops for fp32 operands; int8 weights / uint8 activations are widened in
    # registers (see the int8 path in the module docstring).
    f = np.float32
    while j < end:
        w0, w1, w2, w3 = f(values[j]), f(values[j + 1]), f(values[j + 2]), f(values[j + 3])
        w4, w5, w6, w7 = f(values[j + 4]), f(values[j + 5]), f(values[j + 6]), f(values[j + 7])
        x0, x1, x2, x3 = xs[index[j]], xs[index[j + 1]], xs[index[j + 2]], xs[index[j + 3]]
        x4, x5, x6, x7 = xs[index[j + 4]], xs[index[j + 5]], xs[index[j + 6]], xs[index[j + 7]]
        for t in range(acc.size):
            acc[t] += ((w0 * f(x0[t]) + w1 * f(x1[t])) + (w2 * f(x2[t]) + w3 * f(x3[t]))) + (
                (w4 * f(x4[t]) + w5 * f(x5[t])) + (w6 * f(x6[t]) + w7 * f(x7[t])))
        j += 8


@nb.njit(inline="always", **NJIT_FMA)
def _block4_segment(index, values, j, end, xs, acc):
    # acc += Σ_j values[j, :] · xs[4·index[j] : 4·index[j] + 4], two blocks per accumulator pass
    # (segments are padded to even block counts). Casts as in _csr_segment.
    f = np.float32
    while j < end:
        k, m = 4 * index[j], 4 * index[j + 1]
        w0, w1, w2, w3 = f(values[j, 0]), f(values[j, 1]), f(values[j, 2]), f(values[j, 3])
        w4, w5, w6, w7 = f(values[j + 1, 0]), f(values[j + 1, 1]), f(values[j + 1, 2]), f(values[j + 1, 3])
        x0, x1, x2, x3 = xs[k], xs[k + 1], xs[k + 2], xs[k + 3]
        x4, x5, x6, x7 = xs[m], xs[m + 1], xs[m + 2], xs[m + 3]
        for t in range(acc.size):
            acc[t] += ((w0 * f(x0[t]) + w1 * f(x1[t])) + (w2 * f(x2[t]) + w3 * f(x3[t]))) + (
                (w4 * f(x4[t]) + w5 * f(x5[t])) + (w6 * f(x6[t]) + w7 * f(x7[t])))
        j += 2


@nb.njit(**NJIT_FMA)
def _split(n_rows, t_total, threads):
    """Work split: (row tasks, rows per task, tile tasks, tiles per task). Few tokens: each thread gets
    ranges of rows over all tokens. Many tokens (≥ 2 tiles per thread): each thread gets ranges of token
    tiles over all rows, so Xᵀ (50 MB at batch 32, K = 3072) is read from memory once in all, not once per
    row range (row ranges slow down as they multiply; token ranges do not)."""
    n_tiles = (t_total + TILE - 1) // TILE
    if n_tiles >= 2 * threads:
        tile_tasks = min(n_tiles, 2 * threads)
        return 1, n_rows, tile_tasks, (n_tiles + tile_tasks - 1) // tile_tasks
    row_tasks = max(1, min(n_rows, 2 * threads))
    return row_tasks, (n_rows + row_tasks - 1) // row_tasks, 1, n_tiles


def _segment(index, values, j, end, xs, acc):
    """acc += the products of entries j..end: CSR (1-D values) or block4 (values (S, 4)), chosen at compile time."""


@overload(_segment, inline="always")  # inlined into _linear_t, compiled with its options
def _segment_impl(index, values, j, end, xs, acc):
    return (_block4_segment if values.ndim == 2 else _csr_segment).py_func


@nb.njit(**NJIT_FMA_PARALLEL)
def _linear_t(panels, index, values, xt, bias, scale, gelu, out, threads):
    # xt: (K, T) float32 or uint8, C-contiguous; out: (N, T) float32; bias: (N,) float32 (zeros when
    # absent); scale: (N,) float32 applied after the sum (empty: none).
    n_rows, n_panels, t_total = panels.shape[0], panels.shape[1] - 1, xt.shape[1]
    row_tasks, rows_per, tile_tasks, tiles_per = _split(n_rows, t_total, threads)
    for task in nb.prange(row_tasks * tile_tasks):
        r0 = (task // tile_tasks) * rows_per
        r1 = min(n_rows, r0 + rows_per)
        tile0 = (task % tile_tasks) * tiles_per
        for t0 in range(tile0 * TILE, min(t_total, (tile0 + tiles_per) * TILE), TILE):
            t1 = min(t0 + TILE, t_total)
            full = t0 + (t1 - t0) // WIDTH * WIDTH  # [t0, full): register tiles; [full, t1): the grouped loop
            # the tail's tokens of Xᵀ as their own C-contiguous block (copied once per tile)
            xs = xt if full == 0 and t1 == t_total else np.ascontiguousarray(xt[:, full:t1])
            for n in range(r0, r1):
                out[n, t0:t1] = bias[n]
            for p in range(n_panels):
                for n in range(r0, r1):
                    j0, j1 = panels[n, p], panels[n, p + 1]
                    for s in range(t0, full, WIDTH):
                        row_tile(index, values, j0, j1, xt, s, out[n])
                    if full < t1:
                        _segment(index, values, j0, j1, xs, out[n, full:t1])
            if scale.size:
                for n in range(r0, r1):
                    out[n, t0:t1] *= scale[n]
            if gelu:
                for n in range(r0, r1):
                    _gelu_tile(out[n, t0:t1])


def _check(weight, xt: np.ndarray, bias, scale, out) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, k = weight.shape
    if xt.dtype not in (np.float32, np.uint8) or xt.ndim != 2 or xt.shape[0] != k or not xt.flags.c_contiguous:
        raise ValueError(f"xt must be a C-contiguous float32 or uint8 (K={k}, T) array, got {xt.dtype} {xt.shape}")
    bias = np.zeros(n, np.float32) if bias is None else np.ascontiguousarray(bias, dtype=np.float32)
    scale = np.zeros(0, np.float32) if scale is None else np.ascontiguousarray(scale, dtype=np.float32)
    for name, v in (("bias", bias), ("scale", scale)):
        if v.shape != (n,) and not (name == "scale" and v.size == 0):
            raise ValueError(f"{name} must have shape ({n},), got {v.shape}")
    if out is None:
        out = np.empty((n, xt.shape[1]), dtype=np.float32)
    elif out.shape != (n, xt.shape[1]) or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 ({n}, {xt.shape[1]}) array")
    return bias, scale, out


def sparse_linear_t(weight: CSR | Block4, xt: np.ndarray, bias: np.ndarray | None = None, gelu: bool = False,
                    out: np.ndarray | None = None, scale: np.ndarray | None = None) -> np.ndarray:
    """``Yᵀ = (W · Xᵀ + bias) · scale (then GELU)`` for a CSR or block4 weight; ``xt`` is (K, T), returns
    (N, T) float32. ``scale`` (N,) multiplies each output row (None: 1); int8 weights with uint8
    activation codes compute the integer products exactly (see the module docstring)."""
    bias, scale, out = _check(weight, xt, bias, scale, out)
    if xt.shape[1] == 0:
        return out
    if isinstance(weight, CSR):
        _linear_t(weight.panels, weight.indices, weight.values, xt, bias, scale, gelu, out, nb.get_num_threads())
    elif isinstance(weight, Block4):
        _linear_t(weight.panels, weight.blocks, weight.values, xt, bias, scale, gelu, out, nb.get_num_threads())
    else:
        raise TypeError(f"unsupported sparse format {type(weight).__name__}")
    return out


def gelu_inplace(x: np.ndarray) -> np.ndarray:
    """Exact GELU on a float32 array, in place (the dense path's epilogue)."""
    _gelu_flat(x.reshape(-1))
    return x


@nb.njit(**NJIT_FMA_PARALLEL)
def _gelu_flat(x):
    chunk = 4096
    for c in nb.prange((x.size + chunk - 1) // chunk):
        _gelu_tile(x[c * chunk:min(x.size, (c + 1) * chunk)])
