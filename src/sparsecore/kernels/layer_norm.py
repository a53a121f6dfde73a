"""LayerNorm over features in the features × tokens layout, with the residual add fused (Numba).

``out = LayerNorm(x + residual)`` for ``x, residual (H, T)``: each token is a column, so per-token
mean and variance accumulate along contiguous feature rows (vectorised over tokens), and tokens are
split across threads in chunks of ``CHUNK``. Two passes (mean, then variance of the centred values),
as PyTorch computes it in fp32. ``out`` may be ``x`` (in place).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from sparsecore.kernels._config import NJIT_FMA_PARALLEL

CHUNK = 64  # tokens per thread task: 64 × H floats of x, residual and out stay in L2


@nb.njit(**NJIT_FMA_PARALLEL)
def _add_layer_norm_t(x, residual, has_residual, gamma, beta, eps, out):
    hidden, tokens = x.shape
    inv_h = np.float32(1.0 / hidden)
    for c in nb.prange((tokens + CHUNK - 1) // CHUNK):
        t0, t1 = c * CHUNK, min(tokens, (c + 1) * CHUNK)
        mean = np.zeros(t1 - t0, np.float32)
        for f in range(hidden):
            o = out[f, t0:t1]
            xr = x[f, t0:t1]
            if has_residual:
                rr = residual[f, t0:t1]
                for t in range(o.size):
                    o[t] = xr[t] + rr[t]
            else:
                o[:] = xr
            for t in range(o.size):
                mean[t] += o[t]
        mean *= inv_h
        var = np.zeros(t1 - t0, np.float32)
        for f in range(hidden):
            o = out[f, t0:t1]
            for t in range(o.size):
                o[t] -= mean[t]
                var[t] += o[t] * o[t]
        rstd = np.float32(1.0) / np.sqrt(var * inv_h + np.float32(eps))
        for f in range(hidden):
            o = out[f, t0:t1]
            g, b = gamma[f], beta[f]
            for t in range(o.size):
                o[t] = o[t] * rstd[t] * g + b


def add_layer_norm_t(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float,
                     residual: np.ndarray | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """``LayerNorm(x + residual)`` over axis 0 of ``x (H, T)``; ``out=x`` normalises in place."""
    for name, a in (("x", x), ("residual", residual), ("out", out)):
        if a is not None and (a.dtype != np.float32 or a.ndim != 2 or not a.flags.c_contiguous or a.shape != x.shape):
            raise ValueError(f"{name} must be a C-contiguous float32 array of shape {x.shape}, got {a.dtype} {a.shape}")
    gamma = np.ascontiguousarray(gamma, dtype=np.float32)
    beta = np.ascontiguousarray(beta, dtype=np.float32)
    if gamma.shape != (x.shape[0],) or beta.shape != (x.shape[0],):
        raise ValueError(f"gamma and beta must have shape ({x.shape[0]},), got {gamma.shape} and {beta.shape}")
    if out is None:
        out = np.empty_like(x)
    _add_layer_norm_t(x, x if residual is None else residual, residual is not None, gamma, beta, eps, out)
    return out
