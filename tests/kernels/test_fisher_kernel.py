"""Woodbury Fisher-inverse kernel vs the batched torch reference vs an exact inverse."""

import numpy as np
import pytest
import torch

from sparsecore.kernels.fisher import fisher_inverse, fisher_inverse_init, fisher_inverse_update
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
