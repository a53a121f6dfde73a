"""Fused attention kernel against a naive float64 reference, masks, odd shapes and bad input."""

import platform
import re

import numpy as np
import pytest
from reference import naive_attention_t

from sparsecore.kernels.attention import attention_t

MIN = np.finfo(np.float32).min


@pytest.mark.parametrize("batch, seq, heads, hidden", [(1, 128, 12, 768), (3, 37, 4, 64), (2, 1, 2, 8),
                                                        (1, 19, 3, 36)])  # d = 12: not a multiple of 8
def test_matches_reference(batch, seq, heads, hidden):
    rng = np.random.default_rng(batch * 100 + seq)
    qkv = (rng.standard_normal((3 * hidden, batch * seq)) * 2).astype(np.float32)
    mask = np.zeros((batch, seq), np.float32)
    mask[-1, seq // 2 + 1:] = MIN  # padding in the last sequence
    got = attention_t(qkv, mask, batch, seq, heads)
    want = naive_attention_t(qkv, mask, batch, seq, heads)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-5)


def test_padded_keys_get_exactly_zero_weight():
    rng = np.random.default_rng(1)
    hidden, seq = 16, 10
    qkv = rng.standard_normal((3 * hidden, seq)).astype(np.float32)
    mask = np.zeros((1, seq), np.float32)
    mask[0, 6:] = MIN
    base = attention_t(qkv, mask, 1, seq, 2)
    qkv[2 * hidden:, 6:] = 1e6  # values and keys of padded tokens must not matter at all
    qkv[hidden:2 * hidden, 6:] = -1e3
    np.testing.assert_array_equal(attention_t(qkv, mask, 1, seq, 2)[:, :6], base[:, :6])


def test_out_buffer_and_zero_tokens():
    qkv = np.ones((24, 6), np.float32)
    out = np.empty((8, 6), np.float32)
    assert attention_t(qkv, np.zeros((2, 3), np.float32), 2, 3, 2, out=out) is out
    np.testing.assert_allclose(out, 1.0)
    assert attention_t(np.ones((24, 0), np.float32), np.zeros((0, 0), np.float32), 0, 0, 2).shape == (8, 0)


@pytest.mark.parametrize("qkv, mask, match", [
    (np.ones((25, 4), np.float32), np.zeros((1, 4), np.float32), "qkv must be"),
    (np.ones((24, 4), np.float64), np.zeros((1, 4), np.float32), "qkv must be"),
    (np.ones((24, 5), np.float32), np.zeros((1, 4), np.float32), "qkv must be"),
    (np.ones((24, 4), np.float32), np.zeros((4,), np.float32), r"add_mask must have shape \(1, 4\)"),
])
def test_bad_input(qkv, mask, match):
    with pytest.raises(ValueError, match=match):
        attention_t(qkv, mask, 1, 4, 2)


@pytest.mark.parametrize("batch, seq, heads, hidden", [(1, 64, 4, 128), (2, 19, 3, 36)])
def test_integer_attention_matches_reference(batch, seq, heads, hidden):
    """Integer codes in Q/K/V (as codes_inplace leaves them), the graph's scales; P's codes are compared where
    the reference is not within 1e-3 of a rounding tie (fp32 vs float64 softmax may round those either way)."""
    from reference import naive_int_attention_t

    rng = np.random.default_rng(seq)
    codes = rng.integers(-128, 128, (3 * hidden, batch * seq)).astype(np.float32)
    mask = np.zeros((batch, seq), np.float32)
    mask[-1, seq - 3:] = MIN
    quant = (1e-3, 1 / 255, 0, 2e-3)
    got = attention_t(codes.copy(), mask, batch, seq, heads, quant=quant)
    want, ratios = naive_int_attention_t(codes, mask, batch, seq, heads, quant)
    near_tie = np.abs(ratios - np.floor(ratios) - 0.5) < 1e-3
    if not near_tie.any():
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    else:  # each near-tie code may differ by one unit: |Δctx| ≤ (#ties in the query's row) · max|v| · s_pv
        assert np.abs(got - want).max() <= near_tie.sum() * 128 * quant[3] + 1e-5
    with pytest.raises(ValueError, match="quant"):
        attention_t(codes, mask, batch, seq, heads, quant=(1e-3, 0.0, 0, 1.0))


