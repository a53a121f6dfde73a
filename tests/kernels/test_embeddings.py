"""Embedding lookups into the features × tokens layout against numpy's gather, bit for bit."""

import numpy as np
import pytest

from sparsecore.kernels.embeddings import BLOCK, CodeTable, embed_tokens_t


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


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
@pytest.mark.parametrize("per_feature", [False, True])
@pytest.mark.parametrize("tokens", [0, 1, BLOCK + 5])
def test_a_code_table_reads_the_bits_of_its_dequantized_table(dtype, per_feature, tokens):
    """Rows dequantized as they are read equal a gather from the table numpy dequantizes first, bit for bit: int8 and
    uint8 codes at both ends of their range, a per-tensor or per-feature zero point and scale."""
    rng = np.random.default_rng(tokens)
    info = np.iinfo(dtype)
    codes = rng.integers(info.min, info.max + 1, (40, 24)).astype(dtype)
    codes[0], codes[1] = info.min, info.max
    zero = rng.integers(-3, 4, 24) if per_feature else 2
    scale = rng.uniform(1e-3, 0.05, 24).astype(np.float32) if per_feature else np.float32(0.0173)
    table = CodeTable.of(codes, zero, scale)
    dense = (codes.astype(np.float32) - np.asarray(zero, np.float32)) * scale
    np.testing.assert_array_equal(table.dense(), dense)
    position, token_type = rng.standard_normal((200, 24), np.float32), rng.standard_normal((2, 24), np.float32)
    ids = np.concatenate([[0, 1], rng.integers(0, 40, max(tokens - 2, 0))])[:tokens]
    positions, types = rng.integers(0, 200, tokens), rng.integers(0, 2, tokens)
    got = embed_tokens_t(table, position, token_type, ids, positions, types, np.zeros((24, tokens), np.float32))
    want = embed_tokens_t(dense, position, token_type, ids, positions, types, np.zeros((24, tokens), np.float32))
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got, (dense[ids] + position[positions] + token_type[types]).T)
    with pytest.raises(ValueError, match="token id 40 is outside the embedding table's 40 rows"):
        embed_tokens_t(table, position, None, [40], [0], [0], np.zeros((24, 1), np.float32))
