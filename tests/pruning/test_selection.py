import numpy as np
import pytest
import torch

from sparsecore.pruning.schedule import exact_k, interpolate, sparsity_at
from sparsecore.pruning.select import select_lowest, select_lowest_global


def naive_lowest(scores: np.ndarray, k: int) -> np.ndarray:
    """Reference: stable argsort, NaN last (numpy's order)."""
    chosen = np.zeros(scores.size, dtype=bool)
    chosen[np.argsort(scores, kind="stable")[:k]] = True
    return chosen


@pytest.mark.parametrize("n", [1, 2, 7, 64, 1001])
def test_matches_reference_for_all_k_edges(n):
    rng = np.random.default_rng(n)
    scores = rng.integers(0, 5, n).astype(np.float32)  # many ties
    for k in sorted({0, 1, n - 1, n, n // 2}):
        got = select_lowest(torch.from_numpy(scores), k).numpy()
        assert got.sum() == k
        np.testing.assert_array_equal(got, naive_lowest(scores, k))


def test_constant_weights_prune_exactly_k_lowest_indices_first():
    scores = torch.ones(10)
    chosen = select_lowest(scores, 3)
    assert chosen.sum() == 3 and chosen[:3].all() and not chosen[3:].any()


def test_nan_is_pruned_last_and_k_bounds():
    scores = torch.tensor([float("nan"), 0.0, float("inf"), -1.0])
    assert select_lowest(scores, 3).tolist() == [False, True, True, True]
    with pytest.raises(ValueError):
        select_lowest(scores, 5)


def test_global_ties_break_by_layer_then_index():
    a, b = torch.zeros(3), torch.zeros(2)
    ca, cb = select_lowest_global([a, b], 4)
    assert ca.tolist() == [True, True, True] and cb.tolist() == [True, False]


def test_exact_k_rounds_half_up():
    assert exact_k(0.5, 5) == 3 and exact_k(0.25, 10) == 3 and exact_k(0.8, 100) == 80
    assert exact_k(0.0, 7) == 0 and exact_k(1.0, 7) == 7


def test_schedules():
    assert interpolate(0.5, "linear") == 0.5
    assert interpolate(0.5, "cubic") == pytest.approx(0.875)
    assert interpolate(0.5, "inverse_cubic") == pytest.approx(1 - 0.5 ** (1 / 3))
    assert sparsity_at(0.0, 1.0, 3.0, 0.1, 0.9, "cubic") == 0.1
    assert sparsity_at(2.0, 1.0, 3.0, 0.0, 0.8, "linear") == pytest.approx(0.4)
    assert sparsity_at(3.0, 1.0, 3.0, 0.0, 0.8, "cubic") == 0.8
    values = [sparsity_at(e / 10, 0, 1, 0, 0.9, "cubic") for e in range(11)]
    assert values == sorted(values)
