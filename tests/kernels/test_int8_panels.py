"""int8 Linears with K in panels (quads and 1×4 blocks on the token-blocked layout): exact against int64 sums on
every path, the same int32 and epilogue bits as one panel, the packing per panel, and the machine code of the
kernels' ``add`` and ``last`` forms (compiled for VNNI CPUs on any host)."""

import platform
import re

import numpy as np
import pytest
from reference import naive_int8_products

from sparsecore.kernels import isa
from sparsecore.kernels.int8_block4 import pack_block4_int8
from sparsecore.kernels.int8_linear import GROUP, activations, int8_linear_t, int8_matmul
from sparsecore.kernels.int8_quads import (MODES, TOKENS, block_assembly, pack_quads, saturation_safe)

X86 = platform.machine() in ("x86_64", "AMD64")
PATHS = [pytest.param(p, marks=pytest.mark.skipif(not isa.supported(p), reason=f"this CPU cannot run {p} (needs "
                                                  f"{', '.join(isa.NEEDS[p])})")) for p in TOKENS]


def _codes(rng, n=300, k=1000, density=0.12, blocks=False):
    """Random codes with edge rows: an empty one, one with entries on the last panel only, one on the first column
    only, a full one, and the largest magnitudes."""
    if blocks:
        mask = np.repeat(rng.random((n, k // 4)) < density, 4, axis=1)
    else:
        mask = rng.random((n, k)) < density
    codes = np.where(mask, rng.integers(-128, 128, (n, k)), 0).astype(np.int8)
    codes[3] = 0
    codes[4, :-100] = 0
    codes[5] = 0
    codes[5, 0] = -128
    codes[6] = rng.integers(-128, 128, k).astype(np.int8)
    codes[7, ::3] = 127
    return codes


def _pack(codes, blocks, panel):
    return pack_block4_int8(codes, pair_safe=True, panel=panel) if blocks else pack_quads(codes, panel=panel)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("blocks", [False, True], ids=["quads", "1x4-blocks"])
def test_panels_of_k_give_the_exact_sums_of_one_panel(path, blocks):
    rng = np.random.default_rng(3)
    codes = _codes(rng, blocks=blocks)
    t = 2 * TOKENS[path] + 5  # three token blocks, the last one partial
    xq = rng.integers(0, 256, (codes.shape[1], t)).astype(np.uint8)
    want = naive_int8_products(codes, xq)
    one = _pack(codes, blocks, None)
    xb = activations(one, xq, path, blocked=True)
    assert one.panels == 1
    np.testing.assert_array_equal(int8_matmul(one, xb, t, path), want)
    for panel in (4, 128, 200, 512, 996):
        weight = _pack(codes, blocks, panel)
        assert weight.panels == -(-1000 // panel) and weight.shape[0] > GROUP
        np.testing.assert_array_equal(int8_matmul(weight, xb, t, path), want, err_msg=f"panel {panel}")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("blocks", [False, True], ids=["quads", "1x4-blocks"])
def test_panelled_epilogue_gives_the_bits_of_one_panel(path, blocks):
    """Bias, scale and GELU on the panelled sums, to fp32, token-blocked fp32 and the next Linear's uint8 codes."""
    rng = np.random.default_rng(4)
    codes = _codes(rng, n=150, k=768, density=0.2, blocks=blocks)
    t = TOKENS[path] + 9
    xq = rng.integers(0, 256, (768, t)).astype(np.uint8)
    bias = rng.normal(0, 300, 150).astype(np.float32)
    scale = rng.uniform(1e-4, 1e-3, 150).astype(np.float32)
    one, panelled = _pack(codes, blocks, None), _pack(codes, blocks, 256)
    xb = activations(one, xq, path, blocked=True)
    for kwargs in ({}, {"gelu": True}, {"gelu": True, "blocked_out": True}, {"blocked_out": True, "codes": (0.02, 7)}):
        a = int8_linear_t(one, xb, t, bias, scale, path=path, **kwargs)
        b = int8_linear_t(panelled, xb, t, bias, scale, path=path, **kwargs)
        np.testing.assert_array_equal(a, b, err_msg=str(kwargs))
    exact = naive_int8_products(codes, xq).astype(np.float64)
    got = int8_linear_t(panelled, xb, t, bias, scale, path=path)
    np.testing.assert_allclose(got, (exact + bias[:, None]) * scale[:, None], rtol=1e-6, atol=1e-6)


def test_every_thread_count_gives_the_same_int32():
    import numba

    rng = np.random.default_rng(5)
    codes = _codes(rng, n=200, k=512, density=0.15)
    xq = rng.integers(0, 256, (512, 200)).astype(np.uint8)
    weight = pack_quads(codes, panel=128)
    path = isa.integer_path()
    xb = activations(weight, xq, path, blocked=True)
    results = []
    for threads in range(1, numba.config.NUMBA_NUM_THREADS + 1):
        numba.set_num_threads(threads)
        try:
            results.append(int8_matmul(weight, xb, 200, path))
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    for got in results:
        np.testing.assert_array_equal(got, naive_int8_products(codes, xq))


def test_quads_of_a_panel_read_its_columns_only_and_stay_saturation_safe():
    rng = np.random.default_rng(6)
    codes = _codes(rng, n=40, k=1000, density=0.3)
    weight = pack_quads(codes, panel=128)
    assert weight.splits.shape == (40, 9) and weight.panel == 128 and weight.nnz == np.count_nonzero(codes)
    np.testing.assert_array_equal(weight.splits[:, 0], weight.indptr[:-1])
    np.testing.assert_array_equal(weight.splits[:, -1], weight.indptr[1:])
    assert np.all(np.diff(weight.splits, axis=1) >= 0)
    assert np.all(saturation_safe(weight.weights4))
    rebuilt = np.zeros(codes.shape, np.int64)
    for r in range(40):
        for p in range(8):
            j0, j1 = weight.splits[r, p], weight.splits[r, p + 1]
            cols = weight.columns[j0:j1].astype(np.int64)
            assert np.all((cols >= 128 * p) & (cols < min(128 * (p + 1), 1000))), (r, p)
            wanted = np.count_nonzero(codes[r, 128 * p:128 * (p + 1)])
            assert j1 - j0 <= -(-wanted // 2)  # at most a pair per non-zero, two pairs per quad
            np.add.at(rebuilt[r], cols.reshape(-1), weight.weights4[j0:j1].reshape(-1).astype(np.int64))
    np.testing.assert_array_equal(rebuilt, codes)


def test_block_splits_find_each_panels_first_entry():
    rng = np.random.default_rng(7)
    codes = _codes(rng, n=30, k=1000, density=0.2, blocks=True)
    codes[0, 0] = 127  # with its neighbour a pair that saturates: two entries on one column
    codes[0, 1] = 127
    weight = pack_block4_int8(codes, pair_safe=True, panel=256)
    assert weight.panels == 4 and weight.panel == 256
    for r in range(30):
        for p in range(4):
            j0, j1 = weight.splits[r, p], weight.splits[r, p + 1]
            cols = weight.index[j0:j1].astype(np.int64)
            assert np.all((cols >= 64 * p) & (cols < 64 * (p + 1)))
            assert j1 - j0 == np.count_nonzero(weight.index[weight.indptr[r]:weight.indptr[r + 1]] // 64 == p)
    one = pack_block4_int8(codes, pair_safe=True)
    np.testing.assert_array_equal(one.values, weight.values)  # panels change where runs start, not the entries


@pytest.mark.parametrize("panel", [0, 3, 6, -4, 2.5, True, "128"])
def test_a_bad_panel_width_is_one_clear_error(panel):
    codes = np.ones((2, 16), np.int8)
    for pack in (pack_quads, lambda c, panel: pack_block4_int8(c, panel=panel)):
        with pytest.raises(ValueError, match="panel must be a positive multiple of 4"):
            pack(codes, panel=panel)


def test_k_not_a_multiple_of_the_panel_and_zero_rows():
    rng = np.random.default_rng(8)
    codes = _codes(rng, n=70, k=300, density=0.3)
    xq = rng.integers(0, 256, (300, 70)).astype(np.uint8)
    weight = pack_quads(codes, panel=128)  # panels of 128, 128, 44 columns
    assert weight.panels == 3
    xb = activations(weight, xq, "generic", blocked=True)
    np.testing.assert_array_equal(int8_matmul(weight, xb, 70, "generic"), naive_int8_products(codes, xq))
    empty = pack_quads(np.zeros((0, 300), np.int8), panel=64)
    assert empty.splits.shape == (0, 6)
    assert int8_matmul(empty, xb, 70, "generic").shape == (0, 70)


def _loop(assembly: str) -> list[str]:
    """The instructions of the innermost loop: from the label a backward branch jumps to, to that branch."""
    lines = [ln.replace("{vex}", "").strip() for ln in assembly.splitlines()]
    labels = {ln[:-1]: i for i, ln in enumerate(lines) if re.fullmatch(r"\.LBB\d+_\d+:", ln)}
    loops = [(labels[m.group(1)], i) for i, ln in enumerate(lines)
             if (m := re.fullmatch(r"j\w+\s+(\.LBB\d+_\d+)", ln)) and labels.get(m.group(1), i) < i]
    start, end = min(loops, key=lambda se: se[1] - se[0])
    return lines[start + 1:end]


@pytest.mark.skipif(not X86, reason="the integer paths are x86 instructions")
@pytest.mark.parametrize("path,cpu,dot", [("avx512_vnni", "icelake-server", "vpdpbusd"),
                                          ("avx512_vnni", "znver4", "vpdpbusd"), ("avx_vnni", "alderlake", "vpdpbusd"),
                                          ("avx2", "znver3", "vpmaddubsw"), ("avx2", "haswell", "vpmaddubsw")])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("blocks", [False, True], ids=["quads", "1x4-blocks"])
def test_every_mode_keeps_the_inner_loop_of_the_store_form(path, cpu, dot, mode, blocks):
    """``add`` and ``last`` only load the kept sums before the loop and store after it: the loop is the store form's
    (the same arithmetic and shuffles; on AVX2, whose 16 ymm registers the accumulators, the broadcast weights and
    the constant of ones fill, the constant may be reloaded from L1 — one more load per entry), no spills; ``add``
    stores the accumulators without the token-order shuffles."""
    store = block_assembly(path, cpu, blocks)
    code = block_assembly(path, cpu, blocks, mode)
    loop = _loop(code)

    def arithmetic(lines):
        return sorted(ln.split()[0] for ln in lines if not ln.startswith("vmov"))

    assert arithmetic(loop) == arithmetic(_loop(store))
    moves = sum(ln.startswith("vmov") for ln in loop) - sum(ln.startswith("vmov") for ln in _loop(store))
    assert 0 <= moves <= (1 if path == "avx2" else 0)
    assert dot in arithmetic(loop)
    assert not any(ln.endswith(("(%rsp)", "(%rbp)")) for ln in loop), "a spill inside the inner loop"
    shuffle = ("vperm", "vshuf", "vinserti", "vextracti", "vpunpck", "vpblend", "valign")
    outside = sum(ln.strip().startswith(shuffle) for ln in code.splitlines()) - sum(ln.startswith(shuffle)
                                                                                     for ln in loop)
    assert (outside == 0) == (mode == "add")  # the token order is restored only where the sums are written
