"""Residual-add + LayerNorm kernel against a naive float64 reference, the same bits on every path and at every token
position, and the machine code of the 512-bit and 256-bit paths for CPUs this host may not be."""

import platform
import re

import numba as nb
import numpy as np
import pytest
from reference import naive_layer_norm_t

from sparsecore.kernels import isa
from sparsecore.kernels import layer_norm as ln
from sparsecore.kernels.layer_norm import add_layer_norm_t, chunk_assembly
from sparsecore.kernels.quantize import quantize_u8_blocked, quantize_u8_interleave4

_NO_CODES = (None, np.float32(1.0), np.float32(0.0))


@pytest.mark.parametrize("hidden, tokens", [(768, 128), (64, 130), (8, 1), (5, 3), (768, 600), (32, 79)])
@pytest.mark.parametrize("residual", [False, True])
def test_matches_reference(hidden, tokens, residual):
    rng = np.random.default_rng(hidden + tokens)
    x = (rng.standard_normal((hidden, tokens)) * 4 + 3).astype(np.float32)
    r = rng.standard_normal((hidden, tokens)).astype(np.float32) if residual else None
    gamma, beta = rng.standard_normal(hidden).astype(np.float32), rng.standard_normal(hidden).astype(np.float32)
    want = naive_layer_norm_t(x + (0 if r is None else r), gamma, beta, 1e-12)
    np.testing.assert_allclose(add_layer_norm_t(x, gamma, beta, 1e-12, residual=r), want, rtol=1e-5, atol=2e-5)
    add_layer_norm_t(x, gamma, beta, 1e-12, residual=r, out=x)  # in place
    np.testing.assert_allclose(x, want, rtol=1e-5, atol=2e-5)


def test_constant_token_gives_beta():
    x = np.full((16, 3), 7.0, np.float32)
    beta = np.arange(16, dtype=np.float32)
    np.testing.assert_array_equal(add_layer_norm_t(x, np.ones(16, np.float32), beta, 1e-5), np.repeat(beta[:, None], 3, 1))


@pytest.mark.parametrize("kwargs, match", [
    ({"residual": np.ones((4, 2), np.float32)}, "residual must be"),
    ({"out": np.ones((3, 4), np.float32)}, "out must be"),
    ({"out": np.ones((3, 3), np.float64)}, "out must be"),
    ({"gamma": np.ones(4, np.float32)}, "gamma and beta"),
])
def test_bad_input(kwargs, match):
    args = {"x": np.ones((3, 3), np.float32), "gamma": np.ones(3, np.float32), "beta": np.zeros(3, np.float32),
            "eps": 1e-5, **kwargs}
    with pytest.raises(ValueError, match=match):
        add_layer_norm_t(**args)


PATHS = [pytest.param(p, marks=pytest.mark.skipif(not isa.float_supported(p), reason=f"this CPU cannot run {p}"))
         for p in isa.FLOAT_PATHS]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("threads", [1, 2])
