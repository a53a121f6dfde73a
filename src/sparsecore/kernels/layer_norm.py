"""LayerNorm over features in the features × tokens layout, with the residual add fused (Numba).

``out = LayerNorm(x + residual)`` for ``x, residual (H, T)``: each token is a column, so per-token
mean and variance accumulate along contiguous feature rows (vectorised over tokens), in chunks of ``CHUNK``
tokens; threads get contiguous token ranges of at least ``SPAN`` tokens. Two passes (mean, then variance of
the centred values), as PyTorch computes it in fp32. ``out`` may be ``x`` (in place).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from sparsecore.kernels._config import NJIT_FMA, NJIT_FMA_PARALLEL

CHUNK = 64  # tokens normalised together: 64 × H floats of x, residual and out stay in L2
SPAN = 256  # fewest tokens per thread: threads splitting every feature row in small pieces share its cache lines
# (each core's prefetcher pulls the neighbouring lines the other core writes): at 128 tokens two threads took
# 2-3x the time of one


@nb.njit(inline="always", **NJIT_FMA)
def _chunk(x, residual, has_residual, gamma, beta, eps, out, t0, t1):
    hidden = x.shape[0]
    inv_h = np.float32(1.0 / hidden)
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


@nb.njit(**NJIT_FMA_PARALLEL)
def _add_layer_norm_t(x, residual, has_residual, gamma, beta, eps, out, threads):
    tokens = x.shape[1]
    tasks = max(1, min(threads, tokens // SPAN))
    per = (tokens + tasks - 1) // tasks
    per = (per + 15) // 16 * 16  # task boundaries on 64-byte lines
    for task in nb.prange(tasks):
        for t0 in range(task * per, min(tokens, (task + 1) * per), CHUNK):
            _chunk(x, residual, has_residual, gamma, beta, eps, out, t0, min(tokens, t0 + CHUNK, (task + 1) * per))


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
    _add_layer_norm_t(x, x if residual is None else residual, residual is not None, gamma, beta, eps, out,
                      nb.get_num_threads())
    return out
