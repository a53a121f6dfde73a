"""Vectorised erf/exp/GELU against the C library, on dense grids and at the edges."""

import math

import numba as nb
import numpy as np

from sparsecore.kernels._config import NJIT_FMA
from sparsecore.kernels.vecmath import _GELU_CLAMP, erf32, exp32, gelu32


@nb.njit(**NJIT_FMA)
def _apply(x, which):
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = erf32(x[i]) if which == 0 else exp32(x[i]) if which == 1 else gelu32(x[i])
    return out


def test_erf_matches_libm_within_1e6():
    x = np.concatenate([np.linspace(-6, 6, 200_001), [-1e30, -4.0, -0.0, 0.0, 1e-30, 4.0, 1e30]]).astype(np.float32)
    want = np.array([math.erf(float(v)) for v in x])
    got = _apply(x, 0).astype(np.float64)
    assert np.max(np.abs(got - want)) <= 1e-6
    assert np.all(got[x == 0.0] == 0.0) and np.all(np.abs(got) <= 1.0)
    assert np.all(np.diff(got[:200_001]) >= -5e-7)  # monotone up to the approximation error


def test_exp_matches_libm_within_2_ulp_and_underflows_to_zero():
    x = np.concatenate([np.linspace(-87.3, 88.0, 300_001), [-1e-30, 0.0, 1e-30]]).astype(np.float32)
    want = np.exp(x.astype(np.float64))
    got = _apply(x, 1).astype(np.float64)
    assert np.max(np.abs(got - want) / want) <= 2.5e-7
    assert _apply(np.array([0.0], np.float32), 1)[0] == 1.0
    below = np.array([-87.4, -100.0, -1e30, -np.inf, float(np.finfo(np.float32).min)], np.float32)
    assert np.all(_apply(below, 1) == 0.0)  # softmax of a padded key is exactly 0


def test_gelu_matches_float64_erf_within_2e6_and_is_exact_past_the_clamp():
    x = np.concatenate([np.linspace(-12, 12, 400_001), [-1e30, -0.0, 0.0, 1e-30, 1e30]]).astype(np.float32)
    wide = x.astype(np.float64)
    want = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in wide])
    got = _apply(x, 2).astype(np.float64)
    assert np.max(np.abs(got - want)) <= 2e-6
    beyond = np.abs(x) >= np.float32(_GELU_CLAMP * math.sqrt(2) * 1.0001)  # erf(z) is exactly ±1 past the clamp
    assert np.all(got[beyond & (x > 0)] == x[beyond & (x > 0)]) and np.all(got[beyond & (x < 0)] == 0.0)
    assert np.all(got[x == 0] == 0.0)