def test_every_path_and_position_gives_the_same_bits(path, threads):
    """Tokens in full chunks, in single vectors and one at a time (T = 64 + 16 + 8 + 3) all get the bits a token gets
    alone, and each path the generic path's bits (a token's sums run over the features in the same order)."""
    rng = np.random.default_rng(7)
    hidden, tokens = 96, 91
    x = (rng.standard_normal((hidden, tokens)) * 5 + 2).astype(np.float32)
    r = rng.standard_normal((hidden, tokens)).astype(np.float32)
    gamma, beta = rng.standard_normal(hidden).astype(np.float32), rng.standard_normal(hidden).astype(np.float32)

    def run(path, x, r, threads):
        out = np.empty_like(x)
        ln._add_layer_norm_t(isa.marker(path), x, r, True, gamma, beta, 1e-12, out, threads, 32, *_NO_CODES)
        return out

    got = run(path, x, r, threads)
    np.testing.assert_array_equal(got, run("generic", x, r, 1))
    for t in (0, 63, 64, 79, 80, 90):
        alone = run(path, np.ascontiguousarray(x[:, t:t + 1]), np.ascontiguousarray(r[:, t:t + 1]), 1)
        np.testing.assert_array_equal(got[:, t:t + 1], alone)
    assert nb.get_num_threads() >= 1


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("tb, tokens, threads", [(64, 128, 1), (64, 91, 2), (32, 77, 2), (16, 5, 1), (64, 600, 2)])
@pytest.mark.parametrize("interleaved", [False, True], ids=["token-blocked", "interleaved"])
def test_codes_are_quantize_u8_blocked_of_the_output(path, tb, tokens, threads, interleaved):
    """The fused codes: the bits of quantizing the LayerNorm output token-blocked (or interleaved by four features),
    at every path, token position (full chunks, single vectors, one at a time) and thread split; the fp32 output
    unchanged; padding tokens get the zero point; saturation at both ends and exact ties round half to even."""
    rng = np.random.default_rng(tb + tokens)
    hidden, scale, zero = 96, 0.0625, 120
    x = (rng.standard_normal((hidden, tokens)) * 4).astype(np.float32)
    r = rng.standard_normal((hidden, tokens)).astype(np.float32)
    gamma, beta = (rng.standard_normal(hidden) * 3).astype(np.float32), rng.standard_normal(hidden).astype(np.float32)
    beta[:3] = (60.0, -60.0, 0.0)  # saturated codes
    beta[3] = 2.5 * scale  # near a tie (exact ties below)
    plain, fused = np.empty_like(x), np.empty_like(x)
    blocks = -(-tokens // tb)
    codes = np.full((blocks, hidden // 4, tb, 4) if interleaved else (blocks, hidden, tb), 7, np.uint8)
    ln._add_layer_norm_t(isa.marker(path), x, r, True, gamma, beta, 1e-12, plain, threads, 32, *_NO_CODES)
    ln._add_layer_norm_t(isa.marker(path), x, r, True, gamma, beta, 1e-12, fused, threads, 32, codes,
                         np.float32(scale), np.float32(zero))
    np.testing.assert_array_equal(fused, plain)
    if interleaved:
        np.testing.assert_array_equal(codes, quantize_u8_interleave4(plain, scale, zero, tb))
        assert (codes[-1, :, tokens - (blocks - 1) * tb:] == zero).all()
    else:
        np.testing.assert_array_equal(codes, quantize_u8_blocked(plain, scale, zero, tb))
        assert (codes[-1, :, tokens - (blocks - 1) * tb:] == zero).all()
    assert {0, 255} <= set(np.unique(codes).tolist())
    # exact ties: gamma 0 makes every output its beta, k + 0.5 steps of the scale
    ties = np.zeros_like(gamma)
    beta_ties = ((np.arange(hidden) % 8) - 4 + 0.5).astype(np.float32) * np.float32(scale)
    ln._add_layer_norm_t(isa.marker(path), x, r, True, ties, beta_ties, 1e-12, fused, threads, 32, codes,
                         np.float32(scale), np.float32(zero))
    expected = np.rint(beta_ties / np.float32(scale)).astype(np.int64) + zero  # numpy rint: half to even
    first_token = codes[0, :, 0].reshape(-1)  # feature order either way
    np.testing.assert_array_equal(first_token, expected.astype(np.uint8))


def test_codes_through_the_public_call_and_bad_buffers():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((48, 70)).astype(np.float32)
    gamma, beta = np.ones(48, np.float32), np.zeros(48, np.float32)
    codes = np.empty((2, 48, 64), np.uint8)
    out = add_layer_norm_t(x, gamma, beta, 1e-5, codes=(0.02, 3, codes))
    np.testing.assert_array_equal(out, add_layer_norm_t(x, gamma, beta, 1e-5))
    np.testing.assert_array_equal(codes, quantize_u8_blocked(out, 0.02, 3, 64))
    four = np.empty((2, 12, 64, 4), np.uint8)
    add_layer_norm_t(x, gamma, beta, 1e-5, codes=(0.02, 3, four))
    np.testing.assert_array_equal(four, quantize_u8_interleave4(out, 0.02, 3, 64))
    for bad in (np.empty((1, 48, 64), np.uint8), np.empty((2, 48, 64), np.int8), np.empty((3, 48, 24), np.uint8),
                np.empty((2, 12, 64, 2), np.uint8), np.empty((2, 13, 64, 4), np.uint8)):
        with pytest.raises(ValueError, match="codes buffer must be"):
            add_layer_norm_t(x, gamma, beta, 1e-5, codes=(0.02, 3, bad))
    odd = rng.standard_normal((46, 70)).astype(np.float32)  # features not a multiple of 4: token-blocked codes only
    with pytest.raises(ValueError, match=r"codes buffer must be .*\(ceil\(70/TB\), 46, TB\)"):
        add_layer_norm_t(odd, np.ones(46, np.float32), np.zeros(46, np.float32), 1e-5,
                         codes=(0.02, 3, np.empty((2, 12, 64, 4), np.uint8)))
    with pytest.raises(ValueError, match="zero_point 300"):
        add_layer_norm_t(x, gamma, beta, 1e-5, codes=(0.02, 300, codes))


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("tokens, threads", [(128, 1), (91, 2), (5, 1), (600, 2), (64, 2)])
def test_blocked_copy_is_token_blocks_of_the_output(path, tokens, threads):
    """The fused float copy: :func:`token_blocks` of the LayerNorm output bit for bit, at every path, token position
    (full chunks, single vectors, one at a time) and thread split; the (H, T) output unchanged; padding tokens 0
    whatever the buffer held."""
    from sparsecore.kernels.fp32_rows import TOKENS, token_blocks

    rng = np.random.default_rng(tokens)
    hidden = 80
    x = (rng.standard_normal((hidden, tokens)) * 4).astype(np.float32)
    r = rng.standard_normal((hidden, tokens)).astype(np.float32)
    gamma, beta = (rng.standard_normal(hidden) * 3).astype(np.float32), rng.standard_normal(hidden).astype(np.float32)
    plain, fused = np.empty_like(x), np.empty_like(x)
    copy = np.full((-(-tokens // TOKENS), hidden, TOKENS), np.nan, np.float32)
    ln._add_layer_norm_t(isa.marker(path), x, r, True, gamma, beta, 1e-12, plain, threads, 32, *_NO_CODES)
    ln._add_layer_norm_t(isa.marker(path), x, r, True, gamma, beta, 1e-12, fused, threads, 32, copy,
                         np.float32(1.0), np.float32(0.0))
    np.testing.assert_array_equal(fused, plain)
    np.testing.assert_array_equal(copy, token_blocks(plain))


def test_blocked_copy_through_the_public_call_and_bad_buffers():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((48, 70)).astype(np.float32)
    gamma, beta = np.ones(48, np.float32), np.zeros(48, np.float32)
    copy = np.empty((2, 48, 64), np.float32)
    out = add_layer_norm_t(x.copy(), gamma, beta, 1e-5, blocked=copy)
    np.testing.assert_array_equal(out, add_layer_norm_t(x, gamma, beta, 1e-5))
    np.testing.assert_array_equal(copy[0], out[:, :64])
    np.testing.assert_array_equal(copy[1, :, :6], out[:, 64:])
    assert not copy[1, :, 6:].any()
    for bad in (np.empty((1, 48, 64), np.float32), np.empty((2, 48, 64), np.float64), np.empty((3, 48, 24), np.float32)):
        with pytest.raises(ValueError, match="blocked buffer must be"):
            add_layer_norm_t(x, gamma, beta, 1e-5, blocked=bad)
    with pytest.raises(ValueError, match="codes or blocked, not both"):
        add_layer_norm_t(x, gamma, beta, 1e-5, codes=(0.02, 3, np.empty((2, 48, 64), np.uint8)), blocked=copy)


def test_long_inputs_split_over_threads_like_one_thread():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 1000)).astype(np.float32)
    gamma, beta = np.ones(64, np.float32), np.zeros(64, np.float32)
    outs = []
    for threads in (1, 2):
        out = np.empty_like(x)
        ln._add_layer_norm_t(isa.marker(isa.float_path()), x, x, False, gamma, beta, 1e-5, out, threads, ln.SPAN,
                             *_NO_CODES)
        outs.append(out)
    np.testing.assert_array_equal(*outs)


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86 machine code")
@pytest.mark.parametrize("cpu,path,register", [("icelake-server", "avx512", "zmm"), ("znver4", "avx512", "zmm"),
                                               ("haswell", "avx2", "ymm")])
def test_machine_code_keeps_the_chunk_in_registers(cpu, path, register):
    code = chunk_assembly(*ln.SHAPES[path], cpu)
    assert f"vfmadd231ps\t%{register}" in code or f"vfmadd213ps\t%{register}" in code
    assert f"vsqrtps\t%{register}" in code
    assert not re.search(r"%[xyz]mm\d+, -?\d*\(%rsp\)", code)  # no spills: the chunk's sums stay in registers
