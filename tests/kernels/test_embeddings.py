"""Embedding lookups into the features × tokens layout against numpy's gather, bit for bit."""

import numpy as np
import pytest

from sparsecore.kernels.embeddings import BLOCK, embed_tokens_t


@pytest.mark.parametrize("tokens", [0, 1, BLOCK - 1, BLOCK, 2 * BLOCK + 3])
@pytest.mark.parametrize("with_types", [True, False])
def test_equals_numpy_gather_and_transpose(tokens, with_types):
    rng = np.random.default_rng(tokens)
    word, position = rng.standard_normal((50, 24)).astype(np.float32), rng.standard_normal((200, 24)).astype(np.float32)
    token_type = rng.standard_normal((2, 24)).astype(np.float32) if with_types else None
    ids, positions, types = rng.integers(0, 50, tokens), rng.integers(0, 200, tokens), rng.integers(0, 2, tokens)
    out = np.full((24, tokens + 5), 7.0, np.float32)
    embed_tokens_t(word, position, token_type, ids, positions, types, out)
    want = word[ids] + position[positions]
    if with_types:
        want += token_type[types]
    np.testing.assert_array_equal(out[:, :tokens], want.T)
    assert np.all(out[:, tokens:] == 7.0)  # columns past the tokens untouched


def test_indices_outside_a_table_are_one_clear_error():
    word, position = np.zeros((10, 4), np.float32), np.zeros((8, 4), np.float32)
    out = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match="token id 10 is outside the embedding table's 10 rows"):
        embed_tokens_t(word, position, None, [1, 10, 2], [0, 1, 2], [0, 0, 0], out)
    with pytest.raises(ValueError, match="position -1 is outside"):
        embed_tokens_t(word, position, None, [1, 2, 3], [0, -1, 2], [0, 0, 0], out)
    with pytest.raises(ValueError, match="token type 1 is outside the embedding table's 1 rows"):
        embed_tokens_t(word, position, np.zeros((1, 4), np.float32), [1, 2, 3], [0, 1, 2], [0, 1, 0], out)
    with pytest.raises(ValueError, match="one entry per token"):
        embed_tokens_t(word, position, None, [1, 2], [0, 1, 2], [0, 0, 0], out)
    with pytest.raises(ValueError, match=r"out must be a float32 \(4, ≥ 3\)"):
        embed_tokens_t(word, position, None, [1, 2, 3], [0, 1, 2], [0, 0, 0], np.zeros((4, 2), np.float32))
