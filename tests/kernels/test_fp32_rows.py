"""Token-blocked fp32 sparse Linears: every float path against float64 products and exact integer sums, the layout,
the row split, bad inputs, and the machine code of the 512-bit and 256-bit paths for CPUs this host may not be.
"""

import platform

import numba as nb
import numpy as np
import pytest

from sparsecore.kernels import isa
from sparsecore.kernels.fp32_packing import MAX_COLUMNS, TOKENS, pack_rows, panel_columns
from sparsecore.kernels.fp32_rows import SHAPES, activation_shape, fp32_linear_t, row_assembly, token_blocks
from sparsecore.kernels.sparse_matmul import gelu_inplace

PATHS = [pytest.param(p, marks=pytest.mark.skipif(not isa.float_supported(p), reason=f"this CPU cannot run {p} "
                                                  f"(needs {', '.join(isa.FLOAT_NEEDS[p])})")) for p in isa.FLOAT_PATHS]
X86 = platform.machine() in ("x86_64", "AMD64")


def pruned(n, k, sparsity, kind, rng, values=None):
    w = rng.standard_normal((n, k)).astype(np.float32) if values is None else values
    if kind == "block4":
        keep = np.repeat(rng.random((n, k // 4)) >= sparsity, 4, axis=1)
    else:
        keep = rng.random((n, k)) >= sparsity
    return np.where(keep, w, 0).astype(np.float32)


def run(w, x, kind, path, **kw):
    return fp32_linear_t(pack_rows(w, kind), token_blocks(x), x.shape[1], path=path, **kw)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("kind", ["csr", "block4"])
@pytest.mark.parametrize("n,k,t", [(1, 4, 1), (5, 8, 17), (37, 72, 213), (16, 768, 128), (3, 3072, 64), (8, 12, 0)])
@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9, 1.0])
def test_against_float64_products(path, kind, n, k, t, sparsity):
    rng = np.random.default_rng(n * 1000 + k + t)
    w = pruned(n, k, sparsity, kind, rng)
    x = rng.standard_normal((k, t)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    got = run(w, x, kind, path, bias=bias)
    assert got.dtype == np.float32 and got.shape == (n, t)
    expected = w.astype(np.float64) @ x + bias[:, None]
    bound = 1e-6 * (np.abs(w).astype(np.float64) @ np.abs(x) + 1) * max(1, np.sqrt(k))
    assert np.all(np.abs(got - expected) <= bound)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("kind", ["csr", "block4"])
def test_small_integers_sum_exactly_and_every_column_lands_where_it_belongs(path, kind):
    """Integer weights and activations: every partial sum is exact in fp32, so any misplaced column or token shows."""
    rng = np.random.default_rng(7)
    n, k, t = 70, 200, 2 * TOKENS + 3
    w = pruned(n, k, 0.6, kind, rng, rng.integers(-8, 9, (n, k)).astype(np.float32))
    w[3] = 0  # an empty row
    w[4, [0, k - 1]] = [5, -7]  # first and last column only (one entry each for csr: padded to two)
    x = rng.integers(-16, 17, (k, t)).astype(np.float32)
    np.testing.assert_array_equal(run(w, x, kind, path), (w.astype(np.int64) @ x.astype(np.int64)).astype(np.float32))


@pytest.mark.parametrize("kind", ["csr", "block4"])
def test_every_runnable_path_and_thread_count_gives_the_same_bits(kind):
    rng = np.random.default_rng(3)
    w = pruned(300, 384, 0.85, kind, rng)
    x = rng.standard_normal((384, 777)).astype(np.float32)
    threads = nb.get_num_threads()
    results = {}
    for path in [p for p in isa.FLOAT_PATHS if isa.float_supported(p)]:
        for count in sorted({1, threads}):
            nb.set_num_threads(count)
            try:
                results[path, count] = run(w, x, kind, path)
            finally:
                nb.set_num_threads(threads)
    for (path, count), got in results.items():  # one path's sums do not depend on how the rows were split
        np.testing.assert_array_equal(got, results[path, 1], err_msg=f"{path}, {count} threads")
    reference = next(iter(results.values()))
    for got in results.values():  # paths differ only in summation order
        np.testing.assert_allclose(got, reference, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("path", PATHS)
def test_epilogue_is_bias_then_gelu(path):
    rng = np.random.default_rng(5)
    w, x = pruned(48, 96, 0.7, "csr", rng), rng.standard_normal((96, 150)).astype(np.float32)
    bias = rng.standard_normal(48).astype(np.float32)
    plain = run(w, x, "csr", path, bias=bias)
    np.testing.assert_allclose(run(w, x, "csr", path, bias=bias, gelu=True), gelu_inplace(plain.copy()),
                               rtol=1e-6, atol=1e-7)


def test_packing_pads_csr_rows_to_even_counts_with_zero_weights():
    w = np.zeros((4, 12), np.float32)
    w[0, [1, 5, 9]] = [1, 2, 3]  # odd: padded
    w[1, [0, 11]] = [4, 5]
    w[3, 2] = 6  # one entry: padded
    csr = pack_rows(w, "csr")
    assert list(csr.indptr) == [0, 4, 6, 6, 8] and csr.nnz == 6
    assert list(csr.index[:4]) == [1, 5, 9, 9] and csr.values[3] == 0 and list(csr.index[6:]) == [2, 2]
    whole = np.zeros((4, 12), np.float32)
    whole[0] = np.arange(1, 13)
    whole[1, 4:8] = [1, 2, 0, 3]  # a stored block keeps its zero weight
    blocks = pack_rows(whole, "block4")
    assert blocks.kind == "block4" and blocks.values.shape == (blocks.indptr[-1], 4)
    assert list(np.diff(blocks.indptr)) == [3, 1, 0, 0] and list(blocks.index) == [0, 1, 2, 1] and blocks.nnz == 15


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("kind", ["csr", "block4"])
def test_panels_of_k_give_the_sums_of_one_panel(path, kind):
    """K cut into panels (partial sums carried between them, groups of rows, empty row/panel runs): integer sums are
    exact on every path; one-chain paths keep each row's summation order, so float sums keep their bits too."""
    rng = np.random.default_rng(11)
    n, k, t = 300, 1000, 2 * TOKENS + 5  # more rows than a group, K not a multiple of the panel
    w = pruned(n, k, 0.8, kind, rng, rng.integers(-8, 9, (n, k)).astype(np.float32))
    w[5] = 0
    w[6, :512] = 0  # no entries on the first panels
    x = rng.integers(-16, 17, (k, t)).astype(np.float32)
    exact = (w.astype(np.int64) @ x.astype(np.int64)).astype(np.float32)
    floats = rng.standard_normal((k, t)).astype(np.float32)
    one = fp32_linear_t(pack_rows(w, kind, panel=k), token_blocks(floats), t, path=path)
    for panel in (4, 128, 200, 512):
        packed = pack_rows(w, kind, panel=panel)
        assert packed.panels == -(-k // panel)
        np.testing.assert_array_equal(fp32_linear_t(packed, token_blocks(x), t, path=path), exact)
        got = fp32_linear_t(packed, token_blocks(floats), t, path=path, gelu=True, blocked_out=True)
        got = got.transpose(1, 0, 2).reshape(n, -1)[:, :t]
        if SHAPES.get(path, (0, 0, 1))[2] == 1:
            np.testing.assert_array_equal(got, gelu_inplace(one.copy()))
        else:
            # two chains sum in another order: float32 rounding, bounded by eps · Σ|w·x| (GELU's slope is < 1.13)
            bound = 2e-6 * (np.abs(w) @ np.abs(floats)) + 1e-6
            assert np.all(np.abs(got - gelu_inplace(one.copy())) <= bound)


def test_panel_packing_keeps_each_run_on_its_panel_and_even():
    rng = np.random.default_rng(2)
    w = pruned(40, 300, 0.7, "csr", rng)
    for group in (1, 7, 16, 40, 128):
        packed = pack_rows(w, "csr", panel=64, group=group)
        assert packed.panel == 64 and packed.panels == 5 and packed.nnz == np.count_nonzero(w)
        assert packed.segments[-1] == packed.index.size == packed.indptr[-1]
        for r in range(40):
            sizes = []
            for p in range(5):
                j0, j1 = packed.run(r, p)
                columns = packed.index[j0:j1].astype(int)
                assert (j1 - j0) % 2 == 0 and np.all(columns // 64 == p) and np.all(np.diff(columns) >= 0)
                stored = np.flatnonzero(w[r, 64 * p:64 * (p + 1)]) + 64 * p
                assert set(columns) == set(stored)  # a padded run repeats its last column with a zero weight
                np.testing.assert_array_equal(packed.values[j0:j1][packed.values[j0:j1] != 0], w[r, stored])
                sizes.append(j1 - j0)
            assert packed.indptr[r + 1] - packed.indptr[r] == sum(sizes)
    blocks = pack_rows(np.ones((2, 300), np.float32), "block4", panel=64)
    assert blocks.panels == 5 and [np.diff(blocks.run(0, p))[0] for p in range(5)] == [16, 16, 16, 16, 11]
    odd = pack_rows(np.ones((3, 6), np.float32))  # K not a multiple of 4: one panel
    assert odd.panels == 1 and list(odd.indptr) == [0, 6, 12, 18] and list(odd.segments) == [0, 6, 12, 18]
    assert pack_rows(np.ones((3, 6), np.float32), panel=8).panels == 1
    empty = pack_rows(np.ones((0, 6), np.float32))
    assert list(empty.indptr) == [0] and empty.panels == 1 and list(empty.segments) == [0]


def test_runs_are_stored_group_by_group_then_panel_by_panel():
    """Rows 0-2 form a group of 3, rows 3-4 the short last one: within a group panel 0's runs come first, in row order
    (or the longest first, ties in row order), empty runs left out, then panel 1's; a one-panel matrix is row-major,
    empty rows kept."""
    columns = {0: ([0], [4, 5, 6]), 1: ([0, 1, 2], []), 2: ([3], [7]), 3: ([0, 1], [4, 5]), 4: ([], [4, 5, 6, 7])}
    w = np.zeros((5, 8), np.float32)
    for r, panels in columns.items():
        for cols in panels:
            w[r, cols] = [10 * r + c + 1 for c in cols]
    rows = pack_rows(w, "csr", panel=4, group=3)  # runs padded to even: sizes 2/4, 4/0, 2/2, 2/2, 0/4
    assert rows.panels == 2 and list(rows.group_runs) == [0, 3, 5, 6, 8]
    assert list(rows.run_row) == [0, 1, 2, 0, 2, 0, 0, 1]  # r0 r1 r2 | r0 r2 | r3 | r3 r4
    assert list(rows.values[rows.segments[:-1]]) == [1, 11, 24, 5, 28, 31, 35, 45]  # each run's first weight
    grouped = pack_rows(w, "csr", panel=4, group=3, longest_first=True)
    assert grouped.panels == 2 and list(grouped.group_runs) == [0, 3, 5, 6, 8]
    assert list(grouped.run_row) == [1, 0, 2, 0, 2, 0, 1, 0]  # rows within their group: r1 r0 r2 | r0 r2 | r3 | r4 r3
    assert list(np.diff(grouped.segments)) == [4, 2, 2, 4, 2, 2, 4, 2]
    assert list(grouped.values[grouped.segments[:-1]]) == [11, 1, 24, 5, 28, 31, 45, 35]  # each run's first weight
    for packed in (rows, grouped):
        for r, panels in columns.items():
            for p, cols in enumerate(panels):
                j0, j1 = packed.run(r, p)
                assert list(packed.index[j0:j1][:len(cols)]) == cols and j1 - j0 == len(cols) + len(cols) % 2
    one = pack_rows(w, "csr", panel=8, group=3)
    assert one.panels == 1 and list(one.run_row) == [0, 1, 2, 0, 1] and list(one.group_runs) == [0, 3, 5]
    np.testing.assert_array_equal(one.segments, one.indptr)
    assert list(one.values[one.indptr[1]:one.indptr[2]]) == [11, 12, 13, 0]  # row 1: three weights and a pad
    with pytest.raises(ValueError, match="group must be 1 to 65536 rows"):
        pack_rows(w, group=0)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("kind", ["csr", "block4"])
def test_every_packing_group_gives_the_same_bits(path, kind, monkeypatch):
    """The kernel's row groups follow the packing's; groups of 1 row, of sizes that do not divide N (so a task's
    row range straddles two of them) and of more rows than there are, runs longest first or in row order, give the
    same bits, batch 1 and batch 3."""
    rng = np.random.default_rng(5)
    w = pruned(150, 256, 0.8, kind, rng)
    for t in (2 * TOKENS, 3 * TOKENS - 5):
        xb = token_blocks(rng.standard_normal((256, t)).astype(np.float32))
        want = fp32_linear_t(pack_rows(w, kind, panel=64, group=1), xb, t, gelu=True, path=path)
        for group, longest_first in ((5, False), (64, False), (128, False), (1000, False), (64, True)):
            for threads in (1, 2):
                nb.set_num_threads(min(threads, nb.config.NUMBA_NUM_THREADS))
                packed = pack_rows(w, kind, panel=64, group=group, longest_first=longest_first)
                got = fp32_linear_t(packed, xb, t, gelu=True, path=path)
                np.testing.assert_array_equal(got, want)
        nb.set_num_threads(nb.config.NUMBA_NUM_THREADS)


def test_panel_width_follows_density_l1_and_l2():
    l2 = 512 << 10  # at most 1024 columns per panel (256 KB of one token block)
    assert panel_columns(100, 20, l2=l2) == 100  # narrower than an L1 panel: one panel
    assert panel_columns(768, 154, l2=l2) == 128  # 80% sparse: ~24 weights per row and panel, the L1-sized panel
    assert panel_columns(384, 77, l2=l2) == 128
    assert panel_columns(768, 77, l2=l2) == 192  # 90%: ~240 columns wanted, K in four equal panels
    assert panel_columns(768, 38, l2=l2) == 384  # 95%: K in two equal panels
    assert panel_columns(768, 77, "block4", l2=l2) == 384  # blocks: twice the weights per run (a quarter the entries)
    assert panel_columns(3072, 30, l2=l2) == 1024  # capped by the L2
    assert panel_columns(3072, 30, l2=4 << 20) == 1536
    assert panel_columns(1000, 1000, l2=l2) == 128 and panel_columns(1000, 0, l2=l2) == 1000


def test_token_blocks_layout_and_zero_padding():
    x = np.arange(5 * 130, dtype=np.float32).reshape(5, 130)
    xb = token_blocks(x)
    assert xb.shape == activation_shape(5, 130) == (3, 5, TOKENS)
    np.testing.assert_array_equal(xb[1, 2], x[2, TOKENS:2 * TOKENS])
    np.testing.assert_array_equal(xb[2, 4, :2], x[4, 128:]) and not xb[2, :, 2:].any()
    np.testing.assert_array_equal(token_blocks(np.asfortranarray(x)), xb)  # any strides in


def test_bad_inputs_are_one_clear_error():
    w = np.eye(8, dtype=np.float32)
    with pytest.raises(ValueError, match="2-D float32"):
        pack_rows(w.astype(np.float64))
    with pytest.raises(ValueError, match="divisible by 4"):
        pack_rows(np.ones((2, 6), np.float32), "block4")
    with pytest.raises(ValueError, match="kind must be"):
        pack_rows(w, "coo")
    with pytest.raises(ValueError, match="uint16"):
        pack_rows(np.zeros((1, MAX_COLUMNS + 1), np.float32))
    with pytest.raises(ValueError, match="panel must be a positive multiple of 4"):
        pack_rows(w, panel=6)
    packed = pack_rows(w)
    with pytest.raises(ValueError, match=r"activations must be C-contiguous \(1, 8, 64\) float32"):
        fp32_linear_t(packed, np.zeros((1, 9, TOKENS), np.float32), 5)
    with pytest.raises(ValueError, match="bias must have shape"):
        fp32_linear_t(packed, token_blocks(np.zeros((8, 5), np.float32)), 5, bias=np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="cannot run the fp32 row kernels"):
        fp32_linear_t(packed, token_blocks(np.zeros((8, 5), np.float32)), 5, path="neon")
    with pytest.raises(TypeError, match="RowsF32"):
        fp32_linear_t(w, token_blocks(np.zeros((8, 5), np.float32)), 5)


def test_float_path_follows_a_forced_integer_path(monkeypatch):
    assert isa.float_supported(isa.float_path())
    monkeypatch.setenv("SPARSECORE_ISA", "generic")
    assert isa.float_path() == "generic"
    if isa.supported("avx2"):
        monkeypatch.setenv("SPARSECORE_ISA", "avx2")
        assert isa.float_path() == "avx2"


def _loop_lines(assembly: str) -> list[str]:
    """Instructions of the row kernel's inner loop: from the loop's label to its backward branch."""
    lines = [ln.strip() for ln in assembly.splitlines()]
    start = next(i for i, ln in enumerate(lines) if ln.startswith(".LBB0_") and ln.endswith(":") and any(
        s.startswith("vfmadd") for s in lines[i:i + 40]))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith(("jl", "jg", "jne")))
    return lines[start + 1:end]


@pytest.mark.skipif(not X86, reason="the vector paths are x86 code")
@pytest.mark.parametrize("path,cpu,register", [("avx512", "icelake-server", "%zmm"), ("avx512", "znver4", "%zmm"),
                                               ("avx2", "haswell", "%ymm"), ("avx2", "znver3", "%ymm")])
@pytest.mark.parametrize("kind", ["csr", "block4"])
@pytest.mark.parametrize("add", [False, True])
def test_machine_code_is_fmas_on_full_vectors_without_spills(path, cpu, register, kind, add):
    loop = _loop_lines(row_assembly(path, kind, cpu, add))
    _, vectors, chains = SHAPES[path]
    fmas = [ln for ln in loop if ln.startswith("vfmadd")]
    per_iteration = vectors * (4 if kind == "block4" else chains)
    assert fmas and len(fmas) % per_iteration == 0 and all(register in ln for ln in fmas)
    assert not any("%rsp" in ln or "%rbp" in ln for ln in loop), "a spill inside the inner loop"


@pytest.mark.skipif(not X86, reason="the vector paths are x86 code")
@pytest.mark.parametrize("path,cpu,register", [("avx512", "icelake-server", "%zmm"), ("avx512", "znver4", "%zmm"),
                                               ("avx2", "haswell", "%ymm"), ("avx2", "znver3", "%ymm")])
@pytest.mark.parametrize("kind", ["csr", "block4"])
def test_the_loop_over_runs_keeps_everything_in_registers(path, cpu, register, kind):
    """The loop over a (group, panel)'s runs: the row kernel's FMAs inside, and nothing written to the stack (every
    pointer, bound and accumulator stays in a register across runs; the stand-alone function reads its last two
    arguments from the stack once, on entry)."""
    code = row_assembly(path, kind, cpu, runs=True)
    lines = [ln.strip() for ln in code.splitlines() if ln.strip() and not ln.strip().startswith(".")]
    assert any(ln.startswith("vfmadd") and register in ln for ln in lines)
    assert not any(ln.endswith("(%rsp)") for ln in lines), "a spill in the loop over runs"


@pytest.mark.parametrize("k,t", [(3, 1), (70, 64), (200, 131)])
def test_float_codes_in_blocks_equal_quantize_then_block(k, t):
    from sparsecore.kernels.quantize import quantize_f32, quantize_f32_blocked

    rng = np.random.default_rng(k + t)
    xt = rng.standard_normal((k, t)).astype(np.float32) * 8
    xt[0, 0] = 0.05 * 2.5  # a tie: rounds half to even, as QuantizeLinear does
    got = quantize_f32_blocked(xt, 0.05, 120, TOKENS)
    assert got.shape == activation_shape(k, t) and got.dtype == np.float32
    want = token_blocks(quantize_f32(xt, 0.05, 120))
    for b in range(got.shape[0]):
        width = min(TOKENS, t - b * TOKENS)
        np.testing.assert_array_equal(got[b, :, :width], want[b, :, :width])
        assert np.all(got[b, :, width:] == 120)  # tokens past T hold the zero point's code
    with pytest.raises(ValueError, match="C-contiguous float32 array of shape"):
        quantize_f32_blocked(xt, 0.05, 120, TOKENS, out=np.zeros((1, 1, 1), np.float32))


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("kind", ["csr", "block4"])
def test_rows_grouped_before_their_epilogues_give_the_row_by_row_bits(path, kind, monkeypatch):
    """A one-panel Linear sums EPILOGUE_ROWS rows, then runs their epilogues: group sizes of one row, of a size that
    does not divide the rows and of more rows than there are give the same bits, GELU or not."""
    from sparsecore.kernels import fp32_rows

    rng = np.random.default_rng(3)
    w, x = pruned(45, 64, 0.9, kind, rng), rng.standard_normal((64, 150)).astype(np.float32)
    weight, xb = pack_rows(w, kind), token_blocks(x)
    assert weight.panels == 1
    results = {}
    for group in (1, 7, 32, 100):
        monkeypatch.setattr(fp32_rows, "EPILOGUE_ROWS", group)
        for gelu in (False, True):
            results[group, gelu] = fp32_linear_t(weight, xb, 150, gelu=gelu, path=path)
    for (group, gelu), got in results.items():
        np.testing.assert_array_equal(got, results[1, gelu])


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("kind", ["csr", "block4"])
def test_a_row_range_over_every_token_block_gives_the_per_block_bits(path, kind, monkeypatch):
    """Up to BLOCKS_INSIDE token blocks a task is a row range run over every block (each weight read once per call);
    with that off the bits are the same — one panel and K in panels, GELU, token-blocked output, one or two threads."""
    from sparsecore.kernels import fp32_rows

    rng = np.random.default_rng(4)
    w = pruned(150, 256, 0.8, kind, rng)
    for t in (TOKENS + 1, 2 * TOKENS):
        xb = token_blocks(rng.standard_normal((256, t)).astype(np.float32))
        results = {}
        for panel in (256, 64):
            weight = pack_rows(w, kind, panel=panel)
            for inside in (2, 0):
                monkeypatch.setattr(fp32_rows, "BLOCKS_INSIDE", inside)
                for threads in (1, 2):
                    nb.set_num_threads(min(threads, nb.config.NUMBA_NUM_THREADS))
                    results[panel, inside, threads] = (fp32_linear_t(weight, xb, t, gelu=True, path=path),
                                                       fp32_linear_t(weight, xb, t, path=path, blocked_out=True))
        nb.set_num_threads(nb.config.NUMBA_NUM_THREADS)
        for (panel, _, _), outputs in results.items():
            for got, want in zip(outputs, results[panel, 0, 1]):
                np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("panel", [64, 256])
def test_outputs_written_with_streaming_stores_hold_the_same_bits(path, panel, monkeypatch):
    """With every output counted as large (``STREAM_BYTES`` 0), aligned outputs are written with non-temporal stores —
    (N, T) rows when T is a multiple of 16, token-blocked always — and an output that is not aligned keeps ordinary
    stores; the values are the same bits either way, one panel or several."""
    from sparsecore.deploy.hugepages import huge_page_arrays
    from sparsecore.kernels import fp32_rows

    rng = np.random.default_rng(11)
    w = pruned(96, 256, 0.8, "csr", rng)
    packed = pack_rows(w, "csr", panel=panel)
    for t in (2 * TOKENS, 3 * TOKENS - 16, 3 * TOKENS - 5):
        xb = token_blocks(rng.standard_normal((256, t)).astype(np.float32))
        want = fp32_linear_t(packed, xb, t, gelu=True, path=path)
        want_blocked = fp32_linear_t(packed, xb, t, gelu=True, path=path, blocked_out=True)
        monkeypatch.setattr(fp32_rows, "STREAM_BYTES", 0)
        buffers = huge_page_arrays({"rows": (96 * t + 16,), "blocked": activation_shape(96, t)})
        aligned = buffers["rows"][:96 * t].reshape(96, t)
        shifted = buffers["rows"][1:96 * t + 1].reshape(96, t)  # 4 bytes past a 64-byte boundary
        for out in (aligned, shifted):
            np.testing.assert_array_equal(fp32_linear_t(packed, xb, t, gelu=True, path=path, out=out), want)
        assert fp32_rows.streams(aligned, t, False) == (t % 16 == 0) and not fp32_rows.streams(shifted, t, False)
        got = fp32_linear_t(packed, xb, t, gelu=True, path=path, out=buffers["blocked"], blocked_out=True)
        np.testing.assert_array_equal(got, want_blocked)
        assert fp32_rows.streams(buffers["blocked"], t, True)
        monkeypatch.undo()
        assert not fp32_rows.streams(buffers["blocked"], t, True)  # 16 MB and more only


@pytest.mark.skipif(not X86, reason="the vector paths are x86 code")
@pytest.mark.parametrize("lanes,cpu,store", [(16, "znver4", "vmovntps\t%zmm"), (8, "haswell", "vmovntps\t%ymm")])
def test_streaming_epilogue_stores_are_non_temporal(lanes, cpu, store):
    """The full vectors of a streaming epilogue leave through ``vmovntps`` (the one-element rest through ordinary
    stores); the ordinary epilogue has none."""
    from sparsecore.kernels.epilogue import epilogue_assembly

    streaming = epilogue_assembly(lanes, False, True, cpu, stream=True)
    assert store in streaming
    assert "vmovntps" not in epilogue_assembly(lanes, False, True, cpu)
