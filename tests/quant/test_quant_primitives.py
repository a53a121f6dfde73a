"""Quantization maths vs a naive NumPy reference and vs torch.fake_quantize_per_*."""

import numpy as np
import pytest
import torch
from reference import naive_fake_quant, naive_qparams

from sparsecore.quant.primitives import SCALE_EPS, choose_qparams, dequantize, fake_quantize, quant_range, quantize


@pytest.mark.parametrize("bits, symmetric, reduce, expect", [
    (8, True, False, (-128, 127)), (8, False, False, (0, 255)), (4, True, False, (-8, 7)),
    (2, False, False, (0, 3)), (8, False, True, (0, 127)), (8, True, True, (-64, 63))])
def test_quant_range(bits, symmetric, reduce, expect):
    assert quant_range(bits, symmetric, reduce) == expect


@pytest.mark.parametrize("bits", [1, 9, 16])
def test_quant_range_rejects_bits_outside_2_to_8(bits):
    with pytest.raises(ValueError, match="2..8"):
        quant_range(bits, True)


@pytest.mark.parametrize("bits", [2, 4, 7, 8])
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("lo, hi", [(-1.3, 2.7), (0.2, 5.0), (-4.0, -0.5), (0.0, 0.0), (-1e-3, 1e-3)])
def test_qparams_and_fake_quant_match_naive_reference(bits, symmetric, lo, hi):
    qmin, qmax = quant_range(bits, symmetric)
    scale, zp = choose_qparams(torch.tensor(lo), torch.tensor(hi), qmin, qmax, symmetric)
    ref_scale, ref_zp, ref_qmin, ref_qmax = naive_qparams(lo, hi, bits, symmetric)
    assert (qmin, qmax) == (ref_qmin, ref_qmax)
    assert float(scale) == pytest.approx(ref_scale, rel=1e-6)
    assert int(zp) == ref_zp
    x = torch.linspace(lo - 1.0, hi + 1.0, 997)  # includes values outside the range: clamped
    got = fake_quantize(x, scale, zp, qmin, qmax).numpy()
    want = naive_fake_quant(x.numpy(), float(scale), int(zp), qmin, qmax)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6 * max(1.0, abs(lo), abs(hi)))


def test_zero_is_exact_and_all_zero_tensor_gets_eps_scale():
    for symmetric in (True, False):
        qmin, qmax = quant_range(8, symmetric)
        scale, zp = choose_qparams(torch.tensor(-0.7), torch.tensor(3.1), qmin, qmax, symmetric)
        assert float(fake_quantize(torch.zeros(5), scale, zp, qmin, qmax).abs().max()) == 0.0
    scale, zp = choose_qparams(torch.tensor(0.0), torch.tensor(0.0), -128, 127, True)
    assert float(scale) == SCALE_EPS and int(zp) == 0


@pytest.mark.parametrize("qmin, qmax, symmetric", [(-128, 127, True), (0, 255, False), (0, 15, False), (-8, 7, True)])
def test_per_tensor_matches_torch_fake_quantize(qmin, qmax, symmetric):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 33, generator=gen) * 3
    scale, zp = choose_qparams(x.min(), x.max(), qmin, qmax, symmetric)
    ours = fake_quantize(x, scale, zp, qmin, qmax)
    theirs = torch.fake_quantize_per_tensor_affine(x, scale, zp, qmin, qmax)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


@pytest.mark.parametrize("axis", [0, 1])
def test_per_channel_matches_torch_fake_quantize(axis):
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(24, 40, generator=gen) * torch.linspace(0.01, 4, 24 if axis == 0 else 40).unsqueeze(1 - axis)
    dims = 1 - axis
    scale, zp = choose_qparams(w.amin(dim=dims), w.amax(dim=dims), -128, 127, True)
    ours = fake_quantize(w, scale, zp, -128, 127, axis=axis)
    theirs = torch.fake_quantize_per_channel_affine(w, scale, zp, axis, -128, 127)
    # symmetric scale = max|w| / 127.5 puts each channel's extreme on a .5 tie: we divide and round half-to-even
    # as ONNX QuantizeLinear does (the export must agree); torch multiplies by 1/scale, which can land the
    # other way on (near-)ties — one ulp apart
    codes = w / scale.unsqueeze(1 - axis)
    ties = ((codes.abs() - codes.abs().floor()) - 0.5).abs() < 1e-4
    assert ties.any()
    torch.testing.assert_close(ours[~ties], theirs[~ties], rtol=0, atol=1e-6)
    ref = torch.clamp(torch.round(codes), -128, 127) * scale.unsqueeze(1 - axis)
    torch.testing.assert_close(ours[ties], ref[ties], rtol=0, atol=1e-6)


def test_straight_through_gradient_matches_torch():
    x = torch.linspace(-3, 3, 101, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    scale, zp = torch.tensor(0.01), torch.tensor(10, dtype=torch.int32)  # grid covers [-1.38, 1.17]
    fake_quantize(x, scale, zp, -128, 127).sum().backward()
    torch.fake_quantize_per_tensor_affine(x2, scale, zp, -128, 127).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad)
    assert 0 < int(x.grad.sum()) < 101  # clamped values get no gradient, the rest get 1


def test_quantize_dequantize_roundtrip_and_pruned_zeros():
    gen = torch.Generator().manual_seed(2)
    w = torch.randn(16, 32, generator=gen)
    w[torch.rand(16, 32, generator=gen) < 0.8] = 0.0  # 80% pruned
    scale, zp = choose_qparams(w.amin(1), w.amax(1), -128, 127, True)
    q = quantize(w, scale, zp, -128, 127, axis=0)
    assert q.dtype == torch.int32 and int(q.min()) >= -128 and int(q.max()) <= 127
    assert torch.equal(q[w == 0], torch.zeros_like(q[w == 0]))  # pruned zeros → code 0
    back = dequantize(q, scale, zp, axis=0)
    assert torch.all(back[w == 0] == 0)
    assert float((back - w).abs().max()) <= float(scale.max()) / 2 + 1e-7  # half a step at most
    assert torch.equal(fake_quantize(w, scale, zp, -128, 127, axis=0) == 0, (w == 0) | (q == 0))
