"""Block-sparse int8 products on the integer units: every ISA path, on both activation layouts (interleaved by four
features, and the quads' token-blocked one), against exact int64 sums, and their machine code.

Paths the host cannot execute are skipped with the reason; their machine code is still compiled for a CPU
that has the feature and checked (``tile_assembly``), so a VNNI path is verified on an AVX2-only machine too.
"""

import platform

import numpy as np
import pytest
from reference import naive_int8_products

from sparsecore.kernels import int8_quads, isa
from sparsecore.kernels.int8_block4 import (
    EXACT_TOKENS,
    MAX_K,
    SHAPES,
    TOKENS,
    interleave4,
    pack_block4_int8,
    tile_assembly,
)
from sparsecore.kernels.int8_linear import (
    TOKEN_BLOCKED_BELOW,
    activation_shape,
    activations,
    int8_linear_t,
    int8_matmul,
    token_blocked,
)
from sparsecore.kernels.int8_quads import block_assembly, saturation_safe
from sparsecore.kernels.quantize import quantize_u8, quantize_u8_interleave4
from sparsecore.kernels.sparse_matmul import gelu_inplace


def runnable(path):
    return pytest.param(path, marks=pytest.mark.skipif(not isa.supported(path), reason=f"this CPU cannot run {path} "
                                                       f"(needs {', '.join(isa.NEEDS[path])})"))


PATHS = [runnable(p) for p in isa.PATHS]
LAYOUTS = [pytest.param(False, id="interleaved"), pytest.param(True, id="token-blocked")]
X86 = platform.machine() in ("x86_64", "AMD64")


def run(codes, xq, path, blocked=False):
    """Exact products; the token-blocked layout takes K a multiple of 4 (codes padded with zero columns here)."""
    if blocked and codes.shape[1] % 4:
        pad = -codes.shape[1] % 4
        codes, xq = np.pad(codes, ((0, 0), (0, pad))), np.pad(xq, ((0, pad), (0, 0)), constant_values=9)
    weight = pack_block4_int8(codes, pair_safe=True)  # split entries run on every path
    return int8_matmul(weight, activations(weight, xq, path, blocked), xq.shape[1], path)


def block_codes(n, k, sparsity, rng):
    codes = rng.integers(-128, 128, (n, k)).astype(np.int8)
    blocks = -(-k // 4)
    keep = np.repeat(rng.random((n, blocks)) >= sparsity, 4, axis=1)[:, :k]
    return np.where(keep, codes, 0).astype(np.int8)


@pytest.mark.parametrize("blocked", LAYOUTS)
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("n,k,t", [(1, 4, 1), (5, 7, 17), (37, 70, 213), (16, 768, 128), (3, 3072, 64), (8, 12, 0)])
@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9, 1.0])
def test_exact_against_int64_products(path, n, k, t, sparsity, blocked):
    rng = np.random.default_rng(n * 1000 + k + t)
    codes = block_codes(n, k, sparsity, rng)
    xq = rng.integers(0, 256, (k, t)).astype(np.uint8)
    got = run(codes, xq, path, blocked)
    assert got.dtype == np.int32 and got.shape == (n, t)
    np.testing.assert_array_equal(got, naive_int8_products(codes, xq))


@pytest.mark.parametrize("blocked", LAYOUTS)
@pytest.mark.parametrize("path", PATHS)
def test_extreme_codes_sum_exactly(path, blocked):
    """-128 · 255 over K = 3072: −100,270,080 per output, far past int16 and fp32's 2²⁴ exact range."""
    codes = np.full((5, 3072), -128, np.int8)
    codes[1] = 127
    codes[2, ::2] = 0  # half the blocks partly zero
    xq = np.full((3072, 150), 255, np.uint8)
    xq[:, 7] = 0
    got = run(codes, xq, path, blocked)
    np.testing.assert_array_equal(got, naive_int8_products(codes, xq))
    assert got[0, 0] == -128 * 255 * 3072 and got[0, 7] == 0


def test_every_runnable_path_gives_the_same_int32():
    rng = np.random.default_rng(7)
    codes, xq = block_codes(64, 300, 0.8, rng), rng.integers(0, 256, (300, 333)).astype(np.uint8)
    results = {(p, b): run(codes, xq, p, b) for p in isa.PATHS if isa.supported(p) for b in (False, True)}
    assert ("generic", False) in results
    for key, got in results.items():
        np.testing.assert_array_equal(got, results["generic", False], err_msg=str(key))