@pytest.mark.parametrize("lengths, heads", [([5, 0, 17, 1, 33], 3), ([128, 3, 60], 4), ([7], 2)])
@pytest.mark.parametrize("quantized", [False, True])
def test_sequences_of_any_length_side_by_side(lengths, heads, quantized):
    """Packed sequences (no padding) give each sequence's own attention; columns after the last are untouched."""
    from reference import naive_int_attention_t

    from sparsecore.kernels.attention import attention_seq_t

    rng = np.random.default_rng(sum(lengths))
    hidden, tail = 12 * heads, 5
    starts = np.concatenate([[0], np.cumsum(lengths)])
    quant = (1e-3, 1 / 255, 3, 2e-3) if quantized else None
    qkv = rng.integers(-100, 100, (3 * hidden, starts[-1] + tail)).astype(np.float32)
    if not quantized:
        qkv /= 40
    out = np.full((hidden, starts[-1] + tail), 7.0, np.float32)
    attention_seq_t(qkv.copy(), starts, heads, out=out, quant=quant)
    for b, n in enumerate(lengths):
        part = np.ascontiguousarray(qkv[:, starts[b]:starts[b + 1]])
        mask = np.zeros((1, n), np.float32)
        if quantized:
            want, ratios = naive_int_attention_t(part, mask, 1, n, heads, quant)
            tol = 128 * quant[3] * np.sum(np.abs(ratios - np.floor(ratios) - 0.5) < 1e-3) + 1e-5
        else:
            want, tol = naive_attention_t(part, mask, 1, n, heads), 2e-5
        assert np.abs(out[:, starts[b]:starts[b + 1]] - want).max(initial=0) <= tol
    assert (out[:, starts[-1]:] == 7.0).all()
    with pytest.raises(ValueError, match="starts"):
        attention_seq_t(qkv, starts + 1, heads)
    with pytest.raises(ValueError, match="add_mask must have shape"):
        attention_seq_t(qkv, starts, heads, add_mask=np.zeros((len(lengths), 1), np.float32))


