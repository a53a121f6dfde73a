"""Naive references the kernels are tested against (slow, obviously correct)."""

import numpy as np


def naive_lowest_k(values: np.ndarray, k: int) -> np.ndarray:
    """The k smallest by a stable sort: ties → lowest index, NaN last (NumPy's order); -0.0 == 0.0."""
    flat = np.asarray(values, dtype=np.float32).reshape(-1) + np.float32(0.0)
    chosen = np.zeros(flat.size, dtype=bool)
    chosen[np.argsort(flat, kind="stable")[:k]] = True
    return chosen.reshape(np.shape(values))
