"""Unstructured int8 products in quads on VNNI and AVX2: every path against exact int64 sums, the packing, the
token-blocked layout, the epilogue, and the machine code.

Paths the host cannot execute are skipped with the reason; their machine code is still compiled for a CPU that
has the feature and checked (``block_assembly``), so the VNNI code is verified on an AVX2-only machine too.
"""

import platform

import numba
import numpy as np
import pytest
from reference import naive_int8_products

from sparsecore.kernels import isa
from sparsecore.kernels.int8_block4 import MAX_K
from sparsecore.kernels.int8_linear import int8_linear_t, int8_matmul
from sparsecore.kernels.int8_quads import TOKENS, block_assembly, pack_quads, saturation_safe, token_blocks
from sparsecore.kernels.quantize import quantize_u8, quantize_u8_blocked
from sparsecore.kernels.row_kernels import row_bounds, row_chunks
from sparsecore.kernels.sparse_matmul import gelu_inplace

X86 = platform.machine() in ("x86_64", "AMD64")
PATHS = [pytest.param(p, marks=pytest.mark.skipif(not isa.supported(p), reason=f"this CPU cannot run {p} (needs "
                                                  f"{', '.join(isa.NEEDS[p])})")) for p in TOKENS]


def sparse_codes(n, k, sparsity, rng):
    codes = rng.integers(-128, 128, (n, k)).astype(np.int8)
    return np.where(rng.random((n, k)) >= sparsity, codes, 0).astype(np.int8)


def run(codes, xq, path):
    return int8_matmul(pack_quads(codes), token_blocks(xq, TOKENS[path]), xq.shape[1], path)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("n,k,t", [(1, 1, 1), (5, 7, 17), (37, 70, 213), (16, 768, 128), (3, 3072, 64), (8, 12, 0),
                                   (40, 300, 65), (33, 64, 31)])
@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9, 1.0])
def test_exact_against_int64_products(path, n, k, t, sparsity):
    rng = np.random.default_rng(n * 1000 + k + t)
    codes = sparse_codes(n, k, sparsity, rng)
    xq = rng.integers(0, 256, (k, t)).astype(np.uint8)
    got = run(codes, xq, path)
    assert got.dtype == np.int32 and got.shape == (n, t)
    np.testing.assert_array_equal(got, naive_int8_products(codes, xq))


@pytest.mark.parametrize("path", PATHS)
def test_rows_of_every_length_modulo_four_and_empty_rows(path):
    """Rows with 0–9 non-zeros (last quads padded with 1, 2 or 3 zero weights), columns at 0 and K − 1."""
    rng = np.random.default_rng(11)
    k = 500
    codes = np.zeros((10, k), np.int8)
    for r in range(10):
        cols = np.sort(rng.choice(k, r, replace=False))
        if r >= 2:
            cols[0], cols[-1] = 0, k - 1
        codes[r, cols] = rng.choice(np.r_[-128:0, 1:128], r)
    xq = rng.integers(0, 256, (k, 100)).astype(np.uint8)
    np.testing.assert_array_equal(run(codes, xq, path), naive_int8_products(codes, xq))


@pytest.mark.parametrize("path", PATHS)
def test_extreme_codes_sum_exactly(path):
    """-128 · 255 over K = 3072: −100,270,080 per output, far past int16 and fp32's 2²⁴ exact range."""
    codes = np.full((5, 3072), -128, np.int8)
    codes[1] = 127
    codes[2, ::2] = 0
    xq = np.full((3072, 150), 255, np.uint8)
    xq[:, 7] = 0
    got = run(codes, xq, path)
    np.testing.assert_array_equal(got, naive_int8_products(codes, xq))
    assert got[0, 0] == -128 * 255 * 3072 and got[0, 7] == 0 and got[1, 0] == 127 * 255 * 3072


