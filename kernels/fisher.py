"""Block-diagonal empirical-Fisher inverse by Woodbury rank-1 updates (oBERT, arXiv:2203.07259, eq. 4).

    F = λI + (1/m) Σ_j g_j g_jᵀ      (per block of B consecutive weights)
    F⁻¹ ← I/λ;  for each g:  F⁻¹ ← F⁻¹ − (F⁻¹g)(F⁻¹g)ᵀ / (m + gᵀF⁻¹g)

Gradients stream in one at a time, so only F⁻¹ is kept: O(d·B) floats for d weights
(``n_blocks · B · B``), never the m gradients.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from sparsecore.kernels._config import NJIT_PARALLEL


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


def fisher_inverse_init(n_blocks: int, block_size: int, damp: float) -> np.ndarray:
    """``I/λ`` for every block: (n_blocks, B, B) float32."""
    if damp <= 0:
        raise ValueError(f"damp must be > 0, got {damp}")
    return np.broadcast_to(np.eye(block_size, dtype=np.float32) / np.float32(damp),
                           (n_blocks, block_size, block_size)).copy()


def fisher_inverse_update(finv: np.ndarray, grads: np.ndarray, num_grads: int) -> None:
    """Fold one gradient (``(n_blocks, B)``) into ``finv`` in place; ``num_grads`` is m, the total count."""
    if finv.dtype != np.float32 or grads.dtype != np.float32 or not finv.flags.c_contiguous:
        raise TypeError("finv and grads must be float32, finv C-contiguous")
    if finv.ndim != 3 or grads.shape != finv.shape[:2] or finv.shape[1] != finv.shape[2]:
        raise ValueError(f"shapes do not match: finv {finv.shape}, grads {grads.shape}")
    _update(finv, np.ascontiguousarray(grads), float(num_grads))


def fisher_inverse(grads: np.ndarray, damp: float) -> np.ndarray:
    """F⁻¹ blocks from all gradients at once: ``grads`` (m, n_blocks, B) → (n_blocks, B, B)."""
    m, n_blocks, size = grads.shape
    finv = fisher_inverse_init(n_blocks, size, damp)
    for g in grads:
        fisher_inverse_update(finv, g.astype(np.float32, copy=False), m)
    return finv
