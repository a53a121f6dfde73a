"""pytest-benchmark microbenchmarks of the Numba kernels against their torch / numpy counterparts.

    python -m pytest benchmarks/test_kernel_benchmarks.py --benchmark-only
(Not part of the test suite: `testpaths = tests`.)
"""

import numpy as np
import pytest
import torch

from sparsecore.kernels import lowest_k_mask
from sparsecore.kernels.fisher import fisher_inverse_init, fisher_inverse_update
from sparsecore.pruning.obs import fisher_inverse_torch

N = 3072 * 768  # one BERT-base FFN matrix
VALUES = np.random.default_rng(0).standard_normal(N, dtype=np.float32)
K = int(0.9 * N)


@pytest.mark.benchmark(group="select 90% of 2.4M")
def test_select_sparsecore(benchmark):
    benchmark(lowest_k_mask, VALUES, K)


@pytest.mark.benchmark(group="select 90% of 2.4M")
def test_select_torch_kthvalue(benchmark):
    t = torch.from_numpy(VALUES)
    benchmark(torch.kthvalue, t, K)


@pytest.mark.benchmark(group="select 90% of 2.4M")
def test_select_np_partition(benchmark):
    benchmark(np.partition, VALUES, K - 1)


GRADS = np.random.default_rng(1).standard_normal((16, 4096, 50), dtype=np.float32)


def _numba_fisher():
    finv = fisher_inverse_init(4096, 50, 1e-5)
    for g in GRADS:
        fisher_inverse_update(finv, g, len(GRADS))


@pytest.mark.benchmark(group="fisher inverse 4096 blocks x 50, m=16")
def test_fisher_numba(benchmark):
    benchmark(_numba_fisher)


@pytest.mark.benchmark(group="fisher inverse 4096 blocks x 50, m=16")
def test_fisher_torch(benchmark):
    benchmark(fisher_inverse_torch, torch.from_numpy(GRADS), 1e-5)