def test_every_runnable_path_and_thread_count_gives_the_same_int32():
    rng = np.random.default_rng(7)
    codes, xq = sparse_codes(150, 300, 0.85, rng), rng.integers(0, 256, (300, 333)).astype(np.uint8)
    codes[40:60] = 0  # a run of empty rows: the row ranges are balanced by stored quads
    want = naive_int8_products(codes, xq)
    threads = numba.get_num_threads()
    try:
        for count in sorted({1, threads}):
            numba.set_num_threads(count)
            for path in TOKENS:
                if isa.supported(path):
                    np.testing.assert_array_equal(run(codes, xq, path), want, err_msg=f"{path}, {count} threads")
    finally:
        numba.set_num_threads(threads)


def test_row_ranges_cover_every_row_once_and_share_the_quads():
    rng = np.random.default_rng(2)
    weight = pack_quads(sparse_codes(1000, 256, 0.9, rng) * (np.arange(1000) % 3 == 0)[:, None].astype(np.int8))
    for chunks in (1, 2, 3, 7):
        bounds = row_bounds(weight.indptr, chunks)
        assert bounds[0] == 0 and bounds[-1] == 1000 and len(bounds) == chunks + 1 and np.all(np.diff(bounds) >= 0)
        share = np.diff(weight.indptr[bounds])
        assert share.max() - share.min() <= 2 * np.diff(weight.indptr).max()
    assert row_chunks(64, 3072, 2) == 1 and row_chunks(3, 3072, 2) == 2 and row_chunks(1, 768, 2) == 2
    assert row_chunks(1, 20, 2) == 1  # too few rows to split


def test_packing_round_trips_pads_quads_and_counts_real_nonzeros():
    rng = np.random.default_rng(3)
    codes = sparse_codes(9, 22, 0.6, rng)
    codes[4] = 0
    weight = pack_quads(codes)
    dense = np.zeros_like(codes)
    for r in range(9):
        quads = slice(weight.indptr[r], weight.indptr[r + 1])
        columns, weights = weight.columns[quads].reshape(-1), weight.weights4[quads].reshape(-1)
        assert len(set(columns[weights != 0].tolist())) == np.count_nonzero(weights)  # each non-zero once
        assert set(columns.tolist()) <= set(np.nonzero(codes[r])[0].tolist())  # padding on the row's own columns
        np.add.at(dense[r], columns, weights)
    np.testing.assert_array_equal(dense, codes)
    assert saturation_safe(weight.weights4).all()
    assert weight.nnz == np.count_nonzero(codes) and weight.indptr[5] == weight.indptr[4]


