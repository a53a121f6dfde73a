"""The attention's column softmax: every path gives the same bits (full vectors, single columns, masked keys), the
numerators, maxima and sums match float64, and the vector code is compiled for CPUs this host may not be."""

import platform

import numba as nb
import numpy as np
import pytest

from sparsecore.kernels import isa
from sparsecore.kernels.softmax import columns_assembly, exp_columns

PATHS = ["avx512", "avx512_vnni", "avx2", "avx_vnni", "generic"]


def _runs(path):
    return isa.float_supported(path) if path in isa.FLOAT_PATHS else isa.supported(path)


@nb.njit
def _apply(marker, st, seq, nq, colmax, colsum):
    exp_columns(marker, st, seq, nq, colmax, colsum)


def _run(path, st, seq, nq):
    st = st.copy()
    colmax, colsum = np.full(nq + 2, 9.0, np.float32), np.full(nq + 2, 9.0, np.float32)
    _apply(isa.marker(path), st, seq, nq, colmax, colsum)
    return st, colmax, colsum


@pytest.mark.parametrize("seq,nq", [(1, 1), (5, 15), (128, 64), (37, 100), (3, 17), (9, 93)])
def test_every_path_gives_the_same_bits_and_float64_values(seq, nq):
    rng = np.random.default_rng(seq * 100 + nq)
    st = (rng.standard_normal((seq + 2, nq + 3)) * 6).astype(np.float32)
    st[0, ::3] = np.finfo(np.float32).min  # masked keys: exactly 0
    st[-1, :] = st[-2, :] = 1e30  # rows past seq and columns past nq are left alone
    results = {path: _run(path, st, seq, nq) for path in PATHS if _runs(path)}
    generic = results["generic"]
    for path, got in results.items():
        for a, b in zip(got, generic):
            np.testing.assert_array_equal(a, b, err_msg=path)
    out, colmax, colsum = generic
    want_max = st[:seq, :nq].astype(np.float64).max(axis=0)
    want = np.exp((st[:seq, :nq] - want_max.astype(np.float32)).astype(np.float64))  # the fp32 difference, exactly
    np.testing.assert_array_equal(colmax[:nq], want_max.astype(np.float32))
    np.testing.assert_allclose(out[:seq, :nq], want, rtol=3e-7, atol=1e-38)
    np.testing.assert_allclose(colsum[:nq], want.sum(axis=0), rtol=1e-6)
    assert (out[seq:] == st[seq:]).all() and (out[:, nq:] == st[:, nq:]).all()
    assert (colmax[nq:] == 9.0).all() and (colsum[nq:] == 9.0).all()
    assert (out[0, ::3][: -(-nq // 3)] == 0.0).all() or seq == 1


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86 machine code")
@pytest.mark.parametrize("cpu,lanes,register", [("icelake-server", 16, "zmm"), ("znver4", 16, "zmm"),
                                                ("haswell", 8, "ymm")])
def test_machine_code_is_vector_code_without_calls(cpu, lanes, register):
    code = columns_assembly(lanes, cpu)
    assert f"%{register}" in code and "vfmadd" in code and ("vrndscaleps" in code or "vroundps" in code)
    assert "call" not in code  # no libm
