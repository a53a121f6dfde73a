"""Kernel calls bound to their arrays (``*_call``) run on the arrays' contents at each call: the same bits as the
checking wrappers on the new data, and the checks happen at binding."""

import numpy as np
import pytest

from sparsecore.kernels import isa
from sparsecore.kernels.attention import attention_call, attention_seq_t
from sparsecore.kernels.bound import bound, chain
from sparsecore.kernels.fp32_packing import pack_rows
from sparsecore.kernels.fp32_rows import fp32_linear_call, fp32_linear_t, token_blocks, token_blocks_call
from sparsecore.kernels.int8_linear import int8_linear_call, int8_linear_t
from sparsecore.kernels.int8_quads import TOKENS, pack_quads
from sparsecore.kernels.int8_quads import token_blocks as int8_token_blocks
from sparsecore.kernels.layer_norm import add_layer_norm_call, add_layer_norm_t


def refill(rng, *arrays):
    """New contents in place, the arrays themselves kept."""
    for a in arrays:
        a[...] = rng.integers(0, 256, a.shape) if a.dtype == np.uint8 else rng.standard_normal(a.shape)


def test_bound_and_chain():
    log = []
    call = bound(lambda *a: log.append(a), "result", 1, 2)
    assert call() == "result" and call() == "result" and log == [(1, 2), (1, 2)]
    assert chain(lambda: log.append("first"), lambda: "last")() == "last" and log[-1] == "first"


def test_layer_norm_call_reads_new_contents_and_checks_at_binding():
    rng = np.random.default_rng(0)
    h, t = 96, 70
    x, r = (rng.standard_normal((h, t)).astype(np.float32) for _ in range(2))
    gamma, beta = rng.standard_normal(h).astype(np.float32), rng.standard_normal(h).astype(np.float32)
    codes = np.empty((-(-t // 32), h, 32), np.uint8)
    out = np.empty_like(x)
    call = add_layer_norm_call(x, gamma, beta, 1e-12, residual=r, out=out, codes=(0.04, 7, codes))
    for _ in range(2):
        refill(rng, x, r)
        want_codes = np.empty_like(codes)
        want = add_layer_norm_t(x, gamma, beta, 1e-12, residual=r, codes=(0.04, 7, want_codes))
        assert call() is out
        np.testing.assert_array_equal(out, want)
        np.testing.assert_array_equal(codes, want_codes)
    with pytest.raises(ValueError, match="residual must be"):
        add_layer_norm_call(x, gamma, beta, 1e-12, residual=r[:, :10])


@pytest.mark.skipif(isa.integer_path() == "generic", reason="this CPU has no integer dot-product path")
def test_int8_linear_call_reads_new_codes():
    rng = np.random.default_rng(1)
    n, k, t = 64, 96, 100
    codes = np.where(rng.random((n, k)) < 0.2, rng.integers(-128, 128, (n, k)), 0).astype(np.int8)
    weight, path = pack_quads(codes), isa.integer_path()
    xb = int8_token_blocks(rng.integers(0, 256, (k, t)).astype(np.uint8), TOKENS[path])
    bias, scale = rng.standard_normal(n).astype(np.float32), rng.random(n).astype(np.float32)
    call = int8_linear_call(weight, xb, t, bias, scale, gelu=True, path=path)
    for _ in range(2):
        refill(rng, xb)
        np.testing.assert_array_equal(call(), int8_linear_t(weight, xb, t, bias, scale, gelu=True, path=path))
    with pytest.raises(ValueError, match="activations must be"):
        int8_linear_call(weight, xb[:, :-1], t, bias, scale, path=path)


def test_fp32_linear_and_layout_calls_read_new_values():
    rng = np.random.default_rng(2)
    n, k, t = 48, 80, 90
    w = np.where(rng.random((n, k)) < 0.15, rng.standard_normal((n, k)), 0).astype(np.float32)
    weight, xt = pack_rows(w, "csr"), rng.standard_normal((k, t)).astype(np.float32)
    relayout = token_blocks_call(xt)
    call = chain(relayout, fp32_linear_call(weight, relayout.result, t, gelu=True))
    for _ in range(2):
        refill(rng, xt)
        np.testing.assert_array_equal(call(), fp32_linear_t(weight, token_blocks(xt), t, gelu=True))


@pytest.mark.parametrize("quantized", [False, True])
def test_attention_call_reads_new_qkv_and_token_blocked_input(quantized):
    """A token-blocked qkv (a QKV Linear's blocked output) is laid out into rows on every call where the kernel reads
    rows; quantized attention makes its codes from each call's values."""
    rng = np.random.default_rng(3)
    heads, d, tb = 4, 16, 64
    starts = np.array([0, 30, 77, 100])
    qkv = rng.standard_normal((2, 3 * heads * d, tb)).astype(np.float32)  # 128 token slots, 100 real
    kw = {"quant": (0.02, 1 / 255, 0, 0.01), "qkv_quant": ((0.05, 128), (0.05, 128), (0.04, 120))} if quantized else {}
    call = attention_call(qkv, starts, heads, tokens=100, **kw)
    for _ in range(2):
        refill(rng, qkv)
        np.testing.assert_array_equal(call(), attention_seq_t(qkv, starts, heads, tokens=100, **kw))
