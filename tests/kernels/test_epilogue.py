"""The Linears' vector epilogue: every path the host runs gives the one-element path's bits (int32 and fp32 sums, with
and without GELU, rows that end mid-vector), GELU stays within the erf approximation's error of float64, and the
512-bit and 256-bit code is compiled for CPUs this host may not be."""

import math
import platform

import numba as nb
import numpy as np
import pytest

from sparsecore.kernels import isa
from sparsecore.kernels.epilogue import LANES, epilogue4_assembly, epilogue_assembly, row_epilogue
from sparsecore.kernels.quantize import quantize_u8

X86 = platform.machine() in ("x86_64", "AMD64")


def _runs(path: str) -> bool:
    return isa.float_supported(path) if path in isa.FLOAT_PATHS else isa.supported(path)


PATHS = [pytest.param(p, marks=pytest.mark.skipif(not _runs(p), reason=f"this CPU cannot run {p}"))
         for p in ("avx512", "avx512_vnni", "avx2", "avx_vnni", "generic")]


@nb.njit
def _apply(marker, acc, bias, scale, gelu, out):
    row_epilogue(marker, acc, bias, scale, gelu, out)


@nb.njit
def _apply_codes(marker, acc, bias, scale, gelu, out, qscale, zero):
    row_epilogue(marker, acc, bias, scale, gelu, out, qscale, zero)


def _reference(acc, bias, scale, gelu):
    """One element at a time (the generic path)."""
    out = np.empty(acc.size, np.float32)
    _apply(isa.marker("generic"), acc, bias, scale, gelu, out)
    return out


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", [np.int32, np.float32])
@pytest.mark.parametrize("size", [0, 1, 7, 8, 15, 16, 17, 24, 33, 40, 64, 100])  # odd and even counts of vectors
@pytest.mark.parametrize("gelu", [False, True])
def test_vector_lanes_give_the_one_element_paths_bits(path, dtype, size, gelu):
    rng = np.random.default_rng(size)
    if dtype == np.int32:
        acc = rng.integers(-40000, 40000, size + 5).astype(np.int32)
        bias, scale = np.float32(-123.0), np.float32(3e-4)
    else:
        acc = (rng.standard_normal(size + 5) * 3).astype(np.float32)
        acc[: min(size, 4)] = [0.0, -0.0, 6.5, -6.5][: min(size, 4)]  # zeros and both clamps of erf
        bias, scale = np.float32(0.25), np.float32(1.0)
    out = np.full(size + 3, np.nan, np.float32)  # elements past the row stay untouched
    _apply(isa.marker(path), acc, bias, scale, gelu, out[:size])
    np.testing.assert_array_equal(out[:size], _reference(acc[:size], bias, scale, gelu))
    assert np.isnan(out[size:]).all()


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("gelu", [False, True])
@pytest.mark.parametrize("zero", [0, 3, 128, 255])
@pytest.mark.parametrize("size", [83, 91])  # 10 and 11 full ymm vectors, then a tail
def test_codes_are_quantize_u8_of_the_float_epilogue(path, gelu, zero, size):
    """Writing uint8 codes gives quantize_u8 of what the float epilogue writes: ties to even, both saturations."""
    rng = np.random.default_rng(zero)
    qscale = np.float32(0.05)
    acc = (rng.standard_normal(size) * 8).astype(np.float32)
    acc[:6] = [0.025, 0.075, -0.025, 100.0, -100.0, 0.0]  # ties at half a step, saturations
    floats = np.empty(size, np.float32)
    _apply(isa.marker(path), acc, np.float32(0), np.float32(1), gelu, floats)
    codes = np.full(size + 2, 7, np.uint8)
    _apply_codes(isa.marker(path), acc, np.float32(0), np.float32(1), gelu, codes[:size], qscale, zero)
    np.testing.assert_array_equal(codes[:size], quantize_u8(floats, qscale, zero))
    assert (codes[size:] == 7).all()


@pytest.mark.parametrize("path", PATHS)
def test_gelu_matches_float64_erf(path):
    x = np.linspace(-10, 10, 20001).astype(np.float32)
    out = np.empty_like(x)
    _apply(isa.marker(path), x, np.float32(0), np.float32(1), True, out)
    want = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x.astype(np.float64)])
    assert np.max(np.abs(out - want)) < 5e-6
    assert out[0] == 0.0 and out[-1] == np.float32(10.0)


@pytest.mark.skipif(not X86, reason="x86 machine code")
@pytest.mark.parametrize("cpu,lanes,register", [("icelake-server", 16, "zmm"), ("znver4", 16, "zmm"),
                                                ("haswell", 8, "ymm")])
@pytest.mark.parametrize("integer", [False, True])
@pytest.mark.parametrize("codes", [False, True])
def test_machine_code_runs_at_the_path_width(cpu, lanes, register, integer, codes):
    code = epilogue_assembly(lanes, integer, True, cpu, codes)
    assert f"vdivps\t%{register}" in code and "vfmadd213ps\t" in code
    assert ("vcvtdq2ps\t" in code) == integer
    assert "call" not in code  # no libm: every operation is inline vector code
    assert set(LANES.values()) == {8, 16}


@pytest.mark.skipif(not X86, reason="x86 machine code")
@pytest.mark.parametrize("cpu,lanes,register", [("icelake-server", 16, "zmm"), ("znver4", 16, "zmm"),
                                                ("haswell", 8, "ymm"), ("znver3", 8, "ymm")])
@pytest.mark.parametrize("gelu", [False, True])
def test_four_row_epilogue_machine_code_runs_at_the_path_width(cpu, lanes, register, gelu):
    """The four-row epilogue that writes interleaved codes (rows_epilogue4): vector code at the path's width — the
    AVX-512 variant compiled here even where it cannot run —, the codes shifted into one word per token, no calls.
    (With GELU, four rows' chains do not fit 16 ymm registers: some vectors live on the stack, as in the one-row
    epilogue's.)"""
    code = epilogue4_assembly(lanes, gelu, cpu)
    assert f"%{register}" in code and "vdivps" in code and "vcvtdq2ps" in code and "vcvttps2dq" in code
    assert f"vpslld\t$8, %{register}" in code and f"vpslld\t$24, %{register}" in code
    assert "call" not in code
    if not gelu:
        assert "(%rsp)" not in code  # bias, scale and codes of four rows fit the registers

