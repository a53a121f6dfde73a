"""The radix-select kernel against a stable-argsort reference."""

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from reference import naive_lowest_k

from sparsecore.kernels import lowest_k_mask, lowest_k_masks


@pytest.mark.parametrize("shape", [(1,), (2,), (7,), (3, 5), (64, 33), (1000, 3), (70001,)])
@pytest.mark.parametrize("kind", ["normal", "ties", "all_equal", "zeros", "negative"])
def test_matches_reference_for_k_edges(shape, kind):
    rng = np.random.default_rng(sum(shape))
    n = int(np.prod(shape))
    values = {"normal": rng.standard_normal(shape), "ties": rng.integers(0, 4, shape),
              "all_equal": np.full(shape, 0.25), "zeros": np.zeros(shape),
              "negative": -np.abs(rng.standard_normal(shape))}[kind].astype(np.float32)
    for k in sorted({0, 1, n - 1, n, n // 2, n // 3}):
        got = lowest_k_mask(values, k)
        assert got.shape == values.shape and got.dtype == np.bool_
        assert int(got.sum()) == k
        np.testing.assert_array_equal(got, naive_lowest_k(values, k))


def test_special_values_order():
    x = np.array([np.nan, -0.0, 0.0, np.inf, -np.inf, -1.0, -np.nan, 1e-40, -1e-40, 3.0], np.float32)
    for k in range(x.size + 1):
        np.testing.assert_array_equal(lowest_k_mask(x, k), naive_lowest_k(x, k))
    assert lowest_k_mask(x, 8)[[0, 6]].tolist() == [False, False]  # both NaNs come last


def test_constant_values_prune_exactly_k_lowest_indices():
    mask = lowest_k_mask(np.ones(10, np.float32), 3)
    assert mask.tolist() == [True] * 3 + [False] * 7


def test_many_arrays_ties_by_array_order_then_index():
    arrays_ = [np.zeros(3, np.float32), np.zeros((2, 2), np.float32), np.zeros(1, np.float32)]
    masks = lowest_k_masks(arrays_, 5)
    assert [m.tolist() for m in masks] == [[True] * 3, [[True, True], [False, False]], [False]]


def test_many_arrays_match_concatenated_reference():
    rng = np.random.default_rng(1)
    arrays_ = [rng.integers(0, 50, s).astype(np.float32) for s in [(5,), (100, 7), (1,), (33, 33), (4096,)]]
    flat = np.concatenate([a.reshape(-1) for a in arrays_])
    for k in (0, 1, 17, flat.size // 2, flat.size - 1, flat.size):
        got = np.concatenate([m.reshape(-1) for m in lowest_k_masks(arrays_, k)])
        np.testing.assert_array_equal(got, naive_lowest_k(flat, k))


@settings(max_examples=60, deadline=None)
@given(arrays(np.float32, st.integers(1, 300), elements=st.floats(width=32, allow_nan=True,
                                                                allow_infinity=True)),
       st.floats(0, 1))
def test_property_exact_k_and_reference(values, fraction):
    k = int(fraction * values.size)
    got = lowest_k_mask(values, k)
    assert int(got.sum()) == k
    np.testing.assert_array_equal(got, naive_lowest_k(values, k))


def test_validation_errors():
    with pytest.raises(TypeError, match="float32"):
        lowest_k_mask(np.zeros(4), 1)
    with pytest.raises(ValueError, match=r"\[0, 4\]"):
        lowest_k_mask(np.zeros(4, np.float32), 5)
    with pytest.raises(ValueError):
        lowest_k_mask(np.zeros(4, np.float32), -1)


def test_runs_without_jit_for_coverage():
    code = ("import numpy as np; from sparsecore.kernels import lowest_k_masks; "
            "m = lowest_k_masks([np.array([3, 1, 2, 1], np.float32), np.array([0, 5], np.float32)], 3); "
            "print([x.tolist() for x in m])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, NUMBA_DISABLE_JIT="1"))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[[False, True, False, True], [True, False]]"


@pytest.mark.parametrize("case", ["normal", "ties", "nan_tail", "many_arrays"])
def test_sampled_fast_path_is_exact(case):
    """n ≥ 4M takes the sampled-window path (with its exact fallback): same answer as the reference."""
    rng = np.random.default_rng(7)
    n = 4_500_000
    if case == "normal":
        arrays_ = [rng.standard_normal(n, dtype=np.float32)]
    elif case == "ties":
        arrays_ = [rng.integers(0, 4, n).astype(np.float32)]
    elif case == "nan_tail":
        values = rng.standard_normal(n, dtype=np.float32)
        values[rng.random(n) < 0.1] = np.nan
        arrays_ = [values]
    else:
        arrays_ = [rng.standard_normal(s, dtype=np.float32) for s in (1_000_000, 7, 0, 2_500_001, 999_999)]
    flat = np.concatenate([a.reshape(-1) for a in arrays_])
    for fraction in (0.0000003, 0.5, 0.9, 0.92, 0.9999999):
        k = int(fraction * flat.size)
        got = np.concatenate([m.reshape(-1) for m in lowest_k_masks(arrays_, k)])
        assert int(got.sum()) == k
        np.testing.assert_array_equal(got, naive_lowest_k(flat, k), err_msg=f"{case} k={k}")


def test_out_masks_are_filled_and_returned():
    rng = np.random.default_rng(3)
    arrays_ = [rng.standard_normal((5, 7)).astype(np.float32), rng.standard_normal(9).astype(np.float32)]
    outs = [np.ones((5, 7), np.bool_), np.ones(9, np.bool_)]
    got = lowest_k_masks(arrays_, 20, out=outs)
    assert got[0] is outs[0] or np.shares_memory(got[0], outs[0])
    flat = np.concatenate([a.reshape(-1) for a in arrays_])
    np.testing.assert_array_equal(np.concatenate([o.reshape(-1) for o in outs]), naive_lowest_k(flat, 20))
    assert lowest_k_masks(arrays_, 0, out=outs)[1].sum() == 0
    with pytest.raises(ValueError, match="out must hold"):
        lowest_k_masks(arrays_, 3, out=[np.ones((5, 7), np.bool_)])
