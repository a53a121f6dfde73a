"""Sparse-weight × dense-activation products for pruned Linear layers, fp32, parallel over output rows.

Layout: features × tokens ("transposed"). A Linear ``y = x Wᵀ + b`` over T tokens is computed as

    Yᵀ (N, T) = W (N, K) · Xᵀ (K, T) + b[:, None]

so every stored weight ``W[n, k]`` scales one contiguous row ``Xᵀ[k, :]`` into the contiguous
accumulator row ``Yᵀ[n, :]`` — a vectorised axpy, no gathers. Rows ``n`` are split across threads
(``prange``), and T is processed in tiles of ``TILE`` tokens so the accumulator stays in L1. (Tiling T
outside the row loop, to keep the slab of Xᵀ in L2, measured no faster at batch 32 and slower at batch 1.)

Formats (built once from a dense matrix, exact: zeros dropped, nothing else changed):
* CSR — ``indptr (N+1,) int64``, ``indices (nnz,) int32`` (column k < 2³¹), ``values (nnz,) float32``:
  any sparsity pattern. Memory: 8·(N+1) + 8·nnz bytes.
* block4 — 1×4 blocks along K (what ``mask_type: block4`` prunes): ``indptr (N+1,) int64``,
  ``blocks (nb,) int32`` (block column, k = 4·c), ``values (nb, 4) float32``. One accumulator
  update per four weights: fewer loads and stores than CSR at the same sparsity. Memory: 8·(N+1) + 20·nb.

Optional fused epilogue: bias, then exact GELU ``x·½(1 + erf(x/√2))`` (BERT's activation).
Every kernel is tested against dense ``x @ W.T`` in tests/kernels/test_sparse_matmul.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np

from sparsecore.kernels._config import NJIT, NJIT_PARALLEL

TILE = 256  # tokens per accumulator tile: 1 KB of fp32, inside L1



@dataclass(frozen=True)
class CSR:
    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    shape: tuple[int, int]

    @property
    def nnz(self) -> int:
        return int(self.values.size)


@dataclass(frozen=True)
class Block4:
    indptr: np.ndarray
    blocks: np.ndarray
    values: np.ndarray  # (nb, 4)
    shape: tuple[int, int]

    @property
    def nnz(self) -> int:
        return int(np.count_nonzero(self.values))


def _dense(w: np.ndarray) -> np.ndarray:
    w = np.asarray(w)
    if w.ndim != 2 or w.dtype != np.float32:
        raise ValueError(f"weights must be a 2-D float32 array, got {w.dtype} {w.shape}")
    if w.shape[1] >= 2**31:
        raise ValueError("K must be < 2**31 (column indices are int32)")
    return np.ascontiguousarray(w)


def to_csr(w: np.ndarray) -> CSR:
    """CSR of a dense (N, K) float32 matrix (entries equal to 0 are dropped, -0.0 included)."""
    w = _dense(w)
    rows, cols = np.nonzero(w)
    indptr = np.zeros(w.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=w.shape[0]), out=indptr[1:])
    return CSR(indptr, cols.astype(np.int32), w[rows, cols].astype(np.float32), w.shape)


def to_block4(w: np.ndarray) -> Block4:
    """1×4 blocks along K: a block is stored when any of its four weights is non-zero. K % 4 == 0."""
    w = _dense(w)
    n, k = w.shape
    if k % 4:
        raise ValueError(f"block4 needs K divisible by 4, got K = {k}")
    grouped = w.reshape(n, k // 4, 4)
    rows, cols = np.nonzero(np.any(grouped != 0, axis=2))
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return Block4(indptr, cols.astype(np.int32), np.ascontiguousarray(grouped[rows, cols]), w.shape)


@nb.njit(**NJIT)
def _gelu(x):
    return 0.5 * x * (1.0 + math.erf(x * 0.7071067811865476))


@nb.njit(**NJIT)
def _gelu_tile(acc):
    for t in range(acc.size):
        acc[t] = _gelu(acc[t])


@nb.njit(**NJIT_PARALLEL)
def _csr_t(indptr, indices, values, xt, bias, gelu, out):
    # xt: (K, T) float32 C-contiguous; out: (N, T) float32; bias: (N,) float32 (zeros when absent).
    # Inner loops run over zero-based slices: LLVM vectorises them (offset ranges defeat it, 6× slower).
    n_rows = indptr.size - 1
    t_total = xt.shape[1]
    for n in nb.prange(n_rows):
        for t0 in range(0, t_total, TILE):
            width = min(TILE, t_total - t0)
            acc = out[n, t0:t0 + width]
            acc[:] = bias[n]
            for j in range(indptr[n], indptr[n + 1]):
                w = values[j]
                x = xt[indices[j], t0:t0 + width]
                for t in range(width):
                    acc[t] += w * x[t]
            if gelu:
                _gelu_tile(acc)


@nb.njit(**NJIT_PARALLEL)
def _block4_t(indptr, blocks, values, xt, bias, gelu, out):
    # values: (nb, 4); block c covers rows 4c..4c+3 of xt
    n_rows = indptr.size - 1
    t_total = xt.shape[1]
    for n in nb.prange(n_rows):
        for t0 in range(0, t_total, TILE):
            width = min(TILE, t_total - t0)
            acc = out[n, t0:t0 + width]
            acc[:] = bias[n]
            for j in range(indptr[n], indptr[n + 1]):
                k = 4 * blocks[j]
                w0, w1, w2, w3 = values[j, 0], values[j, 1], values[j, 2], values[j, 3]
                x0 = xt[k, t0:t0 + width]
                x1 = xt[k + 1, t0:t0 + width]
                x2 = xt[k + 2, t0:t0 + width]
                x3 = xt[k + 3, t0:t0 + width]
                for t in range(width):
                    acc[t] += w0 * x0[t] + w1 * x1[t] + w2 * x2[t] + w3 * x3[t]
            if gelu:
                _gelu_tile(acc)


def _check(weight, xt: np.ndarray, bias, out) -> tuple[np.ndarray, np.ndarray]:
    n, k = weight.shape
    if xt.dtype != np.float32 or xt.ndim != 2 or xt.shape[0] != k or not xt.flags.c_contiguous:
        raise ValueError(f"xt must be a C-contiguous float32 (K={k}, T) array, got {xt.dtype} {xt.shape}")
    bias = np.zeros(n, np.float32) if bias is None else np.ascontiguousarray(bias, dtype=np.float32)
    if bias.shape != (n,):
        raise ValueError(f"bias must have shape ({n},), got {bias.shape}")
    if out is None:
        out = np.empty((n, xt.shape[1]), dtype=np.float32)
    elif out.shape != (n, xt.shape[1]) or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 ({n}, {xt.shape[1]}) array")
    return bias, out


def sparse_linear_t(weight: CSR | Block4, xt: np.ndarray, bias: np.ndarray | None = None, gelu: bool = False,
                    out: np.ndarray | None = None) -> np.ndarray:
    """``Yᵀ = W · Xᵀ (+ bias) (then GELU)`` for a CSR or block4 weight; ``xt`` is (K, T), returns (N, T)."""
    bias, out = _check(weight, xt, bias, out)
    if xt.shape[1] == 0:
        return out
    if isinstance(weight, CSR):
        _csr_t(weight.indptr, weight.indices, weight.values, xt, bias, gelu, out)
    elif isinstance(weight, Block4):
        _block4_t(weight.indptr, weight.blocks, weight.values, xt, bias, gelu, out)
    else:
        raise TypeError(f"unsupported sparse format {type(weight).__name__}")
    return out


def gelu_inplace(x: np.ndarray) -> np.ndarray:
    """Exact GELU on a float32 array, in place (the dense path's epilogue)."""
    _gelu_flat(x.reshape(-1))
    return x


@nb.njit(**NJIT_PARALLEL)
def _gelu_flat(x):
    for i in nb.prange(x.size):
        x[i] = _gelu(x[i])
