"""Naive references the kernels are tested against (slow, obviously correct)."""

import numpy as np


def naive_lowest_k(values: np.ndarray, k: int) -> np.ndarray:
    """The k smallest by a stable sort: ties → lowest index, NaN last (NumPy's order); -0.0 == 0.0."""
    flat = np.asarray(values, dtype=np.float32).reshape(-1) + np.float32(0.0)
    chosen = np.zeros(flat.size, dtype=bool)
    chosen[np.argsort(flat, kind="stable")[:k]] = True
    return chosen.reshape(np.shape(values))


def naive_qparams(lo: float, hi: float, bits: int, symmetric: bool) -> tuple[float, int, int, int]:
    """``(scale, zero_point, qmin, qmax)`` written out in float64 from the textbook definitions."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if symmetric:
        qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        scale = max(max(-lo, hi) / ((qmax - qmin) / 2), float(np.finfo(np.float32).eps))
        return scale, 0, qmin, qmax
    qmin, qmax = 0, 2 ** bits - 1
    scale = max((hi - lo) / (qmax - qmin), float(np.finfo(np.float32).eps))
    zero_point = int(min(max(qmin - np.round(lo / scale), qmin), qmax))
    return scale, zero_point, qmin, qmax


def naive_fake_quant(x: np.ndarray, scale: float, zero_point: int, qmin: int, qmax: int) -> np.ndarray:
    """Element by element: q = clamp(round_half_even(x / s) + z), x̂ = (q - z)·s."""
    out = np.empty_like(x, dtype=np.float64)
    for i, v in enumerate(np.asarray(x, dtype=np.float32).reshape(-1)):
        q = min(max(np.round(np.float32(v) / np.float32(scale)) + zero_point, qmin), qmax)
        out.reshape(-1)[i] = (q - zero_point) * np.float32(scale)
    return out.reshape(np.shape(x))


def naive_linear_t(w: np.ndarray, xt: np.ndarray, bias=None, gelu: bool = False) -> np.ndarray:
    """Yᵀ = W·Xᵀ (+ b) (then exact GELU), summed in float64 one product at a time."""
    import math

    n, k = w.shape
    out = np.zeros((n, xt.shape[1]), dtype=np.float64)
    for i in range(n):
        for j in range(k):
            if w[i, j] != 0:
                out[i] += float(w[i, j]) * xt[j].astype(np.float64)
    if bias is not None:
        out += np.asarray(bias, dtype=np.float64)[:, None]
    if gelu:
        out = np.vectorize(lambda v: 0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))))(out)
    return out
