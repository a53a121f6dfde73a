"""pytest-benchmark: sparse Linear kernels vs dense torch.nn.functional.linear and torch.sparse CSR.

    python -m pytest benchmarks/test_sparse_kernels.py --benchmark-only --benchmark-group-by=param:shape,param:sparsity
BERT-base Linear shapes (N×K: 768×768 attention, 3072×768 intermediate, 768×3072 output) at 50/70/80/90/95%
sparsity, 128 tokens, fp32 (and int8 codes × uint8 activations for our CSR). Our kernels get their input and
output in huge-page buffers, as inside the engine (sparsecore/deploy/hugepages.py). The dense rows at each
shape are the baseline the engine's format rule (``DENSE_BELOW`` in sparsecore/deploy/linears.py) is read
from. (Not part of the test suite.)
"""

import numpy as np
import pytest
import torch

from sparsecore.deploy.hugepages import huge_page_arrays
from sparsecore.kernels.sparse_matmul import sparse_linear_t, to_block4, to_csr

TOKENS = 128
SHAPES = {"768x768": (768, 768), "3072x768": (3072, 768), "768x3072": (768, 3072)}
SPARSITIES = [0.5, 0.7, 0.8, 0.9, 0.95]


def case(shape, sparsity, block4=False):
    n, k = SHAPES[shape]
    rng = np.random.default_rng(0)
    w = rng.standard_normal((n, k), dtype=np.float32)
    if block4:
        w *= np.repeat(rng.random((n, k // 4)) >= sparsity, 4, axis=1)
    else:
        w[rng.random((n, k)) < sparsity] = 0.0
    x = rng.standard_normal((TOKENS, k), dtype=np.float32)
    return w, x, rng.standard_normal(n, dtype=np.float32)


def engine_buffers(x: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    buffers = huge_page_arrays({"xt": x.T.shape, "out": (n, x.shape[0])})
    buffers["xt"][...] = x.T
    return buffers["xt"], buffers["out"]


@pytest.mark.parametrize("sparsity", SPARSITIES)
@pytest.mark.parametrize("shape", list(SHAPES))
def test_sparsecore_csr(benchmark, shape, sparsity):
    w, x, b = case(shape, sparsity)
    xt, out = engine_buffers(x, w.shape[0])
    benchmark(sparse_linear_t, to_csr(w), xt, b, out=out)


@pytest.mark.parametrize("sparsity", SPARSITIES)
@pytest.mark.parametrize("shape", list(SHAPES))
def test_sparsecore_block4(benchmark, shape, sparsity):
    w, x, b = case(shape, sparsity, block4=True)
    xt, out = engine_buffers(x, w.shape[0])
    benchmark(sparse_linear_t, to_block4(w), xt, b, out=out)


@pytest.mark.parametrize("sparsity", SPARSITIES)
@pytest.mark.parametrize("shape", list(SHAPES))
def test_torch_dense_linear(benchmark, shape, sparsity):
    w, x, b = case(shape, sparsity)
    wt, xt, bt = torch.from_numpy(w), torch.from_numpy(x), torch.from_numpy(b)
    with torch.no_grad():
        benchmark(torch.nn.functional.linear, xt, wt, bt)


@pytest.mark.parametrize("sparsity", SPARSITIES)
@pytest.mark.parametrize("shape", list(SHAPES))
def test_torch_sparse_csr(benchmark, shape, sparsity):
    w, x, b = case(shape, sparsity)
    w_csr = torch.from_numpy(w).to_sparse_csr()
    xt, bt = torch.from_numpy(np.ascontiguousarray(x.T)), torch.from_numpy(b)[:, None]
    with torch.no_grad():
        benchmark(lambda: torch.addmm(bt, w_csr, xt))


@pytest.mark.parametrize("sparsity", SPARSITIES)
@pytest.mark.parametrize("shape", list(SHAPES))
def test_sparsecore_int8_csr(benchmark, shape, sparsity):
    """The integer path: int8 weight codes × uint8 activation codes (exact sums), rescale epilogue."""
    w, x, b = case(shape, sparsity)
    codes = np.clip(np.rint(w * 40), -128, 127).astype(np.int8)
    xt, out = engine_buffers(x, w.shape[0])
    xq = np.clip(np.rint(xt * 40) + 128, 0, 255).astype(np.uint8)
    benchmark(sparse_linear_t, to_csr(codes), xq, b, out=out, scale=np.full(w.shape[0], 1e-3, np.float32))