def test_each_path_prefers_one_layout_and_reads_both(monkeypatch):
    """1×4 blocks prefer the interleaved layout ``vpdpbusd`` (and ``vpmaddubsw`` on AVX2) reads without unpacks;
    below a path's ``TOKEN_BLOCKED_BELOW`` stored weights per input column (none by default) the quads'
    token-blocked layout its producers write codes into. Both layouts are read on every path. K not a multiple of 4:
    interleaved only."""
    assert TOKEN_BLOCKED_BELOW == {}
    weight = pack_block4_int8(np.ones((3, 8), np.int8))  # 3 weights per column
    heavy = pack_block4_int8(np.ones((128, 8), np.int8))  # 128
    assert activation_shape(weight, 70, "avx2") == (2, 2, 64, 4) and not token_blocked(weight, "avx2")
    with monkeypatch.context() as m:
        m.setitem(TOKEN_BLOCKED_BELOW, "avx2", 128.0)
        assert activation_shape(weight, 70, "avx2") == (2, 8, 64) and token_blocked(weight, "avx2")
        assert activation_shape(heavy, 70, "avx2") == (2, 2, 64, 4) and not token_blocked(heavy, "avx2")
        assert not token_blocked(pack_block4_int8(np.ones((3, 7), np.int8)), "avx2")
    assert activation_shape(weight, 70, "avx512_vnni") == (1, 2, 128, 4) and not token_blocked(weight, "avx512_vnni")
    assert activation_shape(weight, 70, "avx2", blocked=False) == (2, 2, 64, 4)
    with pytest.raises(ValueError, match="K = 7 .*interleaved layout only"):
        activation_shape(pack_block4_int8(np.ones((3, 7), np.int8)), 5, "avx2", blocked=True)
    with pytest.raises(ValueError, match=r"C-contiguous \(2, 8, 64\) uint8 \(the 1×4-block kernels' token-blocked"):
        int8_matmul(weight, np.zeros((2, 8, 32), np.uint8), 70, "generic")


def test_packing_round_trips_and_keeps_only_nonzero_blocks():
    rng = np.random.default_rng(3)
    codes = block_codes(9, 22, 0.6, rng)  # K = 22: padded to 24
    weight = pack_block4_int8(codes)
    dense = np.zeros((9, 24), np.int8)
    for r in range(9):
        for j in range(weight.indptr[r], weight.indptr[r + 1]):
            dense[r, 4 * int(weight.index[j]):4 * int(weight.index[j]) + 4] = weight.blocks4[j]
    np.testing.assert_array_equal(dense[:, :22], codes)
    assert len(weight.values) == int(np.count_nonzero(np.any(dense.reshape(9, 6, 4) != 0, axis=2)))
    xq = rng.integers(0, 256, (22, 70)).astype(np.uint8)
    xb = interleave4(xq, 32, pad=7)
    assert xb.shape == (3, 6, 32, 4) and xb[0, 2, 3, 1] == xq[9, 3] and xb[2, 2, 5, 1] == xq[9, 69]
    assert xb[0, 5, 4, 3] == 7 and np.all(xb[2, :, 6:] == 7)  # padded feature, padded tokens


def test_bad_inputs_are_one_clear_error():
    weight = pack_block4_int8(np.ones((2, 8), np.int8))
    with pytest.raises(ValueError, match=r"C-contiguous \(1, 2, 64, 4\) uint8"):
        int8_matmul(weight, np.zeros((1, 2, 32, 4), np.uint8), 3, "generic")
    with pytest.raises(ValueError, match="2-D int8"):
        pack_block4_int8(np.ones((2, 8), np.float32))
    with pytest.raises(ValueError, match="2-D uint8"):
        interleave4(np.ones((8, 2), np.int8), 64)
    with pytest.raises(ValueError, match="cannot run the 1×4-block int8 kernels"):
        int8_matmul(weight, interleave4(np.zeros((8, 3), np.uint8), 64), 3, "sse2")
    with pytest.raises(ValueError, match="overflow"):
        pack_block4_int8(np.ones((1, MAX_K + 1), np.int8))
    assert pack_block4_int8(np.ones((1, MAX_K), np.int8)).index.max() == MAX_K // 4 - 1  # fits uint16


