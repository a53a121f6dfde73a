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
        ln._add_layer_norm_t(isa.marker(path), x, r, True, gamma, beta, 1e-12, out, threads, 32)
        return out

    got = run(path, x, r, threads)
    np.testing.assert_array_equal(got, run("generic", x, r, 1))
    for t in (0, 63, 64, 79, 80, 90):
        alone = run(path, np.ascontiguousarray(x[:, t:t + 1]), np.ascontiguousarray(r[:, t:t + 1]), 1)
        np.testing.assert_array_equal(got[:, t:t + 1], alone)
    assert nb.get_num_threads() >= 1


def test_long_inputs_split_over_threads_like_one_thread():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 1000)).astype(np.float32)
    gamma, beta = np.ones(64, np.float32), np.zeros(64, np.float32)
    outs = []
    for threads in (1, 2):
        out = np.empty_like(x)
        ln._add_layer_norm_t(isa.marker(isa.float_path()), x, x, False, gamma, beta, 1e-5, out, threads, ln.SPAN)
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
