"""Optimal Brain Surgeon maths for oBERT (Kurtic et al. 2022, arXiv:2203.07259) — pure functions.

Weights are flattened and cut into Fisher blocks of B consecutive weights (the last block padded;
padding never pruned). With F⁻¹ the damped empirical-Fisher inverse of a block:
- unstructured saliency (eq. 6):   ρ_i = w_i² / (2 [F⁻¹]_ii)
- block saliency, groups Q of G consecutive weights (block4: G = 4):  ρ_Q = ½ w_Qᵀ ([F⁻¹]_QQ)⁻¹ w_Q
- optimal update when the set Q of a block is removed (eq. 7):  δw = −F⁻¹ e_Q ([F⁻¹]_QQ)⁻¹ w_Q
Q holds every pruned weight of the block (earlier ones are zero and stay zero under δw).
Shapes: w (n_blocks, B); finv (n_blocks, B, B); memory O(d·B) floats for d weights.
"""

from __future__ import annotations

import numpy as np
import torch


def to_blocks(flat: torch.Tensor, block_size: int) -> torch.Tensor:
    """(d,) → (ceil(d/B), B), zero padded."""
    pad = (-flat.numel()) % block_size
    return torch.nn.functional.pad(flat, (0, pad)).reshape(-1, block_size)


def fisher_inverse_torch(grads: torch.Tensor, damp: float) -> torch.Tensor:
    """Batched torch reference of the Woodbury recursion: grads (m, n_blocks, B) → (n_blocks, B, B)."""
    m, n_blocks, size = grads.shape
    finv = torch.eye(size, dtype=grads.dtype).expand(n_blocks, size, size) / damp
    for g in grads:
        v = torch.bmm(finv, g.unsqueeze(-1)).squeeze(-1)  # (n_blocks, B)
        denom = m + (g * v).sum(-1)
        finv = finv - v.unsqueeze(-1) * v.unsqueeze(-2) / denom[:, None, None]
    return finv


def saliency(w: torch.Tensor, finv: torch.Tensor, group: int = 1) -> torch.Tensor:
    """ρ per unit: (n_blocks, B) for group 1, (n_blocks, B // group) for groups of ``group`` weights."""
    if group == 1:
        diag = torch.diagonal(finv, dim1=-2, dim2=-1)
        # a non-positive diagonal is float32 round-off (F⁻¹ is positive definite): never prune those
        return torch.where(diag > 0, w.pow(2) / (2.0 * diag), torch.full_like(w, float("inf")))
    n_blocks, size = w.shape
    idx = torch.arange(size).reshape(-1, group)  # (B/G, G)
    sub = finv[:, idx[:, :, None], idx[:, None, :]]  # (n_blocks, B/G, G, G)
    wq = w.reshape(n_blocks, -1, group)
    x = torch.linalg.solve(sub.double(), wq.unsqueeze(-1).double()).squeeze(-1).to(w.dtype)  # see update()
    return 0.5 * (wq * x).sum(-1)


def update(w: torch.Tensor, finv: torch.Tensor, pruned: torch.Tensor) -> torch.Tensor:
    """w + δw for every block with its pruned set Q (bool (n_blocks, B)); pruned entries end at 0.

    Batched over blocks with different |Q|: solve A x = P w with A = P F⁻¹ P + (I − P), P = diag(Q),
    which gives x_Q = ([F⁻¹]_QQ)⁻¹ w_Q and x elsewhere 0; then δw = −F⁻¹ x.
    """
    p = pruned.to(w.dtype)
    eye = torch.eye(w.shape[1], dtype=w.dtype)
    a = finv * p[:, :, None] * p[:, None, :] + eye * (1.0 - p)[:, None, :]
    # float64: with large gradients F⁻¹ = (λI + GᵀG/m)⁻¹ spans many orders of magnitude, and float32 LU called
    # such blocks singular
    x = torch.linalg.solve(a.double(), (w * p).unsqueeze(-1).double())
    new = (w.double() - torch.bmm(finv.double(), x).squeeze(-1)).to(w.dtype)
    lost = ~torch.isfinite(new).all(dim=1)  # an F⁻¹ block float32 could not hold: prune it without compensation
    new[lost] = w[lost]
    return torch.where(pruned, torch.zeros_like(new), new)


CHUNK = 8  # gradients folded into F⁻¹ at once: the chunked kernel's fastest size here (benchmarks/fisher_speed.py)


@torch.no_grad()
def stream_fisher_inverses(params, samples, num_grads: int, damp: float, block_size: int,
                           pruned: dict | None = None, chunk: int = CHUNK) -> dict:
    """After each step of ``samples`` (an iterable that leaves a gradient in ``.grad``), take every parameter's
    gradient; every ``chunk`` gradients, fold them into its block-diagonal F⁻¹ (Numba kernel): {name:
    (n_blocks, B, B) float32 numpy}. Entries masked in ``pruned`` (name → bool tensor) count as zero gradient.
    Memory: d·B floats of F⁻¹ plus ``chunk``·d of buffered gradients per parameter."""
    from sparsecore.kernels.fisher import fisher_inverse_init, fisher_inverse_update_chunk  # lazy: Numba

    b = block_size
    chunk = max(1, min(chunk, num_grads))  # never buffer more gradients than an update draws
    finvs = {name: fisher_inverse_init(-(-p.numel() // b), b, damp) for name, p in params}
    buffers = {name: np.empty((chunk, *finvs[name].shape[:2]), np.float32) for name, _ in params}

    def fold(count: int) -> None:
        for name, _ in params:
            fisher_inverse_update_chunk(finvs[name], buffers[name][:count], num_grads)

    filled = 0
    for _ in samples:
        for name, param in params:
            grad = param.grad.detach().float().cpu().reshape(-1)  # kernels work on host memory
            if pruned and name in pruned:
                grad = grad.masked_fill(pruned[name].cpu().reshape(-1), 0.0)
            buffers[name][filled] = to_blocks(grad, b).numpy()
        filled += 1
        if filled == chunk:
            fold(filled)
            filled = 0
    fold(filled)  # the last, partial chunk (an empty one changes nothing)
    return finvs
