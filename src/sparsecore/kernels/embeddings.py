"""Embedding lookups written straight into the features × tokens layout (Numba, parallel over token blocks).

``out[:, t] = word[ids[t]] + position[positions[t]] (+ token_type[types[t]])`` for T tokens, in the order
numpy's ``word[ids] + position[positions]`` then ``+= token_type[types]`` adds them (the same bits). Each
thread takes blocks of ``BLOCK`` tokens and walks the features: per feature one contiguous run of ``BLOCK``
outputs, read from ``BLOCK`` table rows that stay in its cache — where a gather into (T, E) followed by a
transposed copy moves every value twice and writes the copy with a stride of T floats.
Tested against numpy in tests/kernels/test_embeddings.py.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from sparsecore.kernels._config import NJIT_PARALLEL

BLOCK = 64  # tokens per task: 64 table rows (192 KB at E = 768) in L2, one 256-byte output run per feature


@nb.njit(**NJIT_PARALLEL)
def _embed(word, position, token_type, ids, positions, types, out):
    tokens = ids.size
    with_types = token_type.shape[0] > 0
    for b in nb.prange((tokens + BLOCK - 1) // BLOCK):
        t0 = b * BLOCK
        t1 = min(tokens, t0 + BLOCK)
        for f in range(word.shape[1]):
            dst = out[f]
            for t in range(t0, t1):
                v = word[ids[t], f] + position[positions[t], f]
                if with_types:
                    v += token_type[types[t], f]
                dst[t] = v


def embed_tokens_t(word: np.ndarray, position: np.ndarray, token_type: np.ndarray | None, ids: np.ndarray,
                   positions: np.ndarray, types: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Write the summed embeddings of ``ids`` (T,) at ``positions`` (T,) with token types ``types`` (T,) into the
    first T columns of ``out`` (E, ≥ T) float32; ``token_type`` None: no token-type table (``types`` unread). An
    index outside its table is a ValueError naming it (numpy would wrap negative ones)."""
    ids, positions, types = (np.ascontiguousarray(a, np.int64).reshape(-1) for a in (ids, positions, types))
    if not ids.size == positions.size == types.size:
        raise ValueError(f"ids, positions and types must have one entry per token, got {ids.size}, {positions.size}, "
                         f"{types.size}")
    if out.ndim != 2 or out.shape[0] != word.shape[1] or out.shape[1] < ids.size or out.dtype != np.float32:
        raise ValueError(f"out must be a float32 ({word.shape[1]}, ≥ {ids.size}) array, got {out.dtype} {out.shape}")
    table = np.zeros((0, word.shape[1]), np.float32) if token_type is None else token_type
    checks = [("token id", ids, word.shape[0]), ("position", positions, position.shape[0])]
    for name, index, rows in checks + ([] if token_type is None else [("token type", types, table.shape[0])]):
        if index.size and (index.min() < 0 or index.max() >= rows):
            bad = index[(index < 0) | (index >= rows)][0]
            raise ValueError(f"{name} {bad} is outside the embedding table's {rows} rows")
    _embed(word, position, table, ids, positions, types, out)
    return out
