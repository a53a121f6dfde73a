"""Residual-add + LayerNorm kernel against a naive float64 reference."""

import numpy as np
import pytest
from reference import naive_layer_norm_t

from sparsecore.kernels.layer_norm import add_layer_norm_t


@pytest.mark.parametrize("hidden, tokens", [(768, 128), (64, 130), (8, 1), (5, 3)])
@pytest.mark.parametrize("residual", [False, True])
def test_matches_reference(hidden, tokens, residual):
    rng = np.random.default_rng(hidden + tokens)
    x = (rng.standard_normal((hidden, tokens)) * 4 + 3).astype(np.float32)
    r = rng.standard_normal((hidden, tokens)).astype(np.float32) if residual else None
    gamma, beta = rng.standard_normal(hidden).astype(np.float32), rng.standard_normal(hidden).astype(np.float32)
    want = naive_layer_norm_t(x + (0 if r is None else r), gamma, beta, 1e-12)
    np.testing.assert_allclose(add_layer_norm_t(x, gamma, beta, 1e-12, residual=r), want, rtol=1e-5, atol=2e-5)
    add_layer_norm_t(x, gamma, beta, 1e-12, residual=r, out=x)  # in place
    np.testing.assert_allclose(x, want, rtol=1e-5, atol=2e-5)


def test_constant_token_gives_beta():
    x = np.full((16, 3), 7.0, np.float32)
    beta = np.arange(16, dtype=np.float32)
    np.testing.assert_array_equal(add_layer_norm_t(x, np.ones(16, np.float32), beta, 1e-5), np.repeat(beta[:, None], 3, 1))


@pytest.mark.parametrize("kwargs, match", [
    ({"residual": np.ones((4, 2), np.float32)}, "residual must be"),
    ({"out": np.ones((3, 4), np.float32)}, "out must be"),
    ({"out": np.ones((3, 3), np.float64)}, "out must be"),
    ({"gamma": np.ones(4, np.float32)}, "gamma and beta"),
])
def test_bad_input(kwargs, match):
    args = {"x": np.ones((3, 3), np.float32), "gamma": np.ones(3, np.float32), "beta": np.zeros(3, np.float32),
            "eps": 1e-5, **kwargs}
    with pytest.raises(ValueError, match=match):
        add_layer_norm_t(**args)
