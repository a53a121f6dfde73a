"""Block-diagonal empirical-Fisher inverse by Woodbury rank-1 updates (oBERT, arXiv:2203.07259, eq. 4).

    F = λI + (1/m) Σ_j g_j g_jᵀ      (per block of B consecutive weights)
    F⁻¹ ← I/λ;  for each g:  F⁻¹ ← F⁻¹ − (F⁻¹g)(F⁻¹g)ᵀ / (m + gᵀF⁻¹g)

Gradients stream in, so only F⁻¹ is kept: O(d·B) floats for d weights (``n_blocks · B · B``), never the
m gradients. :func:`fisher_inverse_update` folds one gradient; :func:`fisher_inverse_update_chunk` folds c
at once by the block form of the same identity (c rank-1 steps in one):

    V = F⁻¹Gᵀ (B×c),  S = m·I_c + G V = L Lᵀ,  W = V L⁻ᵀ,  F⁻¹ ← F⁻¹ − W Wᵀ

which reads and writes each block's F⁻¹ once per chunk instead of once per gradient (the rank-1 kernel is
memory-bound: a MiniLM encoder's F⁻¹ at B = 50 is 2.1 GB). S ≥ m·I, so the c×c Cholesky never breaks down.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from sparsecore.kernels._config import NJIT_FMA_PARALLEL, NJIT_PARALLEL


@nb.njit(**NJIT_PARALLEL)
def _update(finv, grads, m: float) -> None:
    # finv: (n_blocks, B, B) float32, symmetric; grads: (n_blocks, B) float32
    n_blocks, size = grads.shape
    for b in nb.prange(n_blocks):
        f = finv[b]
        g = grads[b]
        v = np.zeros(size, dtype=np.float32)
        for i in range(size):  # v = F⁻¹ g (F⁻¹ symmetric: row i · g)
            acc = np.float32(0.0)
            for j in range(size):
                acc += f[i, j] * g[j]
            v[i] = acc
        denom = np.float32(m)
        for i in range(size):
            denom += g[i] * v[i]
        scale = np.float32(1.0) / denom
        for i in range(size):  # upper triangle, mirrored: F⁻¹ stays exactly symmetric
            vi = v[i] * scale
            for j in range(i, size):
                f[i, j] -= vi * v[j]
                f[j, i] = f[i, j]


@nb.njit(**NJIT_FMA_PARALLEL)
def _update_chunk(finv, grads, m: float) -> None:
    # finv: (n_blocks, B, B) float32, symmetric; grads: (c, n_blocks, B) float32
    c, n_blocks, size = grads.shape
    for b in nb.prange(n_blocks):
        f = finv[b]
        v = np.zeros((c, size), dtype=np.float32)  # row k: F⁻¹ g_k (F⁻¹ symmetric: Σ_j g_kj · row j)
        for j in range(size):
            fj = f[j]
            for k in range(c):
                gkj = grads[k, b, j]
                vk = v[k]
                for i in range(size):
                    vk[i] += gkj * fj[i]
        vt = v.T.copy()  # (B, c): S = m I + G V row by row, vectorised over its c columns
        low = np.zeros((c, c), dtype=np.float32)
        for k in range(c):
            gk = grads[k, b]
            sk = low[k]
            for i in range(size):
                gki = gk[i]
                vi = vt[i]
                for q in range(c):
                    sk[q] += gki * vi[q]
            sk[k] += np.float32(m)
        for k in range(c):  # Cholesky factor of S in place (lower triangle); S ≥ m·I
            for q in range(k):
                acc = low[k, q]
                for p in range(q):
                    acc -= low[k, p] * low[q, p]
                low[k, q] = acc / low[q, q]
            acc = low[k, k]
            for p in range(k):
                acc -= low[k, p] * low[k, p]
            low[k, k] = np.sqrt(acc)
        for k in range(c):  # rows of W = L⁻¹ V (forward substitution, in place)
            vk = v[k]
            for p in range(k):
                lkp = low[k, p]
                vp = v[p]
                for i in range(size):
                    vk[i] -= lkp * vp[i]
            inv = np.float32(1.0) / low[k, k]
            for i in range(size):
                vk[i] *= inv
        for i in range(size):  # F⁻¹ -= Wᵀ W; (i, j) and (j, i) subtract the same products in the same order
            fi = f[i]
            for k in range(c):
                wki = v[k, i]
                vk = v[k]
                for j in range(size):
                    fi[j] -= wki * vk[j]


def fisher_inverse_init(n_blocks: int, block_size: int, damp: float) -> np.ndarray:
    """``I/λ`` for every block: (n_blocks, B, B) float32."""
    if damp <= 0:
        raise ValueError(f"damp must be > 0, got {damp}")
    return np.broadcast_to(np.eye(block_size, dtype=np.float32) / np.float32(damp),
                           (n_blocks, block_size, block_size)).copy()


def _check_types(finv: np.ndarray, grads: np.ndarray) -> None:
    if finv.dtype != np.float32 or grads.dtype != np.float32 or not finv.flags.c_contiguous:
        raise TypeError("finv and grads must be float32, finv C-contiguous")


def fisher_inverse_update(finv: np.ndarray, grads: np.ndarray, num_grads: int) -> None:
    """Fold one gradient (``(n_blocks, B)``) into ``finv`` in place; ``num_grads`` is m, the total count."""
    _check_types(finv, grads)
    if finv.ndim != 3 or grads.shape != finv.shape[:2] or finv.shape[1] != finv.shape[2]:
        raise ValueError(f"shapes do not match: finv {finv.shape}, grads {grads.shape}")
    _update(finv, np.ascontiguousarray(grads), float(num_grads))


def fisher_inverse_update_chunk(finv: np.ndarray, grads: np.ndarray, num_grads: int) -> None:
    """Fold c gradients (``(c, n_blocks, B)``) into ``finv`` in place — the same F⁻¹ as c calls of
    :func:`fisher_inverse_update` up to float32 round-off; ``num_grads`` is m, the total count."""
    _check_types(finv, grads)
    if finv.ndim != 3 or grads.ndim != 3 or grads.shape[1:] != finv.shape[:2] or finv.shape[1] != finv.shape[2]:
        raise ValueError(f"shapes do not match: finv {finv.shape}, grads {grads.shape} (want (c, n_blocks, B))")
    if len(grads):
        _update_chunk(finv, np.ascontiguousarray(grads), float(num_grads))


def fisher_inverse(grads: np.ndarray, damp: float) -> np.ndarray:
    """F⁻¹ blocks from all gradients at once: ``grads`` (m, n_blocks, B) → (n_blocks, B, B)."""
    m, n_blocks, size = grads.shape
    finv = fisher_inverse_init(n_blocks, size, damp)
    for g in grads:
        fisher_inverse_update(finv, g.astype(np.float32, copy=False), m)
    return finv
