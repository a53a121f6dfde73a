"""Woodbury Fisher-inverse kernels (one gradient / a chunk of c) vs the batched torch reference vs an exact inverse."""

import numpy as np
import pytest
import torch

from sparsecore.kernels.fisher import (
    fisher_inverse,
    fisher_inverse_init,
    fisher_inverse_update,
    fisher_inverse_update_chunk,
)
from sparsecore.pruning.obs import fisher_inverse_torch


@pytest.mark.parametrize("m, n_blocks, size, damp", [(1, 1, 1, 1.0), (8, 3, 5, 1e-2), (32, 7, 50, 1e-3)])
def test_kernel_matches_reference_and_exact_inverse(m, n_blocks, size, damp):
    rng = np.random.default_rng(m + size)
    grads = rng.standard_normal((m, n_blocks, size)).astype(np.float32)
    ours = fisher_inverse(grads, damp)
    ref = fisher_inverse_torch(torch.from_numpy(grads), damp).numpy()
    scale = np.abs(ref).max()
    assert np.abs(ours - ref).max() / scale < 1e-5
    exact = np.stack([np.linalg.inv(damp * np.eye(size) + (grads[:, b, :, None] * grads[:, b, None, :]).mean(0))
                      for b in range(n_blocks)])
    assert np.abs(ours - exact).max() / np.abs(exact).max() < 5e-4  # fp32 recursion vs fp64 inverse


def test_streaming_equals_batch_and_validates():
    rng = np.random.default_rng(0)
    grads = rng.standard_normal((4, 2, 6)).astype(np.float32)
    finv = fisher_inverse_init(2, 6, 0.1)
    for g in grads:
        fisher_inverse_update(finv, g, 4)
    np.testing.assert_allclose(finv, fisher_inverse(grads, 0.1), rtol=1e-6)
    with pytest.raises(ValueError):
        fisher_inverse_init(2, 6, 0.0)
    with pytest.raises(ValueError):
        fisher_inverse_update(finv, grads[0][:, :5].copy(), 4)
    with pytest.raises(TypeError):
        fisher_inverse_update(finv, grads[0].astype(np.float64), 4)


def exact_inverse(grads: np.ndarray, damp: float) -> np.ndarray:
    g = grads.astype(np.float64)
    return np.stack([np.linalg.inv(damp * np.eye(g.shape[2]) + (g[:, b, :, None] * g[:, b, None, :]).mean(0))
                     for b in range(g.shape[1])])


@pytest.mark.parametrize("m, chunk, n_blocks, size, damp", [
    (1, 1, 1, 1, 1.0),        # a single scalar block
    (8, 8, 3, 5, 1e-2),       # c > B: G rank-deficient, S = mI + G F⁻¹Gᵀ still positive definite
    (12, 5, 4, 7, 1e-3),      # chunks of 5, 5, 2
    (32, 8, 7, 50, 1e-3),     # the default chunk at the oBERT block size
    (16, 16, 5, 20, 1e-7),    # oBERT's damping: F⁻¹ entries up to 1e7
])
def test_chunk_kernel_matches_rank1_kernel_reference_and_exact(m, chunk, n_blocks, size, damp):
    rng = np.random.default_rng(m * 100 + size)
    grads = (rng.standard_normal((m, n_blocks, size)) * 1e-2).astype(np.float32)
    finv = fisher_inverse_init(n_blocks, size, damp)
    for start in range(0, m, chunk):
        fisher_inverse_update_chunk(finv, grads[start:start + chunk], m)
    one_by_one = fisher_inverse(grads, damp)
    ref = fisher_inverse_torch(torch.from_numpy(grads), damp).numpy()
    exact = exact_inverse(grads, damp)
    scale = np.abs(exact).max()
    assert np.abs(finv - one_by_one).max() / scale < 1e-5
    assert np.abs(finv - ref).max() / scale < 1e-5
    assert np.abs(finv - exact).max() / scale < 5e-4
    np.testing.assert_array_equal(finv, finv.transpose(0, 2, 1))  # exactly symmetric, like the rank-1 kernel


def test_chunk_kernel_zero_gradients_and_validation():
    rng = np.random.default_rng(1)
    grads = rng.standard_normal((4, 3, 6)).astype(np.float32)
    grads[:, 1] = 0.0  # a fully pruned block: its F⁻¹ stays I/λ
    finv = fisher_inverse_init(3, 6, 0.5)
    fisher_inverse_update_chunk(finv, grads, 4)
    np.testing.assert_array_equal(finv[1], np.eye(6, dtype=np.float32) / np.float32(0.5))
    before = finv.copy()
    fisher_inverse_update_chunk(finv, grads[:0], 4)  # an empty chunk changes nothing
    np.testing.assert_array_equal(finv, before)
    with pytest.raises(ValueError):
        fisher_inverse_update_chunk(finv, grads[0], 4)  # one gradient without its chunk axis
    with pytest.raises(ValueError):
        fisher_inverse_update_chunk(finv, grads[:, :, :5].copy(), 4)
    with pytest.raises(TypeError):
        fisher_inverse_update_chunk(finv, grads.astype(np.float64), 4)