@pytest.mark.parametrize("tasks", [1, 2, 3, 8])
def test_schedule_runs_every_item_once_balanced_by_cost(tasks):
    from sparsecore.kernels.attention import _schedule

    rng = np.random.default_rng(tasks)
    lengths = rng.integers(0, 129, 23)
    heads = 3
    order, bounds = _schedule(lengths, heads, tasks)
    assert sorted(order.tolist()) == list(range(23 * heads)) and bounds[0] == 0 and bounds[-1] == 23 * heads
    cost = lengths[order // heads].astype(np.int64) ** 2 + 1
    loads = [cost[bounds[t]:bounds[t + 1]].sum() for t in range(tasks)]
    assert max(loads) <= cost.sum() / tasks + cost.max()  # greedy longest-first bound


def test_quantizing_q_k_v_inside_the_kernel_equals_quantizing_them_first():
    """fp32 Q, K, V with their quantizers: bit for bit the result of codes_inplace on each third, qkv untouched."""
    from sparsecore.kernels.attention import attention_seq_t
    from sparsecore.kernels.quantize import codes_inplace

    rng = np.random.default_rng(3)
    heads, hidden = 4, 48
    starts = np.array([0, 9, 40, 41, 70])
    qkv = rng.standard_normal((3 * hidden, 75)).astype(np.float32)
    qkv[0, :4] = [0.025, -0.075, 0.125, 9.0]  # ties of the query scale (0.05) and a clipped value
    quant, inputs = (1e-3, 1 / 255, 0, 2e-3), ((0.05, 128), (0.04, 120), (0.03, 131))
    codes = qkv.copy()
    for i, (scale, zero) in enumerate(inputs):
        codes_inplace(codes[i * hidden:(i + 1) * hidden], scale, zero)
    before = qkv.copy()
    fused = attention_seq_t(qkv, starts, heads, quant=quant, qkv_quant=inputs)
    np.testing.assert_array_equal(qkv, before)
    np.testing.assert_array_equal(fused[:, :70], attention_seq_t(codes, starts, heads, quant=quant)[:, :70])
    for bad in (((0.05, 128), (0.04, 120)), ((0.05, 300), (0.04, 120), (0.03, 131)), ((0.0, 1), (1, 1), (1, 1))):
        with pytest.raises(ValueError, match="qkv_quant"):
            attention_seq_t(qkv, starts, heads, quant=quant, qkv_quant=bad)
    with pytest.raises(ValueError, match="qkv_quant"):
        attention_seq_t(qkv, starts, heads, qkv_quant=inputs)


@pytest.mark.parametrize("quantized", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_first_only_is_the_first_query_of_the_full_attention(quantized, masked):
    """``first_only``: each sequence's first-token context (column b of out), equal to the full attention's; packed
    sequences of any lengths (an empty one included) and a padded batch under an additive mask."""
    from sparsecore.kernels.attention import attention_seq_t

    rng = np.random.default_rng(9)
    heads, hidden = 3, 36
    lengths = [6, 6, 6] if masked else [5, 1, 0, 40, 17]
    starts = np.concatenate([[0], np.cumsum(lengths)])
    add_mask = None
    if masked:  # left-padded second sequence: its first token (a pad) still gets a context, as in the full pass
        add_mask = np.zeros((3, 6), np.float32)
        add_mask[1, :2] = add_mask[2, 4:] = np.finfo(np.float32).min
    qkv = rng.integers(-100, 100, (3 * hidden, starts[-1])).astype(np.float32)
    kwargs = {"quant": (1e-3, 1 / 255, 3, 2e-3)} if quantized else {}
    if not quantized:
        qkv /= 40
    full = attention_seq_t(qkv, starts, heads, add_mask, **kwargs)
    first = attention_seq_t(qkv, starts, heads, add_mask, first_only=True, **kwargs)
    real = [b for b, n in enumerate(lengths) if n]
    assert first.shape == (hidden, len(lengths))
    np.testing.assert_allclose(first[:, real], full[:, starts[real]], rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match=rf"out must be a float32 \(36, ≥ {len(lengths)}\)"):
        attention_seq_t(qkv, starts, heads, add_mask, out=np.empty((hidden, 2), np.float32), first_only=True, **kwargs)


@pytest.mark.parametrize("path", ["avx512_vnni", "avx_vnni", "avx2"])
@pytest.mark.parametrize("heads,hidden", [(3, 36), (5, 30), (3, 21)])  # head width 12, 6 (not a multiple of 4), 7
@pytest.mark.parametrize("first_only", [False, True])
@pytest.mark.parametrize("kernel", ["vnni tiles", "pair tiles", "float tiles", "integer units"])
def test_integer_units_and_tiles_give_the_float_paths_bits(path, heads, hidden, first_only, kernel, monkeypatch):
    """Quantized attention from fp32 Q, K, V: the products on VNNI register tiles (dwords of four codes, int32 sums),
    on int16-pair register tiles (``vpmaddwd`` on centred codes), on the integer row kernel (codes − 128 as int8, row
    and column sums for the zero points) and on the float tiles (codes as floats, every sum exact) equal the exact
    fp32 sums of the generic path bit for bit — packed sequences of odd lengths (one over 256 tokens), a padded
    batch under a mask, saturated codes, odd head widths."""
    from sparsecore.kernels import attention_pairs, attention_tiles, attention_vnni
    from sparsecore.kernels.attention import attention_seq_t
    from sparsecore.kernels.isa import NEEDS, supported

    if not supported(path):
        pytest.skip(f"this CPU cannot run {path} (needs {', '.join(NEEDS[path])})")
    if kernel == "vnni tiles" and path not in attention_vnni.SHAPES:
        pytest.skip(f"{path} has no VNNI tiles")
    if kernel == "pair tiles" and path not in attention_pairs.SHAPES:
        pytest.skip(f"{path} has no int16-pair tiles")
    if kernel != "vnni tiles":  # the dispatch of a host without VNNI (an AVX-512 one: the avx512 float tiles)
        monkeypatch.setattr(attention_vnni, "SHAPES", {})
    if kernel not in ("vnni tiles", "pair tiles"):
        monkeypatch.setattr(attention_pairs, "SHAPES", {})
    if kernel == "integer units":  # the tiles take sequences up to MAX_EXACT tokens: none here
        monkeypatch.setattr(attention_tiles, "MAX_EXACT", 0)
    rng = np.random.default_rng(hidden + heads)
    quant, inputs = (1e-3, 1 / 255, 7, 2e-3), ((0.05, 128), (0.04, 0), (0.03, 255))
    cases = [(np.array([0, 5, 6, 46, 63, 200, 457]), None),
             (np.arange(4) * 9, np.where(rng.random((3, 9)) < 0.3, np.finfo(np.float32).min, 0).astype(np.float32))]
    for starts, add_mask in cases:
        qkv = (rng.standard_normal((3 * hidden, starts[-1] + 3)) * 4).astype(np.float32)
        qkv[:, 1] = 1e6  # codes saturated at 255 (and at 0 where negative)
        qkv[hidden:, 2] = -1e6
        results = {}
        for run in ("generic", path):
            monkeypatch.setenv("SPARSECORE_ISA", run)
            results[run] = attention_seq_t(qkv, starts, heads, add_mask, out=np.zeros((hidden, starts[-1] + 3),
                                           np.float32), quant=quant, qkv_quant=inputs, first_only=first_only)
        np.testing.assert_array_equal(results[path], results["generic"])
        assert np.abs(results[path]).max() > 0 and np.all(np.isfinite(results[path]))


@pytest.mark.parametrize("lengths, heads, hidden", [([128], 12, 768), ([5, 0, 70, 1, 131], 3, 36), ([9, 64], 2, 14),
                                                    ([6, 11], 3, 15)])  # d = 18, 7 (even), 5 (odd: the loops)
@pytest.mark.parametrize("first_only", [False, True])
def test_register_tile_fp32_attention_equals_the_plain_loops(lengths, heads, hidden, first_only, monkeypatch):
    """The float paths' register-tile attention (attention_tiles) against the plain loops (the generic path) and the
    float64 reference: packed lengths across 64-query blocks, key counts not a multiple of the tile's rows, padded
    keys, first-only queries."""
    from sparsecore.kernels import isa
    from sparsecore.kernels.attention import attention_seq_t

    rng = np.random.default_rng(len(lengths) + hidden)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    qkv = (rng.standard_normal((3 * hidden, starts[-1] + 3)) * 2).astype(np.float32)
    mask = np.zeros((len(lengths), max(lengths)), np.float32)
    mask[-1, lengths[-1] // 2 + 1:] = MIN  # the last sequence's tail is padding
    cols = len(lengths) if first_only else starts[-1] + 3
    blocked = attention_seq_t(qkv, starts, heads, mask, out=np.full((hidden, cols), 7.0, np.float32),
                              first_only=first_only)
    monkeypatch.setenv("SPARSECORE_ISA", "generic")
    assert isa.float_path() == "generic"
    plain = attention_seq_t(qkv, starts, heads, mask, out=np.full((hidden, cols), 7.0, np.float32),
                            first_only=first_only)
    np.testing.assert_allclose(blocked, plain, rtol=1e-5, atol=2e-5)
    for b, n in enumerate(lengths):
        if n == 0:
            continue
        part = np.ascontiguousarray(qkv[:, starts[b]:starts[b + 1]])
        want = naive_attention_t(part, mask[b:b + 1, :n], 1, n, heads)
        got = blocked[:, b:b + 1] if first_only else blocked[:, starts[b]:starts[b + 1]]
        np.testing.assert_allclose(got, want[:, :1] if first_only else want, rtol=1e-5, atol=2e-5)
    if not first_only:
        assert (blocked[:, starts[-1]:] == 7.0).all()


@pytest.mark.parametrize("isa_path", [None, "avx2", "generic"])
@pytest.mark.parametrize("tb", [32, 64, 128])
@pytest.mark.parametrize("first_only", [False, True])
def test_token_blocked_qkv_is_read_as_the_rows_it_stands_for(isa_path, tb, first_only, monkeypatch):
    """qkv token-blocked ``(blocks, 3H, TB)`` (a QKV Linear's ``blocked_out``) gives the bits of the ``(3H, T)`` rows:
    read as it lies on VNNI hosts (runs of tokens split where they cross a block), laid out first elsewhere; packed
    sequences of odd lengths, fp32 and quantized, into rows and token-blocked outputs."""
    from sparsecore.kernels import isa
    from sparsecore.kernels.attention import attention_seq_t

    if isa_path is not None:
        if not isa.supported(isa_path):
            pytest.skip(f"this CPU cannot run {isa_path}")
        monkeypatch.setenv("SPARSECORE_ISA", isa_path)
    rng = np.random.default_rng(tb)
    hidden, heads, tokens = 48, 4, 220
    starts = np.array([0, 70, 71, 150, 213])
    qkv = (rng.standard_normal((3 * hidden, tokens)) * 3).astype(np.float32)
    blocks = -(-tokens // tb)
    padded = np.full((3 * hidden, blocks * tb), 1e9, np.float32)  # padding tokens: never read
    padded[:, :tokens] = qkv
    qkv3 = np.ascontiguousarray(padded.reshape(3 * hidden, blocks, tb).transpose(1, 0, 2))
    real = len(starts) - 1 if first_only else starts[-1]
    for quant in ({}, {"quant": (1e-3, 1 / 255, 7, 2e-3), "qkv_quant": ((0.05, 128), (0.04, 0), (0.03, 255))}):
        want = attention_seq_t(qkv, starts, heads, first_only=first_only, **quant)[:, :real]
        got = attention_seq_t(qkv3, starts, heads, first_only=first_only, tokens=tokens, **quant)
        assert got.shape == (hidden, len(starts) - 1 if first_only else tokens)
        np.testing.assert_array_equal(got[:, :real], want)
        buffer = np.zeros((-(-got.shape[1] // 64), hidden, 64), np.uint8)
        codes = attention_seq_t(qkv3, starts, heads, first_only=first_only, tokens=tokens, blocked_out=buffer,
                                out_codes=(0.01, 110), **quant)
        rows = attention_seq_t(qkv, starts, heads, first_only=first_only, blocked_out=np.zeros_like(buffer),
                               out_codes=(0.01, 110), **quant)
        np.testing.assert_array_equal(codes, rows)
    with pytest.raises(ValueError, match=r"qkv must be a C-contiguous float32 \(3H, T\) or \(blocks, 3H, TB\)"):
        attention_seq_t(qkv3, starts, heads, tokens=blocks * tb + 1)
    with pytest.raises(ValueError, match="qkv must be"):
        attention_seq_t(qkv, starts, heads, tokens=tokens - 1)


def _expected_blocks(ctx: np.ndarray, real: int, tb: int, pad) -> np.ndarray:
    """``ctx (H, C)`` token-blocked by ``tb`` with every token from ``real`` on set to ``pad``."""
    k, c = ctx.shape
    padded = np.full((k, -(-c // tb) * tb), pad, ctx.dtype)
    padded[:, :real] = ctx[:, :real]
    return np.ascontiguousarray(padded.reshape(k, -1, tb).transpose(1, 0, 2))


@pytest.mark.parametrize("isa_path", [None, "generic"])  # the avx2 code writer: tests/kernels/test_epilogue.py
@pytest.mark.parametrize("quantized", [False, True])
@pytest.mark.parametrize("first_only", [False, True])
@pytest.mark.parametrize("tb", [64, 32])
def test_blocked_output_is_the_context_laid_out_for_the_next_linear(isa_path, quantized, first_only, tb, monkeypatch):
    """``blocked_out``: the context token-blocked (fp32) or as the next Linear's uint8 codes (``out_codes``) — the bits
    of laying out / quantizing the plain output, runs of tokens split across blocks (packed sequences of odd lengths),
    tokens past the real ones 0 or the zero point; the tile kernel (host path) and the plain loops (generic)."""
    from sparsecore.kernels import isa
    from sparsecore.kernels.attention import attention_seq_t
    from sparsecore.kernels.quantize import quantize_u8_blocked

    if isa_path is not None:
        if not isa.float_supported(isa.FLOAT_PATHS[0] if isa_path == "generic" else isa_path):
            pytest.skip(f"this CPU cannot run {isa_path}")
        monkeypatch.setenv("SPARSECORE_ISA", isa_path)
    rng = np.random.default_rng(tb + quantized)
    hidden, heads = 48, 4
    starts = np.array([0, 70, 71, 150, 213])
    qkv = (rng.standard_normal((3 * hidden, 220)) * 2).astype(np.float32)
    quant = {"quant": (1e-3, 1 / 255, 7, 2e-3), "qkv_quant": ((0.05, 128), (0.04, 100), (0.03, 90))} if quantized else {}
    plain = attention_seq_t(qkv, starts, heads, first_only=first_only, **quant)
    real = 4 if first_only else 213
    columns = plain.shape[1]
    if quantized:
        codes = np.full((-(-columns // tb), hidden, tb), 9, np.uint8)
        got = attention_seq_t(qkv, starts, heads, first_only=first_only, blocked_out=codes, out_codes=(0.01, 110),
                              **quant)
        assert got is codes
        want = _expected_blocks(quantize_u8_blocked(np.ascontiguousarray(plain), 0.01, 110, columns)[0], real, tb,
                                110)
        assert len(np.unique(codes)) > 5  # real codes, not one saturated value
    else:
        buffer = np.full((-(-columns // tb), hidden, tb), np.nan, np.float32)
        got = attention_seq_t(qkv, starts, heads, first_only=first_only, blocked_out=buffer, **quant)
        want = _expected_blocks(plain, real, tb, 0.0)
    np.testing.assert_array_equal(got, want)


def test_blocked_output_bad_buffers():
    from sparsecore.kernels.attention import attention_seq_t

    qkv = np.ones((3 * 8, 10), np.float32)
    starts = np.array([0, 10])
    for bad, codes in ((np.empty((1, 8, 64), np.uint8), None), (np.empty((1, 8, 64), np.float32), (0.1, 3)),
                       (np.empty((2, 8, 64), np.float32), None), (np.empty((1, 7, 64), np.float32), None)):
        with pytest.raises(ValueError, match="blocked_out must be"):
            attention_seq_t(qkv, starts, 2, blocked_out=bad, out_codes=codes)
    with pytest.raises(ValueError, match="out_codes needs blocked_out"):
        attention_seq_t(qkv, starts, 2, out_codes=(0.1, 3))


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86 machine code")
@pytest.mark.parametrize("path,cpu,register", [("avx512", "icelake-server", "zmm"), ("avx512", "znver4", "zmm"),
                                               ("avx2", "haswell", "ymm"), ("avx2", "znver3", "ymm")])
def test_tile_machine_code_keeps_its_sums_in_registers(path, cpu, register):
    from sparsecore.kernels.attention_tiles import SHAPES, tile_assembly

    code = tile_assembly(path, cpu)
    _, vectors, rows = SHAPES[path]
    assert code.count("vfmadd231ps\t") + code.count("vfmadd213ps\t") >= rows * vectors
    assert f"%{register}" in code
    assert not re.search(r"%[xyz]mm\d+, -?\d*\(%rsp\)", code)  # no spills


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86 machine code")
@pytest.mark.parametrize("path,cpu,register", [("avx512_vnni", "icelake-server", "zmm"),
                                               ("avx512_vnni", "znver4", "zmm"), ("avx_vnni", "alderlake", "ymm")])
def test_vnni_tile_machine_code_keeps_its_sums_in_registers(path, cpu, register):
    """The VNNI attention tile compiled for a CPU with the feature (whatever this host is): one vpdpbusd per vector
    and row, its R × 64 sums held in registers."""
    from sparsecore.kernels.attention_vnni import SHAPES, tile_assembly

    code = tile_assembly(path, cpu).replace("{vex}", "")
    _, vectors, rows = SHAPES[path]
    assert len(re.findall(rf"vpdpbusd\t[^\n]*%{register}", code)) >= rows * vectors
    assert not re.search(r"vfmadd", code)
    assert not re.search(r"%[xyz]mm\d+, -?\d*\(%rsp\)", code)  # no spills


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86 machine code")
@pytest.mark.parametrize("cpu", ["haswell", "znver3"])
def test_pair_tile_machine_code_keeps_its_sums_in_registers(cpu):
    """The int16-pair attention tile compiled for AVX2 CPUs: one vpmaddwd per vector and row and no float product,
    its R × 32 sums held in ymm registers."""
    from sparsecore.kernels.attention_pairs import SHAPES, tile_assembly

    code = tile_assembly("avx2", cpu)
    _, vectors, rows = SHAPES["avx2"]
    assert len(re.findall(r"vpmaddwd\t[^\n]*%ymm", code)) >= rows * vectors
    assert len(re.findall(r"vpaddd\t[^\n]*%ymm", code)) >= rows * vectors
    assert not re.search(r"vfmadd", code)
    assert not re.search(r"%[xyz]mm\d+, -?\d*\(%rsp\)", code)  # no spills
