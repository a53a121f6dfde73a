"""The register-blocked micro-kernel (LLVM vector IR) against a float64 reference and exact integer sums."""

import numba as nb
import numpy as np
import pytest

from sparsecore.kernels.simd import WIDTH, row_tile


@nb.njit
def _tiles(index, values, starts, xs, out):
    # every row r: its entries starts[r]:starts[r+1], every full tile of WIDTH tokens
    for r in range(out.shape[0]):
        for t0 in range(0, xs.shape[1] - WIDTH + 1, WIDTH):
            row_tile(index, values, starts[r], starts[r + 1], xs, t0, out[r])


def reference(index, values, starts, xs, out0):
    out = out0.astype(np.float64)
    full = xs.shape[1] // WIDTH * WIDTH
    block = values.shape[1] if values.ndim == 2 else 1
    for r in range(out.shape[0]):
        for j in range(starts[r], starts[r + 1]):
            for q in range(block):
                w = values[j, q] if values.ndim == 2 else values[j]
                out[r, :full] += float(w) * xs[block * int(index[j]) + q, :full].astype(np.float64)
    return out


@pytest.mark.parametrize("k, t, per_row", [(8, 64, 3), (300, 200, 17), (70_000, 64, 2), (64, 128, 0)])
@pytest.mark.parametrize("kind", ["fp32", "int8", "block4"])
def test_row_tile_matches_reference(k, t, per_row, kind):
    rng = np.random.default_rng(k + t)
    rows = 6
    starts = np.arange(rows + 1) * per_row
    starts[3:] -= per_row  # row 2 is empty
    index = rng.integers(0, k // 4 if kind == "block4" else k, starts[-1]).astype(np.int32 if k > 65536 else np.uint16)
    if kind == "block4":  # values (S, 4): entry j covers columns 4·index[j] … 4·index[j] + 3
        values = rng.standard_normal((starts[-1], 4)).astype(np.float32)
        xs = rng.standard_normal((k, t)).astype(np.float32)
    elif kind == "fp32":
        values = rng.standard_normal(starts[-1]).astype(np.float32)
        xs = rng.standard_normal((k, t)).astype(np.float32)
    else:
        values = rng.integers(-128, 128, starts[-1]).astype(np.int8)
        xs = rng.integers(0, 256, (k, t)).astype(np.uint8)
    out0 = rng.standard_normal((rows, t)).astype(np.float32)
    if kind == "int8":
        out0 = np.round(out0 * 100)  # integer start values: the integer sums must come out exact
    got = out0.copy()
    _tiles(index, values, starts, xs, got)
    want = reference(index, values, starts, xs, out0)
    full = t // WIDTH * WIDTH
    np.testing.assert_array_equal(got[:, full:], out0[:, full:])  # the tail is the caller's
    if kind == "int8":
        np.testing.assert_array_equal(got, want.astype(np.float32))
    else:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * per_row)


def test_saturated_int8_codes_are_exact():
    k = 512
    index = np.arange(k, dtype=np.uint16)
    xs = np.full((k, WIDTH), 255, np.uint8)
    for code in (-128, 127):
        out = np.zeros((1, WIDTH), np.float32)
        _tiles(index, np.full(k, code, np.int8), np.array([0, k]), xs, out)
        assert np.all(out == code * 255 * k)


@pytest.mark.skipif(nb.config.DISABLE_JIT, reason="typing errors exist only when compiling")
def test_unsupported_types_do_not_compile():
    with pytest.raises(nb.core.errors.TypingError):
        _tiles(np.zeros(1, np.int64), np.zeros(1, np.float32), np.array([0, 1]), np.zeros((1, WIDTH), np.float32),
               np.zeros((1, WIDTH), np.float32))
