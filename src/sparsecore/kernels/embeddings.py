"""Embedding lookups written straight into the features × tokens layout (Numba, parallel over token blocks).

``out[:, t] = word[ids[t]] + position[positions[t]] (+ token_type[types[t]])`` for T tokens, in the order
numpy's ``word[ids] + position[positions]`` then ``+= token_type[types]`` adds them (the same bits). Each
thread takes blocks of ``BLOCK`` tokens and walks the features: per feature one contiguous run of ``BLOCK``
outputs, read from ``BLOCK`` table rows that stay in its cache — where a gather into (T, E) followed by a
transposed copy moves every value twice and writes the copy with a stride of T floats.

The word table may be a :class:`CodeTable` (an int8 export's codes with their zero point and scale): each row is
dequantized as it is read, ``(float32(code) − zero) · scale`` in fp32, bit for bit ``CodeTable.dense()[ids]``, and
the table stays at one byte per value.
Tested against numpy in tests/kernels/test_embeddings.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from sparsecore.kernels._config import NJIT_PARALLEL

BLOCK = 64  # tokens per task: 64 table rows (192 KB of fp32 at E = 768) in L2, one 256-byte output run per feature


@dataclass(frozen=True)
class CodeTable:
    """An embedding table kept as its integer codes: row ``i`` is ``(codes[i] − zero) · scale`` in fp32.
    ``codes``: (V, E) int8 or uint8; ``zero``, ``scale``: (E,) float32 (a per-tensor value repeated); each its own
    copy (not a view into the file it was read from)."""

    codes: np.ndarray
    zero: np.ndarray
    scale: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.codes.shape

    @classmethod
    def of(cls, codes: np.ndarray, zero, scale) -> CodeTable:
        """From an export's codes and its per-tensor or per-feature zero point and scale (all copied)."""
        width = codes.shape[1]
        return cls(np.array(codes, order="C"), *(np.array(np.broadcast_to(np.asarray(v, np.float32), (width,)))
                                                 for v in (zero, scale)))

    def dense(self) -> np.ndarray:
        """The whole fp32 table (for tests and callers that need it)."""
        table = self.codes.astype(np.float32)
        np.subtract(table, self.zero, out=table)
        np.multiply(table, self.scale, out=table)
        return table


@nb.njit(**NJIT_PARALLEL)
def _embed(codes, zero, scale, position, token_type, ids, positions, types, out):
    tokens = ids.size
    with_types = token_type.shape[0] > 0
    for b in nb.prange((tokens + BLOCK - 1) // BLOCK):
        t0 = b * BLOCK
        t1 = min(tokens, t0 + BLOCK)
        for f in range(codes.shape[1]):
            dst = out[f]
            z, s = zero[f], scale[f]
            for t in range(t0, t1):
                w = (np.float32(codes[ids[t], f]) - z) * s
                v = w + position[positions[t], f]
                if with_types:
                    v += token_type[types[t], f]
                dst[t] = v


def embed_tokens_t(word: np.ndarray | CodeTable, position: np.ndarray, token_type: np.ndarray | None, ids: np.ndarray,
                   positions: np.ndarray, types: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Write the summed embeddings of ``ids`` (T,) at ``positions`` (T,) with token types ``types`` (T,) into the
    first T columns of ``out`` (E, ≥ T) float32; ``word``: an fp32 (V, E) table or a :class:`CodeTable`;
    ``token_type`` None: no token-type table (``types`` unread). An
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
    if not isinstance(word, CodeTable):  # (w − 0) · 1 is w, bit for bit: one kernel reads both kinds of table
        word = CodeTable(word, np.zeros(word.shape[1], np.float32), np.ones(word.shape[1], np.float32))
    _embed(word.codes, word.zero, word.scale, position, table, ids, positions, types, out)
    return out
