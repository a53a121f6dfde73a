"""Which tokens a forward pass of :class:`~sparsecore.deploy.sparse_engine.SparseEncoder` runs, and the shapes of
its activation buffers: the padding dropped from a batch, the row stride of the buffers, whole token blocks for the
token-blocked kernels, and the layout of the FFN's inner activations between its two Linears."""

from __future__ import annotations

import numpy as np

from sparsecore.deploy.linears import QLinearT


def token_layout(mask: np.ndarray) -> tuple[np.ndarray, tuple | None, np.ndarray | None]:
    """Which tokens the forward pass runs: ``(starts, keep, add_mask)``.

    When every sequence's first token is real and the mask holds only 0 and 1, the padding is dropped: the real
    tokens of each sequence run side by side (sequence b in columns ``starts[b]:starts[b+1]``, ``keep`` their
    (row, column) indices, no additive mask). This gives the padded graph's logits exactly: a padded key's
    softmax weight is exactly 0 and a padded query feeds nothing the head reads. Otherwise (left padding, an
    empty sequence, a fractional mask) every position runs with Hugging Face's additive mask."""
    batch, seq = mask.shape
    real = mask != 0
    if batch and real[:, 0].all() and np.array_equal(mask, real):
        lengths = real.sum(axis=1)
        starts = np.zeros(batch + 1, np.int64)
        np.cumsum(lengths, out=starts[1:])
        return starts, (None if starts[-1] == batch * seq else np.nonzero(real)), None
    add_mask = (1.0 - mask.astype(np.float32)) * np.finfo(np.float32).min  # HF's additive mask
    return np.arange(batch + 1, dtype=np.int64) * seq, None, add_mask


def ffn_blocks(inner, outer, tokens: int) -> tuple[int, ...] | None:
    """The shape of the FFN's inner activations when the intermediate Linear can write them in the layout the output
    Linear reads: token-blocked (both on token-blocked kernels: fp32 row kernels, or int8 quads / 1×4 blocks on one
    path and block width), or — int8 Linears on one path, the output Linear on the interleaved 1×4-block layout —
    uint8 codes interleaved by four features, ``(blocks, N/4, TB, 4)``; else None."""
    from sparsecore.kernels import fp32_rows

    if isinstance(inner, QLinearT) or isinstance(outer, QLinearT):
        if not (isinstance(inner, QLinearT) and isinstance(outer, QLinearT) and inner._path == outer._path
                and inner.writes_blocked and outer.writes_blocked):
            return None  # int8 kernels on one path both sides (fp32 row kernels take any pair of their formats)
        n, tb = inner.bias.size, inner.tokens_per_block
        blocks = -(-tokens // tb)
        want = (blocks, n, tb) if outer.token_blocked else (blocks, n // 4, tb, 4)
        if outer.input_shape(tokens) != want or (not outer.token_blocked and n % 4):
            return None  # the output Linear reads another token block width
        return want
    if not (inner.token_blocked and outer.token_blocked):
        return None
    return fp32_rows.activation_shape(inner.bias.size, tokens)


def padded(tokens: int, buffer: str = "inter") -> int:
    """``tokens`` rounded up to whole blocks of the token-blocked kernels that write ``buffer``: the FFN's inner
    activations (fp32 row kernels, int8 quads), or Q, K, V (int8 1×4 blocks and quads, the widest blocks)."""
    from sparsecore.kernels import fp32_rows, int8_block4

    block = max(int8_block4.TOKENS.values()) if buffer == "qkv" else fp32_rows.TOKENS
    return -(-tokens // block) * block


def row_stride(tokens: int) -> int:
    """Columns of the activation buffers for ``tokens`` tokens: from 512 tokens on, a multiple of 16 (one
    64-byte line of fp32) with an odd line count, so the rows of a buffer (the Linears read one strip of many
    rows at once) spread over every cache set instead of piling onto the few a power-of-two stride reaches."""
    if tokens < 512:
        return tokens
    lines = -(-tokens // 16)
    return 16 * (lines + 1 - lines % 2)