def test_isa_choice_is_supported_and_can_be_forced(monkeypatch):
    assert isa.supported(isa.integer_path()) and isa.supported("generic")
    monkeypatch.setenv("SPARSECORE_ISA", "generic")
    assert isa.integer_path() == "generic"
    monkeypatch.setenv("SPARSECORE_ISA", "neon")
    with pytest.raises(ValueError, match="not one of"):
        isa.integer_path()
    missing = [p for p in isa.PATHS if not isa.supported(p)]
    if missing:
        monkeypatch.setenv("SPARSECORE_ISA", missing[0])
        with pytest.raises(ValueError, match="this CPU lacks"):
            isa.integer_path()


def _loop_lines(assembly: str) -> list[str]:
    """Instructions of the tile's inner loop: from the loop's label to its backward branch."""
    lines = [ln.replace("{vex}", "").strip() for ln in assembly.splitlines()]  # AVX-VNNI's VEX-encoding marker
    start = next(i for i, ln in enumerate(lines) if ln.startswith(".LBB0_2:"))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("jl") or lines[i].startswith("jg"))
    return lines[start + 1:end]


@pytest.mark.skipif(not X86, reason="the integer paths are x86 instructions")
@pytest.mark.parametrize("path,cpu,instruction,register", [
    ("avx512_vnni", "icelake-server", "vpdpbusd", "%zmm"),
    ("avx512_vnni", "znver4", "vpdpbusd", "%zmm"),
    ("avx_vnni", "alderlake", "vpdpbusd", "%ymm"),
    ("avx2", "haswell", "vpmaddubsw", "%ymm"),
    ("avx2", "znver3", "vpmaddubsw", "%ymm"),
])
def test_machine_code_uses_the_integer_instruction_and_keeps_accumulators_in_registers(path, cpu, instruction,
                                                                                      register):
    """One index load, one broadcast and per vector of tokens one load and one dot product (on AVX2 ``vpmaddubsw`` —
    exact on the saturation-safe pairs AVX2 weights are packed in — then ``vpmaddwd`` by ones and an add): no
    unpacks, no spills."""
    loop = _loop_lines(tile_assembly(path, cpu))
    dots = [ln for ln in loop if ln.startswith(instruction)]
    assert len(dots) == SHAPES[path][1] and all(register in ln for ln in dots)
    assert not any("%rsp" in ln or "%rbp" in ln for ln in loop), "a spill inside the inner loop"
    assert not any(ln.startswith("vpunpck") for ln in loop)
    assert sum(ln.startswith("movzwl") for ln in loop) == 1
    if path == "avx2":
        count = {op: sum(ln.startswith(op) for ln in loop) for op in ("vpmaddwd", "vpaddd", "vmovdqu", "vpbroadcastd")}
        assert count == {"vpmaddwd": 8, "vpaddd": 8, "vmovdqu": 8, "vpbroadcastd": 1}
    else:
        assert not any(ln.startswith("vpmaddubsw") for ln in loop)  # VNNI needs no saturation-safe pairs


@pytest.mark.skipif(not X86, reason="the integer paths are x86 instructions")
@pytest.mark.parametrize("cpu", ["haswell", "znver3"])
def test_exact_avx2_tile_widens_and_never_saturates(cpu):
    """The tile for any int8 weights (the quantized attention's codes − 128): codes widened to int16 and
    ``vpmaddwd``, 4 tokens per vector, 8 accumulators — no ``vpmaddubsw``, which saturates u8·s8 pair sums."""
    loop = _loop_lines(tile_assembly("avx2", cpu, exact=True))
    assert sum(ln.startswith("vpmaddwd") for ln in loop) == 8
    assert sum(ln.startswith("vpmovzxbw") for ln in loop) == 8
    assert not any(ln.startswith("vpmaddubsw") for ln in loop)
    assert not any("%rsp" in ln or "%rbp" in ln for ln in loop), "a spill inside the inner loop"
    assert EXACT_TOKENS["avx2"] == 32 and TOKENS["avx2"] == 64


