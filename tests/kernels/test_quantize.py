"""Activation quantization kernels against ONNX QuantizeLinear semantics written out in numpy."""

import numpy as np
import pytest
from reference import naive_fake_quant

from sparsecore.kernels.quantize import codes_inplace, quantize_f32, quantize_u8


def numpy_quantize(x, scale, zero):
    return np.clip(np.rint(x / np.float32(scale)) + zero, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("zero", [0, 1, 128, 255])
@pytest.mark.parametrize("shape", [(1,), (7, 3), (384, 1000)])  # 384 000: many parallel chunks, the last partial
def test_quantize_u8_matches_quantize_linear(zero, shape):
    rng = np.random.default_rng(zero + len(shape))
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    scale = 0.02
    np.testing.assert_array_equal(quantize_u8(x, scale, zero), numpy_quantize(x, scale, zero))


@pytest.mark.parametrize("zero", [0, 128, 255])
def test_float_codes_are_the_uint8_codes(zero):
    rng = np.random.default_rng(zero)
    x = (rng.standard_normal((300, 1001)) * 4).astype(np.float32)
    x[0, :6] = [0.01, 0.03, -0.01, 1e9, -1e9, np.inf]  # ties at scale 0.02, saturation
    got = quantize_f32(x, 0.02, zero)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, quantize_u8(x, 0.02, zero).astype(np.float32))
    out = np.full_like(x, np.nan)
    assert quantize_f32(x, 0.02, zero, out=out) is out and np.array_equal(out, got)
    with pytest.raises(ValueError, match="out must be"):
        quantize_f32(x, 0.02, zero, out=np.empty(x.shape, np.uint8))


def test_ties_round_half_to_even_and_saturate():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 1e9, -1e9, 254.5, np.inf, -np.inf], np.float32)
    np.testing.assert_array_equal(quantize_u8(x, 1.0, 0), [0, 2, 2, 0, 0, 255, 0, 254, 255, 0])
    np.testing.assert_array_equal(quantize_u8(x, 1.0, 10), [10, 12, 12, 10, 8, 255, 0, 255, 255, 0])


@pytest.mark.parametrize("lo, hi, zero", [(0, 255, 120), (-128, 127, 0), (0, 255, 0)])
def test_codes_match_reference(lo, hi, zero):
    """codes · scale is the reference's quantize-dequantize value (x̂ = (q − z)·s)."""
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((65, 301)) * 2).astype(np.float32)
    x[0, :3] = [0.005, 0.015, -0.005]  # ties at scale 0.01: half to even
    codes = codes_inplace(x.copy(), 0.01, zero, lo, hi)
    assert np.all(codes == np.round(codes)) and codes.min() >= lo - zero and codes.max() <= hi - zero
    np.testing.assert_array_equal(codes * np.float32(0.01), naive_fake_quant(x, 0.01, zero, lo, hi).astype(np.float32))


def test_bad_parameters_are_refused():
    x = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match="scale"):
        quantize_u8(x, 0.0, 0)
    with pytest.raises(ValueError, match="zero_point"):
        quantize_u8(x, 1.0, 300)
    with pytest.raises(ValueError, match="float32"):
        quantize_u8(x.astype(np.float64), 1.0, 0)


@pytest.mark.parametrize("path", ["avx512", "avx2", "generic"])
@pytest.mark.parametrize("k, t", [(8, 1), (12, 17), (10, 100), (768, 130)])
def test_token_blocked_and_interleaved_codes_on_every_path(path, k, t):
    """The vector code (full vectors, then one token at a time) gives numpy's codes in both blocked layouts; features past
    K (interleaved) and tokens past T get the zero point."""
    from sparsecore.kernels import isa
    from sparsecore.kernels.quantize import _quantize_blocked, _quantize_interleave4

    if not isa.float_supported(path):
        pytest.skip(f"this CPU cannot run {path}")
    rng = np.random.default_rng(k + t)
    x = (rng.standard_normal((k, t)) * 4).astype(np.float32)
    x[0, : min(t, 5)] = [0.01, 0.03, 1e9, -np.inf, -0.01][: min(t, 5)]  # ties at scale 0.02, saturations
    zero, blocks = 120, -(-t // 64)
    want = np.full((k + 3, blocks * 64), zero, np.uint8)
    want[:k, :t] = numpy_quantize(x, 0.02, zero)
    blocked = np.zeros((blocks, k, 64), np.uint8)
    _quantize_blocked(isa.marker(path), x, np.float32(0.02), zero, blocked)
    np.testing.assert_array_equal(blocked, want[:k].reshape(k, blocks, 64).transpose(1, 0, 2))
    quads = -(-k // 4)
    interleaved = np.zeros((blocks, quads, 64, 4), np.uint8)
    _quantize_interleave4(isa.marker(path), x, np.float32(0.02), zero, interleaved)
    np.testing.assert_array_equal(interleaved, want[:4 * quads].reshape(quads, 4, blocks, 64).transpose(2, 0, 3, 1))
