"""The siamese pair head of the sparsecore engine: each text's mean-pooled embedding and the head on two of them.

A siamese export (:mod:`sparsecore.adapters.pair_encoder`) runs the encoder once per text; the engine runs the
texts of both sides as one batch of real tokens, pools each sequence's final hidden states over its real tokens and
applies the head (numpy, float32): ``[u, v, |u − v|, u ⊙ v] · Wᵀ + b`` (classification) or
``w · cos(u, v) + b`` (regression).
"""

from __future__ import annotations

import numpy as np


def mean_pool_columns(xt: np.ndarray, starts: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """``(batch, H)``: the mean of each sequence's columns of ``xt`` (H, T). Sequence b holds columns
    ``starts[b]:starts[b+1]``; ``mask`` (batch, width), when given (every position run, padding included), weights
    them (0 on padding)."""
    batch = starts.size - 1
    out = np.empty((batch, xt.shape[0]), np.float32)
    for b in range(batch):
        block = xt[:, starts[b]:starts[b + 1]]
        if mask is None:
            out[b] = block.mean(axis=1)
        else:
            weights = mask[b, :block.shape[1]].astype(np.float32)
            out[b] = block @ weights / max(float(weights.sum()), 1.0)
    return out


def pair_logits(u: np.ndarray, v: np.ndarray, head: tuple[np.ndarray, np.ndarray], regression: bool) -> np.ndarray:
    """Logits ``(batch, labels)`` of the siamese head ``(W, b)`` on the embeddings ``u``, ``v`` (batch, H)."""
    weight, bias = head
    if regression:
        norms = np.maximum(np.linalg.norm(u, axis=1), 1e-8) * np.maximum(np.linalg.norm(v, axis=1), 1e-8)
        cosine = (u * v).sum(axis=1) / norms
        return (cosine[:, None] * weight.reshape(1, -1) + bias).astype(np.float32)
    features = np.concatenate([u, v, np.abs(u - v), u * v], axis=1)
    return (features @ weight.T + bias).astype(np.float32)
