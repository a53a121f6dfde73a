"""Sparse-weight × dense-activation kernels against a naive float64 reference."""

import numpy as np
import pytest
from reference import naive_linear_t

from sparsecore.kernels.sparse_matmul import Block4, gelu_inplace, sparse_linear_t, to_block4, to_csr

EPS = np.finfo(np.float32).eps


def weights(n, k, sparsity, rng, block4=False):
    w = rng.standard_normal((n, k)).astype(np.float32)
    if block4:
        keep = rng.random((n, k // 4)) >= sparsity
        w *= np.repeat(keep, 4, axis=1)
    else:
        w[rng.random((n, k)) < sparsity] = 0.0
    return w


def bound(w, xt, k):
    """fp32 summation error bound: each of K additions rounds by ≤ eps relative to the running |sum|."""
    return 2 * k * EPS * (np.abs(w).astype(np.float64) @ np.abs(xt).astype(np.float64)) + 1e-30


@pytest.mark.parametrize("fmt", ["csr", "block4"])
@pytest.mark.parametrize("n, k, t", [(1, 4, 1), (7, 12, 3), (33, 64, 300), (64, 256, 517), (5, 8, 256),
                                     (9, 40, 700)])  # 700 tokens: three tiles, the last partial
@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9, 1.0])
def test_kernels_match_reference(fmt, n, k, t, sparsity):
    rng = np.random.default_rng(n * 1000 + k + t)
    w = weights(n, k, sparsity, rng, block4=fmt == "block4")
    xt = rng.standard_normal((k, t)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    sparse = to_csr(w) if fmt == "csr" else to_block4(w)
    got = sparse_linear_t(sparse, xt, bias)
    want = naive_linear_t(w, xt, bias)
    assert np.all(np.abs(got - want) <= bound(w, xt, k) + 2 * EPS * np.abs(want))
    if sparsity == 1.0:
        assert sparse.nnz == 0 and np.array_equal(got, np.broadcast_to(bias[:, None], got.shape))


@pytest.mark.parametrize("fmt", ["csr", "block4"])
def test_k_panels_and_index_dtypes(fmt):
    """K = 2000 spans three PANEL-wide column panels (the last partial); rows empty in some panels."""
    rng = np.random.default_rng(11)
    w = weights(21, 2000, 0.9, rng, block4=fmt == "block4")
    w[3, :1536] = 0.0  # row 3 only in the last panel
    w[4] = 0.0
    xt = rng.standard_normal((2000, 140)).astype(np.float32)
    sparse = to_csr(w) if fmt == "csr" else to_block4(w)
    assert sparse.panels.shape == (21, 4) and sparse.panels[3, 0] == sparse.panels[3, 2]
    assert np.array_equal(sparse.panels[:, 0], sparse.indptr[:-1]) and np.array_equal(sparse.panels[:, -1], sparse.indptr[1:])
    index = sparse.indices if fmt == "csr" else sparse.blocks
    assert index.dtype == np.uint16
    got = sparse_linear_t(sparse, xt, gelu=True)
    np.testing.assert_allclose(got, naive_linear_t(w, xt, None, gelu=True), rtol=1e-5, atol=1e-4)


def test_wide_k_uses_int32_indices():
    w = np.zeros((2, 70_000), np.float32)
    w[0, 69_999], w[1, 5] = 3.0, -1.0
    csr = to_csr(w)
    assert csr.indices.dtype == np.int32 and csr.panels.shape == (2, 93)
    xt = np.arange(70_000 * 2, dtype=np.float32).reshape(70_000, 2) / 1e4
    np.testing.assert_allclose(sparse_linear_t(csr, xt), w @ xt, rtol=1e-6)


@pytest.mark.parametrize("fmt", ["csr", "block4"])
def test_fused_gelu_and_no_bias(fmt):
    rng = np.random.default_rng(5)
    w = weights(40, 96, 0.9, rng, block4=fmt == "block4")
    xt = rng.standard_normal((96, 130)).astype(np.float32)
    sparse = to_csr(w) if fmt == "csr" else to_block4(w)
    got = sparse_linear_t(sparse, xt, None, gelu=True)
    want = naive_linear_t(w, xt, None, gelu=True)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    dense = (w @ xt).astype(np.float32)
    np.testing.assert_allclose(gelu_inplace(dense.copy()), naive_linear_t(w, xt, None, gelu=True), atol=1e-5)


def test_empty_rows_and_columns_and_negative_zero():
    w = np.zeros((6, 8), np.float32)
    w[1, 3], w[4, 0], w[4, 7] = 2.0, -1.0, 0.5
    w[2, 2] = -0.0  # -0.0 is zero: not stored
    csr = to_csr(w)
    assert csr.nnz == 3 and csr.indptr.tolist() == [0, 0, 8, 8, 8, 16, 16]  # segments padded to 8 entries
    assert csr.indices[8:16].tolist() == [0, 7, 7, 7, 7, 7, 7, 7] and np.count_nonzero(csr.values[8:16]) == 2
    xt = np.arange(8 * 5, dtype=np.float32).reshape(8, 5)
    np.testing.assert_array_equal(sparse_linear_t(csr, xt), (w @ xt).astype(np.float32))
    b4 = to_block4(w)
    # row 1: block 0 and a zero pad block; row 4: blocks 0, 1
    assert isinstance(b4, Block4) and b4.values.shape == (4, 4) and b4.nnz == 3 and b4.blocks.tolist() == [0, 0, 0, 1]
    np.testing.assert_array_equal(sparse_linear_t(b4, xt), (w @ xt).astype(np.float32))


def test_zero_tokens_and_out_buffer():
    w = weights(4, 8, 0.5, np.random.default_rng(0))
    assert sparse_linear_t(to_csr(w), np.zeros((8, 0), np.float32)).shape == (4, 0)
    out = np.empty((4, 3), np.float32)
    xt = np.ones((8, 3), np.float32)
    assert sparse_linear_t(to_csr(w), xt, out=out) is out


@pytest.mark.parametrize("make, match", [
    (lambda: to_block4(np.ones((2, 6), np.float32)), "K divisible by 4"),
    (lambda: to_csr(np.ones((2, 6), np.float64)), "2-D float32"),
    (lambda: sparse_linear_t(to_csr(np.ones((2, 4), np.float32)), np.ones((4, 3), np.float32).T.copy().T),
     "C-contiguous float32"),
    (lambda: sparse_linear_t(to_csr(np.ones((2, 4), np.float32)), np.ones((5, 3), np.float32)), "K=4"),
    (lambda: sparse_linear_t(to_csr(np.ones((2, 4), np.float32)), np.ones((4, 3), np.float32), np.ones(3)),
     r"bias must have shape \(2,\)"),
])
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()