@pytest.mark.parametrize("path", PATHS)
def test_exact_rows_take_weights_that_are_not_saturation_safe(path):
    """``block4_row_exact`` on the EXACT_TOKENS layout: same-sign pairs of large weights (vpmaddubsw would saturate
    their pair sums at 255) summed exactly, against int64."""
    import numba

    from sparsecore.kernels.int8_block4 import block4_row_exact
    from sparsecore.kernels.isa import marker

    @numba.njit
    def rows(mark, index, values, values4, indptr, xb, out, tb):
        for r in range(indptr.size - 1):
            for b in range(xb.shape[0]):
                acc = np.empty(tb, np.int32)
                block4_row_exact(mark, index, values, values4, indptr[r], indptr[r + 1], xb, b, acc)
                width = min(tb, out.shape[1] - b * tb)
                out[r, b * tb:b * tb + width] = acc[:width]

    rng = np.random.default_rng(2)
    codes = np.where(rng.random((6, 64)) < 0.5, 127, -128).astype(np.int8)
    codes[1, 8:16] = 0
    xq = rng.integers(200, 256, (64, 70)).astype(np.uint8)
    weight = pack_block4_int8(codes)
    assert not saturation_safe(weight.blocks4).all()
    tb = EXACT_TOKENS[path]
    out = np.zeros((6, 70), np.int32)
    rows(marker(path), weight.index, weight.values, weight.blocks4, weight.indptr, interleave4(xq, tb), out, tb)
    np.testing.assert_array_equal(out, naive_int8_products(codes, xq))


@pytest.mark.skipif(not X86, reason="the integer paths are x86 instructions")
@pytest.mark.parametrize("cpu", ["haswell", "znver3", "znver2"])
def test_token_blocked_avx2_machine_code_loads_one_index_per_block(cpu):
    """The quads' AVX2 code with one block column per entry: per block and 64 tokens 8 loads, 16 byte/word unpacks,
    8 vpmaddubsw, 8 vpmaddwd, 8 adds, one 16-bit index load (a quad loads four), no stack stores."""
    loop = _loop_lines(block_assembly("avx2", cpu, blocks=True))
    count = {op: sum(ln.startswith(op) for ln in loop)
             for op in ("vmovdqu", "vpunpck", "vpmaddubsw", "vpmaddwd", "vpaddd", "vpmovzx")}
    assert count == {"vmovdqu": 8, "vpunpck": 16, "vpmaddubsw": 8, "vpmaddwd": 8, "vpaddd": 8, "vpmovzx": 0}
    assert sum(ln.startswith("movzwl") for ln in loop) == 1
    assert sum(ln.startswith("movzwl") for ln in _loop_lines(block_assembly("avx2", cpu))) == 4
    assert not any(ln.endswith(("(%rsp)", "(%rbp)")) for ln in loop), "a spill inside the inner loop"
    assert not any(ln.startswith("vpdpbusd") for ln in loop)


def test_pair_safe_packing_splits_only_blocks_that_could_saturate():
    """``vpmaddubsw`` sums two u8·s8 products in int16: a pair of same-sign weights whose magnitudes add past 128
    could saturate (255 · 129 > 2¹⁵ − 1). Such a block is stored twice on its column, even and odd weights apart."""
    codes = np.array([[64, 64, -64, -64, 65, 64, 0, 0, 127, -128, 1, -1, 0, 0, -65, -64]], np.int8)
    plain, safe = pack_block4_int8(codes), pack_block4_int8(codes, pair_safe=True)
    assert not plain.pair_safe and safe.pair_safe
    assert not saturation_safe(plain.blocks4).all() and saturation_safe(safe.blocks4).all()
    assert safe.index.tolist() == [0, 1, 1, 2, 3, 3]  # blocks 1 and 3 split, 0 (sums of exactly 128) and 2 kept
    assert safe.blocks4[1].tolist() == [65, 0, 0, 0] and safe.blocks4[2].tolist() == [0, 64, 0, 0]
    assert safe.nnz == plain.nnz == np.count_nonzero(codes)
    xq = np.full((16, 70), 255, np.uint8)
    xq[:, 3] = 0
    for path in (p for p in isa.PATHS if isa.supported(p)):
        got = int8_matmul(safe, activations(safe, xq, path, True), 70, path)
        np.testing.assert_array_equal(got, naive_int8_products(codes, xq), err_msg=path)
    with pytest.raises(ValueError, match=r"pack_block4_int8\(codes, pair_safe=True\)"):
        int8_matmul(plain, activations(plain, xq, "avx2", True), 70, "avx2")


