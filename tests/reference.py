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


def naive_attention_t(qkv: np.ndarray, add_mask: np.ndarray, batch: int, seq: int, heads: int) -> np.ndarray:
    """Multi-head self-attention context (H, batch·seq) from fused QKVᵀ, one query at a time in float64."""
    hidden = qkv.shape[0] // 3
    d = hidden // heads
    q, k, v = (qkv[i * hidden:(i + 1) * hidden].astype(np.float64) for i in range(3))
    out = np.zeros((hidden, batch * seq))
    for b in range(batch):
        cols = slice(b * seq, (b + 1) * seq)
        for h in range(heads):
            rows = slice(h * d, (h + 1) * d)
            for i in range(seq):
                scores = q[rows, cols][:, i] @ k[rows, cols] / np.sqrt(d) + add_mask[b].astype(np.float64)
                p = np.exp(scores - scores.max())
                out[rows, b * seq + i] = v[rows, cols] @ (p / p.sum())
    return out


def naive_layer_norm_t(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    """LayerNorm of every column (token) of x (H, T) in float64, biased variance as PyTorch."""
    x = x.astype(np.float64)
    mean = x.mean(axis=0)
    var = ((x - mean) ** 2).mean(axis=0)
    return (x - mean) / np.sqrt(var + eps) * gamma[:, None] + beta[:, None]


def naive_int_linear_t(codes: np.ndarray, xq: np.ndarray, x_zero: int, bias_int=None, scale=None) -> np.ndarray:
    """ONNX ``MatMulInteger`` (+ int32 bias, then Cast and per-row Mul), transposed: for every output row n,
    ``(Σ_k codes[n, k]·(xq[k] − x_zero) + bias_int[n]) · scale[n]`` with the sum in Python integers."""
    n, k = codes.shape
    acc = np.zeros((n, xq.shape[1]), dtype=object)
    for i in range(n):
        for j in range(k):
            if codes[i, j]:
                acc[i] += int(codes[i, j]) * (xq[j].astype(np.int64) - int(x_zero))
    if bias_int is not None:
        acc += np.asarray(bias_int, dtype=np.int64)[:, None]
    acc = acc.astype(np.int64)
    assert np.all(np.abs(acc) < 2**31), "the int32 accumulator of MatMulInteger would overflow"
    out = acc.astype(np.float32)
    return out if scale is None else out * np.asarray(scale, np.float32)[:, None]


def naive_int_attention_t(codes: np.ndarray, add_mask: np.ndarray, batch: int, seq: int, heads: int,
                          quant: tuple[float, float, int, float]) -> tuple[np.ndarray, np.ndarray]:
    """The integer graph's attention, one query at a time: ``S = (Σ q·k)·s_qk/√d + mask`` (integer sums),
    P = softmax(S) in float64, its uint8 codes ``clip(round(P/sp) + zp, 0, 255) − zp``, ``ctx = (Σ p·v)·s_pv``.
    ``codes`` (3H, T) holds the integer codes of Q, K, V. Returns ``(ctx (H, T), P/sp before rounding (T·heads, seq))``
    — the second tells how close each code was to a rounding tie."""
    s_qk, sp, zp, s_pv = quant
    hidden = codes.shape[0] // 3
    d = hidden // heads
    q, k, v = (codes[i * hidden:(i + 1) * hidden].astype(np.int64) for i in range(3))
    out = np.zeros((hidden, batch * seq))
    ratios = []
    for b in range(batch):
        cols = slice(b * seq, (b + 1) * seq)
        for h in range(heads):
            rows = slice(h * d, (h + 1) * d)
            for i in range(seq):
                scores = (q[rows, cols][:, i] @ k[rows, cols]) * s_qk / np.sqrt(d) + add_mask[b].astype(np.float64)
                p = np.exp(scores - scores.max())
                ratio = p / p.sum() / sp
                ratios.append(ratio)
                p_codes = np.clip(np.round(ratio) + zp, 0, 255) - zp
                out[rows, b * seq + i] = (v[rows, cols] @ p_codes) * s_pv
    return out, np.array(ratios)


def naive_movement_masks(history: list[tuple[int, list[tuple[np.ndarray, np.ndarray]], float | None]]) -> list:
    """Movement pruning, one layer at a time, written out: ``history`` lists the optimizer steps in order as
    ``(step, [(weight, grad) per layer], target or None)`` — a target means "prune to it before this step".
    Scores S = −Σ w·g over the steps before; each update prunes exactly round(target·n) per layer, the
    already-pruned first, then the lowest scores (ties → lowest index). Returns the final masks (True = pruned)."""
    scores = masks = None
    for _, layers, target in history:
        if scores is None:
            scores = [np.zeros(w.size, dtype=np.float64) for w, _ in layers]
            masks = [np.zeros(w.size, dtype=bool) for w, _ in layers]
        if target is not None:
            for i, s in enumerate(scores):
                k = int(np.floor(target * s.size + 0.5))
                order = sorted(range(s.size), key=lambda j: (not masks[i][j], s[j], j))
                masks[i] = np.zeros(s.size, dtype=bool)
                masks[i][order[:k]] = True
        for i, (w, g) in enumerate(layers):
            scores[i] -= (w.astype(np.float64) * g.astype(np.float64)).reshape(-1)
    return masks


def naive_int8_products(codes: np.ndarray, xq: np.ndarray) -> np.ndarray:
    """Σ_k codes[n, k] · xq[k, t] in int64, one product at a time: (N, K) int8 × (K, T) uint8 → (N, T)."""
    n, k = codes.shape
    out = np.zeros((n, xq.shape[1]), np.int64)
    for i in range(n):
        for j in np.flatnonzero(codes[i]):
            out[i] += int(codes[i, j]) * xq[j].astype(np.int64)
    return out