def test_pairs_are_saturation_safe_and_cost_nothing_when_signs_mix():
    """Each pair of a quad is what ``vpmaddubsw`` sums in int16 on AVX2: same-sign weights whose magnitudes add past
    128 are never paired (255 · 129 > 2¹⁵ − 1). Opposite signs always pair, so rows of both signs take ⌈nnz/4⌉ quads;
    a row of large same-sign weights takes one pair per weight."""
    rng = np.random.default_rng(5)
    mixed = sparse_codes(200, 300, 0.8, rng)
    weight = pack_quads(mixed)
    assert saturation_safe(weight.weights4).all()
    assert np.array_equal(np.diff(weight.indptr), -(-np.count_nonzero(mixed, axis=1) // 4))
    same = np.zeros((4, 16), np.int8)
    same[0, :8] = 100  # no two fit together: 8 pairs, 4 quads
    same[1, :8] = [127, 1, 120, 8, 64, 64, 65, 63]  # largest with smallest: (127, 1) (120, 8) (65, 63) (64, 64)
    same[2, :5] = -128  # alone, each: −128 · 255 fits int16
    same[3, :6] = [-65, -64, -64, 100, 100, 100]
    weight = pack_quads(same)
    assert np.diff(weight.indptr).tolist() == [4, 2, 3, 2] and saturation_safe(weight.weights4).all()
    xq = np.full((16, 70), 255, np.uint8)
    xq[5] = 0
    for path in (p for p in TOKENS if isa.supported(p)):
        np.testing.assert_array_equal(run(same, xq, path), naive_int8_products(same, xq), err_msg=path)


def test_token_blocks_and_blocked_quantization():
    rng = np.random.default_rng(4)
    xq = rng.integers(0, 256, (5, 70)).astype(np.uint8)
    xb = token_blocks(xq, 32, pad=9)
    assert xb.shape == (3, 5, 32) and xb[1, 2, 3] == xq[2, 35] and np.all(xb[2, :, 6:] == 9)
    for k, t in [(4, 1), (70, 213), (768, 128)]:
        xt = (rng.standard_normal((k, t)) * 3).astype(np.float32)
        xt[0, :4] = [0.05, 0.15, -0.05, 1e9][:t] if t >= 4 else xt[0, :4]  # ties round half to even; saturation
        for tb in (32, 64):
            np.testing.assert_array_equal(quantize_u8_blocked(xt, 0.1, 128, tb),
                                          token_blocks(quantize_u8(xt, 0.1, 128), tb, pad=128))


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("t", [1, 50, 128, 333])
def test_linear_epilogue_is_bias_then_scale_on_the_exact_sum_then_gelu(path, t):
    rng = np.random.default_rng(t)
    codes, xq = sparse_codes(48, 96, 0.7, rng), rng.integers(0, 256, (96, t)).astype(np.uint8)
    bias, scale = rng.standard_normal(48).astype(np.float32) * 100, rng.random(48).astype(np.float32) / 1000
    weight, xb = pack_quads(codes), token_blocks(xq, TOKENS[path])
    exact = naive_int8_products(codes, xq).astype(np.float32)  # |Σ| < 2²⁴ here: exact in float32
    expected = (exact + bias[:, None]) * scale[:, None]
    np.testing.assert_array_equal(int8_linear_t(weight, xb, t, bias, scale, path=path), expected)
    np.testing.assert_allclose(int8_linear_t(weight, xb, t, bias, scale, gelu=True, path=path),
                               gelu_inplace(expected.copy()), rtol=1e-6, atol=1e-7)


def test_bad_inputs_are_one_clear_error():
    weight = pack_quads(np.ones((2, 8), np.int8))
    with pytest.raises(ValueError, match=r"C-contiguous \(1, 8, 64\) uint8 \(the quad kernels"):
        int8_matmul(weight, np.zeros((1, 8, 32), np.uint8), 10, "generic")
    with pytest.raises(ValueError, match="2-D int8"):
        pack_quads(np.ones((2, 8), np.float32))
    with pytest.raises(ValueError, match="2-D uint8"):
        token_blocks(np.ones((8, 2), np.int8), 64)
    with pytest.raises(ValueError, match="cannot run the quad int8 kernels"):
        int8_matmul(weight, token_blocks(np.zeros((8, 3), np.uint8), 64), 3, "avx512")  # a float path's name
    with pytest.raises(ValueError, match="overflow"):
        pack_quads(np.ones((1, MAX_K + 1), np.int8))
    with pytest.raises(ValueError, match="quad columns are uint16"):  # column 65536 would wrap to 0
        pack_quads(np.ones((1, 65537), np.int8))
    assert pack_quads(np.ones((1, 65536), np.int8)).columns.max() == 65535
    with pytest.raises(ValueError, match="float32 array of shape"):
        int8_linear_t(weight, token_blocks(np.zeros((8, 3), np.uint8), 64), 3, np.zeros(2), np.ones(2),
                            path="generic", out=np.zeros((2, 4), np.float32))


def _loop_lines(assembly: str) -> list[str]:
    """Instructions of the block's inner loop: from the loop's label to its backward branch."""
    lines = [ln.replace("{vex}", "").strip() for ln in assembly.splitlines()]  # AVX-VNNI's VEX-encoding marker
    start = next(i for i, ln in enumerate(lines) if ln.startswith(".LBB0_2:"))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("jl") or lines[i].startswith("jg"))
    return lines[start + 1:end]


@pytest.mark.skipif(not X86, reason="the integer paths are x86 instructions")
@pytest.mark.parametrize("path,cpu,register", [
    ("avx512_vnni", "icelake-server", "%zmm"), ("avx512_vnni", "znver4", "%zmm"),
    ("avx512_vnni", "sapphirerapids", "%zmm"),
    ("avx_vnni", "alderlake", "%ymm"),
])
@pytest.mark.parametrize("blocks", [False, True], ids=["quads", "1x4-blocks"])
def test_machine_code_is_four_vpdpbusd_and_eight_unpacks_per_quad_without_spills(path, cpu, register, blocks):
    loop = _loop_lines(block_assembly(path, cpu, blocks))
    dots = [ln for ln in loop if ln.startswith("vpdpbusd")]
    assert len(dots) == 4 and all(register in ln for ln in dots)
    assert sum(ln.startswith("vpunpck") for ln in loop) == 8
    assert sum(ln.startswith("movzwl") for ln in loop) == (1 if blocks else 4)  # index loads per entry
    assert not any("%rsp" in ln or "%rbp" in ln for ln in loop), "a spill inside the inner loop"
    assert not any(ln.startswith("vpmaddubsw") for ln in loop)  # saturates u8·s8 pair sums at int16


@pytest.mark.skipif(not X86, reason="the integer paths are x86 instructions")
@pytest.mark.parametrize("cpu", ["haswell", "znver3", "znver2"])
def test_avx2_machine_code_is_vpmaddubsw_then_vpmaddwd_by_ones_without_spills(cpu):
    # per quad and 64 tokens (two ymm passes in one loop): 8 loads, 16 byte/word unpacks (each token's four bytes side
    # by side), 8 vpmaddubsw (pair sums, exact on saturation-safe pairs), 8 vpmaddwd by ones (both pairs into int32),
    # 8 adds; no stack stores
    loop = _loop_lines(block_assembly("avx2", cpu))
    count = {op: sum(ln.startswith(op) for ln in loop)
             for op in ("vmovdqu", "vpunpck", "vpmaddubsw", "vpmaddwd", "vpaddd")}
    assert count == {"vmovdqu": 8, "vpunpck": 16, "vpmaddubsw": 8, "vpmaddwd": 8, "vpaddd": 8}
    assert all("%ymm" in ln for ln in loop if ln.startswith(("vpmaddubsw", "vpmaddwd")))
    assert not any(ln.endswith(("(%rsp)", "(%rbp)")) for ln in loop), "a spill inside the inner loop"
    assert not any(ln.startswith("vpdpbusd") for ln in loop)


@pytest.mark.parametrize("path", PATHS)
def test_rows_grouped_before_their_epilogues_give_the_row_by_row_bits(path, monkeypatch):
    """A task sums EPILOGUE_ROWS rows, then runs their epilogues: any group size — one row, one that does not divide
    the task's rows, more rows than a task has — gives the same floats and codes, GELU or not, for quads and for
    1×4 blocks writing interleaved codes (groups of four rows)."""
    from sparsecore.kernels import int8_linear
    from sparsecore.kernels.int8_block4 import pack_block4_int8

    rng = np.random.default_rng(7)
    codes, xq = sparse_codes(52, 96, 0.8, rng), rng.integers(0, 256, (96, 150)).astype(np.uint8)
    bias, scale = rng.standard_normal(52).astype(np.float32), rng.random(52).astype(np.float32) / 100
    quads, block4 = pack_quads(codes), pack_block4_int8(codes, pair_safe=True)
    xb = token_blocks(xq, TOKENS[path])
    results = {}
    for group in (4, 8, 32, 256):
        monkeypatch.setattr(int8_linear, "EPILOGUE_ROWS", group)
        for gelu in (False, True):
            results[group, gelu] = (
                int8_linear_t(quads, xb, 150, bias, scale, gelu=gelu, path=path),
                int8_linear_t(quads, xb, 150, bias, scale, gelu=gelu, path=path, blocked_out=True, codes=(0.02, 9)),
                int8_linear_t(block4, int8_linear.activations(block4, xq, path), 150, bias, scale, gelu=gelu,
                              path=path, blocked_out=True, codes=(0.02, 9), interleaved=True))
    for (group, gelu), outputs in results.items():
        for got, want in zip(outputs, results[4, gelu]):
            np.testing.assert_array_equal(got, want)