@pytest.mark.parametrize("blocked", LAYOUTS)
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("t", [1, 50, 128, 333])
def test_linear_epilogue_is_bias_then_scale_on_the_exact_sum(path, t, blocked):
    rng = np.random.default_rng(t)
    codes, xq = block_codes(48, 96, 0.7, rng), rng.integers(0, 256, (96, t)).astype(np.uint8)
    bias, scale = rng.standard_normal(48).astype(np.float32) * 100, rng.random(48).astype(np.float32) / 1000
    weight = pack_block4_int8(codes, pair_safe=True)
    xb = activations(weight, xq, path, blocked)
    exact = naive_int8_products(codes, xq).astype(np.float32)  # |Σ| < 2²⁴ here: exact in float32
    expected = (exact + bias[:, None]) * scale[:, None]
    np.testing.assert_array_equal(int8_linear_t(weight, xb, t, bias, scale, path=path), expected)
    np.testing.assert_allclose(int8_linear_t(weight, xb, t, bias, scale, gelu=True, path=path),
                               gelu_inplace(expected.copy()), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("k,t", [(4, 1), (70, 37), (768, 130)])
@pytest.mark.parametrize("tb", [32, 128])
def test_quantize_interleave4_matches_quantize_then_interleave(k, t, tb):
    rng = np.random.default_rng(k)
    xt = (rng.standard_normal((k, t)) * 3).astype(np.float32)
    xt[0, :4] = [0.05, 0.15, -0.05, 1e9][:t]  # ties at scale 0.1 round half to even; saturation
    np.testing.assert_array_equal(quantize_u8_interleave4(xt, 0.1, 128, tb),
                                  interleave4(quantize_u8(xt, 0.1, 128), tb, pad=128))


def deinterleave(codes4, t):
    """``(blocks, N/4, TB, 4)`` codes back to ``(N, t)``: rows 4c + q, the real tokens."""
    blocks, groups, tb, _ = codes4.shape
    return codes4.transpose(1, 3, 0, 2).reshape(4 * groups, blocks * tb)[:, :t]


@pytest.mark.parametrize("blocked", LAYOUTS)
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("n,t", [(4, 1), (48, 50), (200, 333)])
@pytest.mark.parametrize("gelu", [False, True])
def test_interleaved_codes_out_are_the_codes_of_the_fp32_output(path, n, t, blocked, gelu):
    """Four rows at a time, codes interleaved (the next 1×4-block Linear's input): quantize_u8_interleave4 of the fp32
    output bit for bit, saturation at both ends included, over row ranges split between tasks."""
    rng = np.random.default_rng(n + t)
    codes, xq = block_codes(n, 96, 0.6, rng), rng.integers(0, 256, (96, t)).astype(np.uint8)
    bias, scale = rng.standard_normal(n).astype(np.float32) * 2000, rng.random(n).astype(np.float32) / 1000
    weight = pack_block4_int8(codes, pair_safe=True)
    xb = activations(weight, xq, path, blocked)
    fp32 = int8_linear_t(weight, xb, t, bias, scale, gelu=gelu, path=path)
    got = int8_linear_t(weight, xb, t, bias, scale, gelu=gelu, path=path, blocked_out=True, codes=(0.02, 77),
                        interleaved=True)
    tb = (int8_quads.TOKENS if blocked else TOKENS)[path]
    assert got.shape == (-(-t // tb), n // 4, tb, 4)
    want = quantize_u8(fp32, 0.02, 77)
    np.testing.assert_array_equal(deinterleave(got, t), want)
    if t > 1:  # saturation: at both ends (GELU's outputs stay above the lowest code)
        assert ({255} if gelu else {0, 255}) <= set(np.unique(want).tolist())


def test_interleaved_codes_out_needs_codes_and_rows_in_fours():
    rng = np.random.default_rng(1)
    for n in (6, 8):
        weight = pack_block4_int8(block_codes(n, 16, 0.5, rng), pair_safe=True)
        xb = activations(weight, rng.integers(0, 256, (16, 9)).astype(np.uint8), isa.integer_path())
        ones = np.ones(n, np.float32)
        with pytest.raises(ValueError, match="interleaved output needs codes and a multiple of 4 output rows"):
            int8_linear_t(weight, xb, 9, ones, ones, blocked_out=True, codes=None if n == 8 else (0.1, 3),
                          interleaved=True)


def test_row_ranges_in_fours_cover_every_row_once():
    from sparsecore.kernels.row_kernels import row_bounds

    rng = np.random.default_rng(2)
    indptr = np.concatenate([[0], np.cumsum(rng.integers(0, 50, 203))])
    for chunks in (1, 2, 3, 7, 60):
        bounds = row_bounds(indptr, chunks, align=4)
        assert bounds[0] == 0 and bounds[-1] == 203 and bounds.size == chunks + 1
        assert np.all(np.diff(bounds) >= 0) and np.all(bounds[1:-1] % 4 == 0)
