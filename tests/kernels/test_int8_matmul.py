"""int8 weights × uint8 activation codes through the sparse kernels, against integer arithmetic."""

import numpy as np
import pytest
from reference import naive_int_linear_t

from sparsecore.kernels.sparse_matmul import sparse_linear_t, to_block4, to_csr


def int8_weights(n, k, sparsity, rng, block4=False):
    w = rng.integers(-128, 128, (n, k)).astype(np.int8)
    keep = rng.random((n, k // 4 if block4 else k)) >= sparsity
    return w * (np.repeat(keep, 4, axis=1) if block4 else keep).astype(np.int8)


def run(w, xq, zero, bias_int=None, scale=None, fmt="csr", gelu=False):
    """What the engine does: the zero point folded into a float bias, the rescale as the row scale."""
    bias = -zero * w.astype(np.int64).sum(axis=1)
    if bias_int is not None:
        bias = bias + bias_int
    sparse = to_csr(w) if fmt == "csr" else to_block4(w)
    assert sparse.values.dtype == np.int8
    return sparse_linear_t(sparse, xq, bias.astype(np.float32), gelu=gelu, scale=scale)


@pytest.mark.parametrize("fmt", ["csr", "block4"])
@pytest.mark.parametrize("n, k, t", [(1, 4, 1), (7, 12, 3), (33, 64, 300), (9, 40, 700), (5, 2000, 130)])
@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9, 1.0])
def test_int8_kernels_are_exact(fmt, n, k, t, sparsity):
    rng = np.random.default_rng(n * 7 + k + t)
    w = int8_weights(n, k, sparsity, rng, block4=fmt == "block4")
    xq = rng.integers(0, 256, (k, t)).astype(np.uint8)
    zero = int(rng.integers(0, 256))
    bias_int = rng.integers(-50_000, 50_000, n)
    got = run(w, xq, zero, bias_int, fmt=fmt)
    np.testing.assert_array_equal(got, naive_int_linear_t(w, xq, zero, bias_int))


@pytest.mark.parametrize("fmt", ["csr", "block4"])
def test_int8_edges_saturated_codes_empty_rows(fmt):
    """Every activation at 255 against weights at -128 and 127 (the largest products), zero point 0 and 255,
    empty rows and rows empty in some K panels: exact while |Σ| < 2²⁴ (K = 512: 512·255·128 = 16.7 M)."""
    k = 512
    w = np.zeros((6, k), np.int8)
    w[0] = -128
    w[1] = 127
    w[2, :4] = -128  # one block, one panel
    w[4, 500:] = 127  # only the last entries
    xq = np.full((k, 20), 255, np.uint8)
    for zero in (0, 255, 3):
        np.testing.assert_array_equal(run(w, xq, zero, fmt=fmt), naive_int_linear_t(w, xq, zero))
    assert run(w, xq, 0)[0, 0] == -128 * 255 * k


def test_int8_scale_and_gelu_epilogue():
    rng = np.random.default_rng(3)
    w = int8_weights(40, 96, 0.8, rng)
    xq = rng.integers(0, 256, (96, 150)).astype(np.uint8)
    scale = rng.uniform(1e-5, 1e-4, 40).astype(np.float32)
    want = naive_int_linear_t(w, xq, 7, None, scale)
    np.testing.assert_array_equal(run(w, xq, 7, scale=scale), want)
    from sparsecore.kernels.sparse_matmul import gelu_inplace
    np.testing.assert_allclose(run(w, xq, 7, scale=scale, gelu=True), gelu_inplace(want.copy()), rtol=1e-6, atol=1e-7)


def test_int8_layout_is_three_bytes_per_weight():
    rng = np.random.default_rng(4)
    w = int8_weights(64, 768, 0.9, rng)
    csr = to_csr(w)
    assert csr.indices.dtype == np.uint16 and csr.values.dtype == np.int8 and csr.nnz == np.count_nonzero(w)
