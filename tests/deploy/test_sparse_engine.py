"""engine="sparsecore": our Numba engine against ONNX Runtime on a real pruned MiniLM export."""

import json
import shutil

import numpy as np
import pytest

from sparsecore import Pipeline
from sparsecore.deploy.linears import DENSE_BELOW, LinearT
from sparsecore.deploy.sparse_engine import SparseEncoder
from sparsecore.deploy.sparse_model import load_encoder_arrays
from sparsecore.errors import SparsecoreError
from sparsecore.kernels.isa import float_path, integer_path
from sparsecore.tasks import load_data, sample_glue_dir

ATOL = 1e-4  # the export's own ORT-vs-PyTorch tolerance: fp32, reductions of ≤ 1536 terms, 6 layers
# the format "auto" gives a sparse unstructured fp32 Linear: token-blocked kernels wherever AVX2 runs
SPARSE = "csr" if float_path() == "generic" else f"csr {float_path()}"


@pytest.fixture(scope="module")
def rows():
    return [t[0] for t in load_data("sst2", sample_glue_dir()).evals["validation"].texts]


def logits(pipeline, tokenizer_dir, texts):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    out = []
    for i in range(0, len(texts), 64):
        enc = tok(texts[i:i + 64], truncation=True, max_length=128, padding=True, return_tensors="np")
        out.append(pipeline.engine({n: enc[n].astype(np.int64) for n in ("input_ids", "attention_mask",
                                                                          "token_type_ids")}))
    return np.concatenate(out)


def test_sparsecore_engine_matches_onnxruntime_on_all_sst2_rows(pruned_minilm, rows):
    deployment = pruned_minilm / "deployment"
    ours = Pipeline.create(model_path=pruned_minilm, engine="sparsecore", batch_size=32)
    theirs = Pipeline.create(model_path=pruned_minilm, engine="onnxruntime", batch_size=32)
    assert ours.engine.model.formats() == {SPARSE: 24}  # 80% unstructured: every encoder Linear sparse
    a, b = logits(ours, deployment, rows), logits(theirs, deployment, rows)
    assert len(a) == 872 and np.abs(a - b).max() <= ATOL
    assert np.mean(a.argmax(1) == b.argmax(1)) >= 0.999
    labels = [r["label"] for r in ours(rows[:40])]
    assert labels == [r["label"] for r in theirs(rows[:40])]  # the whole Pipeline, tokenizer to labels


@pytest.mark.parametrize("fmt", ["dense", "csr", "block4", "auto"])
def test_every_format_computes_the_same_model(pruned_minilm, rows, fmt):
    deployment = pruned_minilm / "deployment"
    arrays = load_encoder_arrays(deployment / "model.onnx", deployment / "config.json")
    reference = SparseEncoder(arrays, "dense")
    model = SparseEncoder(arrays, fmt)
    assert model.formats() == {SPARSE if fmt == "auto" else fmt: 24}
    from transformers import AutoTokenizer

    enc = AutoTokenizer.from_pretrained(str(deployment))(rows[:16], padding=True, return_tensors="np")
    feeds = [enc[n].astype(np.int64) for n in ("input_ids", "attention_mask", "token_type_ids")]
    np.testing.assert_allclose(model(*feeds), reference(*feeds), atol=ATOL, rtol=0)


def test_format_rule():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((16, 32)).astype(np.float32)
    assert LinearT.build(w, np.zeros(16, np.float32)).format == "dense"
    sparse = w * (rng.random(w.shape) > 0.9)
    assert LinearT.build(sparse, np.zeros(16, np.float32)).format == SPARSE
    assert LinearT.build(sparse, np.zeros(16, np.float32), "csr").format == "csr"
    blocks = w * np.repeat(rng.random((16, 8)) > 0.9, 4, axis=1)
    assert LinearT.build(blocks, np.zeros(16, np.float32)).format == SPARSE.replace("csr", "block4")
    assert LinearT.build(blocks, np.zeros(16, np.float32), "block4").format == "block4"
    half = w * (rng.random(w.shape) > DENSE_BELOW - 0.2)
    assert LinearT.build(half, np.zeros(16, np.float32)).format == "dense"


def test_foreign_or_incomplete_exports_are_refused(pruned_minilm, tmp_path):
    folder = tmp_path / "d"
    shutil.copytree(pruned_minilm / "deployment", folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "roberta"}))  # not what the graph is
    with pytest.raises(SparsecoreError, match="the graph takes input_ids, attention_mask, token_type_ids but a "
                                              "roberta model takes input_ids, attention_mask"):
        Pipeline.create(model_path=folder, engine="sparsecore")
    (folder / "config.json").write_text(json.dumps({**config, "hidden_act": "gelu_new"}))
    with pytest.raises(SparsecoreError, match="runs encoders with exact GELU, this is bert / 'gelu_new'"):
        Pipeline.create(model_path=folder, engine="sparsecore")
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "gpt2"}))
    with pytest.raises(SparsecoreError, match="model type 'gpt2' is not a supported encoder family"):
        Pipeline.create(model_path=folder)  # every engine: the Pipeline reads the family too
    import onnx

    model = onnx.load(str(folder / "model.onnx"))
    for node in model.graph.node:
        node.name = node.name.replace("intermediate", "renamed")
    onnx.save(model, str(folder / "model.onnx"))
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(SparsecoreError, match="block 0 of num_hidden_layers = 6 has no intermediate.dense Linear"):
        Pipeline.create(model_path=folder, engine="sparsecore")  # every engine: the graph is checked first


def test_profile_workspace_reuse_and_thread_pools(pruned_minilm, rows):
    """Stage profile; buffers reused across token counts; the dense path restores Numba's thread count."""
    import numba
    from transformers import AutoTokenizer

    from sparsecore.deploy.sparse_engine import SparsecoreEngine

    deployment = pruned_minilm / "deployment"
    tok = AutoTokenizer.from_pretrained(str(deployment))
    batches = [tok(rows[i:i + n], padding=True, return_tensors="np") for i, n in ((0, 8), (8, 3), (0, 8))]
    feeds = [{k: b[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")} for b in batches]
    engine = SparsecoreEngine(deployment / "model.onnx", 8, [128])
    first, other, again = (engine(f) for f in feeds)  # 8 rows, then 3 (front of the buffers), then 8 again
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(other, SparsecoreEngine(deployment / "model.onnx", 3, [128])(feeds[1]), atol=1e-6)
    stages = {}
    np.testing.assert_array_equal(engine(feeds[0], profile=stages), first)
    assert {f"QKV Linear ({SPARSE})", "attention (QKᵀ, softmax, ·V)", "residual add + LayerNorm ×2",
            f"output Linear ({SPARSE})", "classifier head"} <= set(stages) and all(v > 0 for v in stages.values())
    dense = SparsecoreEngine(deployment / "model.onnx", 8, [128], formats="dense")
    threads = numba.get_num_threads()
    np.testing.assert_allclose(dense(feeds[0]), first, atol=ATOL)
    assert numba.get_num_threads() == threads


def test_an_all_dense_model_is_delegated_to_onnxruntime(tiny_model, rows, tmp_path):
    """No sparse encoder Linear: ONNX Runtime runs the model (same logits as engine='onnxruntime'), and says so;
    formats='dense' still runs our own kernels, with the same logits."""
    from sparsecore.deploy.sparse_engine import SparsecoreEngine
    from sparsecore.workflows import export

    shutil.copytree(tiny_model, tmp_path / "dense")
    deployment = export(model_path=tmp_path / "dense", sequence_length=64).deployment
    ours = Pipeline.create(model_path=deployment, engine="sparsecore", batch_size=4)
    ort = Pipeline.create(model_path=deployment, batch_size=4)
    info = ours.engine.describe()
    assert ours.engine.model is None and info["delegated"].startswith("onnxruntime")
    assert info["linear_formats"] == {"dense": 8} and info["padding"].startswith("trimmed")
    np.testing.assert_array_equal(ours.logits(rows[:10]), ort.logits(rows[:10]))
    feeds = ours._features(rows[:4])
    stages = {}
    ours.engine(feeds, profile=stages)
    assert list(stages) == ["ONNX Runtime (delegated)"]
    forced = SparsecoreEngine(deployment / "model.onnx", 4, [64], formats="dense")
    assert "delegating to onnxruntime" in repr(ours)
    assert forced.delegate is None and forced.describe()["delegated"] is None
    np.testing.assert_allclose(forced(feeds), ours.engine(feeds), atol=1e-5)


def test_concurrent_calls_share_buffers_safely(pruned_minilm, rows):
    from concurrent.futures import ThreadPoolExecutor

    from transformers import AutoTokenizer

    deployment = pruned_minilm / "deployment"
    tok = AutoTokenizer.from_pretrained(str(deployment))
    feeds = [{k: v.astype(np.int64) for k, v in tok(rows[i:i + 4], padding="max_length", max_length=48,
                                                      return_tensors="np").items()} for i in range(0, 40, 4)]
    pipe = Pipeline.create(model_path=pruned_minilm, engine="sparsecore", batch_size=4)
    alone = [pipe.engine(f) for f in feeds]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(pipe.engine, feeds))
    for a, b in zip(alone, together):
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(integer_path() == "generic", reason="this CPU has no integer dot-product path")
def test_block_pruned_int8_codes_run_on_the_integer_units_like_the_widening_kernel():
    from sparsecore.deploy.int8_model import ActQuant, QuantLinear
    from sparsecore.deploy.linears import QLinearT

    rng = np.random.default_rng(5)
    codes = rng.integers(-128, 128, (64, 128)).astype(np.int8) * np.repeat(rng.random((64, 32)) > 0.8, 4, axis=1)
    q = QuantLinear(codes.astype(np.int8), rng.integers(-5000, 5000, 64), rng.random(64).astype(np.float32) / 500,
                    ActQuant(0.05, 120))
    integer, widening = QLinearT(q), QLinearT(q, "csr")
    assert integer.format == f"int8 block4 {integer_path()}" and widening.format == "int8 csr"
    xt = rng.standard_normal((128, 77)).astype(np.float32)
    for gelu in (False, True):
        np.testing.assert_allclose(integer(xt, gelu), widening(xt, gelu), rtol=1e-6, atol=1e-6)
    unstructured = QuantLinear(np.where(rng.random((64, 128)) > 0.8, codes, 0).astype(np.int8), q.bias, q.rescale,
                               q.act)
    # scattered codes: blocks would multiply zeros; quads on every integer path (vpdpbusd or vpmaddwd)
    quads = QLinearT(unstructured)
    assert quads.format == f"int8 quads {integer_path()}"
    for gelu in (False, True):
        np.testing.assert_allclose(quads(xt, gelu), QLinearT(unstructured, "csr")(xt, gelu), rtol=1e-6, atol=1e-6)
    # K not a multiple of 4: 1×4 blocks read the interleaved layout (K padded with zero codes)
    odd = QuantLinear(codes[:, :126], q.bias, q.rescale, q.act)
    forced = QLinearT(odd, "block4")
    assert forced.format == f"int8 block4 {integer_path()}" and not forced.token_blocked
    np.testing.assert_allclose(forced(xt[:126]), QLinearT(odd, "csr")(xt[:126]), rtol=1e-6, atol=1e-6)


def test_unstructured_int8_on_avx2_runs_quads_like_token_blocked_float_codes_and_the_widening_kernel(monkeypatch):
    """On the avx2 path (forced here) unstructured int8 codes run the quad kernel (``vpmaddwd``); forced to
    ``csr blocked`` they run the token-blocked fp32 kernels on float32 codes: exact integer sums both, so the same bits
    as the widening kernel."""
    from sparsecore.deploy.int8_model import ActQuant, QuantLinear
    from sparsecore.deploy.linears import QLinearT
    from sparsecore.kernels.isa import supported

    if not supported("avx2"):
        pytest.skip("this CPU cannot run the avx2 path")
    monkeypatch.setenv("SPARSECORE_ISA", "avx2")
    rng = np.random.default_rng(8)
    codes = np.where(rng.random((96, 200)) > 0.85, rng.integers(-128, 128, (96, 200)), 0).astype(np.int8)
    codes[5] = 0  # an empty row
    q = QuantLinear(codes, rng.integers(-5000, 5000, 96), rng.random(96).astype(np.float32) / 500, ActQuant(0.05, 120))
    quads, linear, widening = QLinearT(q), QLinearT(q, "csr blocked"), QLinearT(q, "csr")
    assert (quads.format, linear.format, widening.format) == ("int8 quads avx2", "int8 csr avx2", "int8 csr")
    for t in (1, 64, 131):
        xt = rng.standard_normal((200, t)).astype(np.float32) * 4
        for gelu in (False, True):
            want = widening(xt, gelu)
            np.testing.assert_array_equal(linear(xt, gelu), want)
            np.testing.assert_array_equal(quads(xt, gelu), want)


@pytest.mark.parametrize("path", ["host", "avx2", "generic"])
def test_int8_csr_on_float_codes_equals_the_byte_widening_kernel_bit_for_bit(path, monkeypatch):
    """An int8 csr Linear multiplies codes held as float32 (AVX-512 VNNI hosts) or bytes widened in registers
    (other paths): the same bits either way."""
    from sparsecore.kernels.isa import csr_activations, supported

    if path != "host":
        if not supported(path):
            pytest.skip(f"this CPU cannot run the {path} path")
        monkeypatch.setenv("SPARSECORE_ISA", path)
    from sparsecore.deploy.int8_model import ActQuant, QuantLinear
    from sparsecore.deploy.linears import QLinearT
    from sparsecore.kernels.quantize import quantize_u8
    from sparsecore.kernels.sparse_matmul import sparse_linear_t, to_csr

    rng = np.random.default_rng(6)
    codes = np.where(rng.random((96, 200)) > 0.9, rng.integers(-128, 128, (96, 200)), 0).astype(np.int8)
    codes[3] = 0  # an empty row
    q = QuantLinear(codes, rng.integers(-5000, 5000, 96), rng.random(96).astype(np.float32) / 500, ActQuant(0.05, 120))
    linear = QLinearT(q, "csr")
    assert linear.format == "int8 csr"
    assert linear.weight.values.dtype == {"float32": np.float32, "uint8": np.int8}[csr_activations()]
    xt = rng.standard_normal((200, 131)).astype(np.float32)
    byte_codes = quantize_u8(xt, 0.05, 120)
    for gelu in (False, True):
        expected = sparse_linear_t(to_csr(codes), byte_codes, linear.bias, gelu, scale=linear.rescale)
        np.testing.assert_array_equal(linear(xt, gelu), expected)


def test_int8_linears_of_a_model_share_one_huge_page_buffer():
    from sparsecore.deploy.hugepages import Scratch

    scratch = Scratch()
    a = scratch.view((3, 5), np.float32)
    a[:] = 1.0
    b = scratch.view((60,), np.uint8)  # same memory, another type
    assert np.shares_memory(a, b) and b[:4].view(np.float32)[0] == 1.0
    big = scratch.view((1000, 3), np.int32)  # grows
    assert big.shape == (1000, 3) and big.flags.c_contiguous and big.ctypes.data % 4096 == 0


def test_padding_is_dropped_with_the_padded_logits(pruned_minilm, rows):
    """A batch padded to 128 runs its real tokens only and gives each sentence's logits run alone, unpadded;
    a left-padded batch (first token masked) runs every position under the additive mask: ONNX Runtime's logits."""
    from transformers import AutoTokenizer

    deployment = pruned_minilm / "deployment"
    tok = AutoTokenizer.from_pretrained(str(deployment))
    model = SparseEncoder(load_encoder_arrays(deployment / "model.onnx", deployment / "config.json"))
    names = ("input_ids", "attention_mask", "token_type_ids")
    padded = tok(rows[:12], padding="max_length", max_length=128, return_tensors="np")
    feeds = [padded[n].astype(np.int64) for n in names]
    got = model(*feeds)
    assert model.last_tokens == int(padded["attention_mask"].sum()) < 12 * 128 // 3
    alone = np.concatenate([model(*[tok([r], return_tensors="np")[n].astype(np.int64) for n in names]) for r in rows[:12]])
    np.testing.assert_allclose(got, alone, atol=1e-5, rtol=0)
    tok.padding_side = "left"
    left = tok(rows[:12], padding="max_length", max_length=64, return_tensors="np")
    left_feeds = {n: left[n].astype(np.int64) for n in names}
    ort = Pipeline.create(model_path=pruned_minilm, engine="onnxruntime").engine
    left_logits = model(*left_feeds.values())
    np.testing.assert_allclose(left_logits, ort(left_feeds), atol=ATOL, rtol=0)
    assert model.last_tokens == 12 * 64
    # the attention output Linear (token-blocked fp32 rows) reads the context as attention wrote it, token-blocked,
    # and the QKV and intermediate Linears read the copies their LayerNorms wrote: the same bits as laying each input
    # out in a pass of its own, packed and padded
    if model.layers[0]["attn_out"].token_blocked:
        assert model.inputs._buf.size > 0
        plan = model._plan
        assert {("qkv feed", 0), ("qkv feed", 1), ("inter feed", 0)} <= plan.keys()
        assert all(plan[key]["blocked"].dtype == np.float32 for key in (("qkv feed", 1), ("inter feed", 0)))
        model.fused_inputs = False
        np.testing.assert_array_equal(model(*feeds), got)
        np.testing.assert_array_equal(model(*left_feeds.values()), left_logits)
        model.fused_inputs = True


def test_token_layout_and_row_stride():
    from sparsecore.deploy.token_layout import row_stride, token_layout

    mask = np.array([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]])
    starts, keep, add_mask = token_layout(mask)
    assert starts.tolist() == [0, 3, 4, 8] and add_mask is None
    assert [(int(r), int(c)) for r, c in zip(*keep)] == [(0, 0), (0, 1), (0, 2), (1, 0), (2, 0), (2, 1), (2, 2), (2, 3)]
    assert token_layout(np.ones((2, 5), np.int64))[1] is None  # nothing to drop: no gather
    for fallback in ([[0, 1, 1], [1, 1, 1]], [[1, 1, 0], [1, 0.5, 0]], [[1, 1, 2], [1, 1, 1]]):
        starts, keep, add_mask = token_layout(np.array(fallback))
        assert starts.tolist() == [0, 3, 6] and keep is None and add_mask.shape == (2, 3)
    for tokens in [*range(600), 1024, 2048, 4096, 4097, 8192, 3 * 4096]:
        stride = row_stride(tokens)
        if tokens < 512:
            assert stride == tokens
        else:
            assert tokens <= stride <= tokens + 31 and stride % 16 == 0 and (stride // 16) % 2 == 1


def test_describe_repr_and_one_log_line_name_the_host_path(pruned_minilm, caplog, monkeypatch):
    import logging

    from sparsecore.deploy import sparse_engine

    monkeypatch.setattr(sparse_engine, "_DESCRIBED", False)
    with caplog.at_level(logging.INFO, logger="sparsecore"):
        pipe = Pipeline.create(model_path=pruned_minilm, engine="sparsecore")
        Pipeline.create(model_path=pruned_minilm, engine="sparsecore")
    lines = [r.getMessage() for r in caplog.records if "engine='sparsecore' on" in r.getMessage()]
    assert len(lines) == 1 and f"integer path {integer_path()}" in lines[0]
    info = pipe.engine.describe()
    assert info["integer_path"] == integer_path() and info["linear_formats"] == {SPARSE: 24} and info["cpu"]
    assert info["float_path"] == float_path() and f"float path {float_path()}" in lines[0]
    assert f"integer path {integer_path()}" in repr(pipe) and "sequence_length=[128]" in repr(pipe)
    assert "OnnxRuntimeEngine" in repr(Pipeline.create(model_path=pruned_minilm))


@pytest.mark.skipif(float_path() == "generic", reason="the token-blocked kernels need an AVX2 or AVX-512 float path")
@pytest.mark.parametrize("tokens", [1, 64, 100])
def test_ffn_kept_token_blocked_gives_the_same_bits_as_two_plain_calls(tokens):
    """The intermediate Linear writes its output token-blocked and the output Linear reads it without a copy (what
    the engine does when both run the token-blocked kernels): every real token's result is bit for bit the same."""
    rng = np.random.default_rng(tokens)
    w1 = (rng.standard_normal((96, 32)) * (rng.random((96, 32)) > 0.8)).astype(np.float32)
    w2 = (rng.standard_normal((32, 96)) * (rng.random((32, 96)) > 0.8)).astype(np.float32)
    inner = LinearT.build(w1, rng.standard_normal(96).astype(np.float32))
    outer = LinearT.build(w2, rng.standard_normal(32).astype(np.float32))
    assert inner.token_blocked and outer.token_blocked
    xt = rng.standard_normal((32, tokens)).astype(np.float32)
    plain = outer(inner(xt, gelu=True))
    blocked = inner(xt, gelu=True, blocked_out=True)
    assert blocked.shape == (-(-tokens // 64), 96, 64)
    np.testing.assert_array_equal(outer.blocked(blocked, tokens), plain)
    with pytest.raises(ValueError, match="blocked_out needs a token-blocked format"):
        LinearT.build(w1, np.zeros(96, np.float32), "csr")(xt, blocked_out=True)


def _block_or_scattered(rng, n, k, blocks):
    keep = np.repeat(rng.random((n, k // 4)) > 0.8, 4, axis=1) if blocks else rng.random((n, k)) > 0.8
    return np.where(keep, rng.integers(-128, 128, (n, k)), 0).astype(np.int8)


@pytest.mark.skipif(integer_path() == "generic", reason="the int8 quad kernels need an integer path (VNNI or AVX2)")
@pytest.mark.parametrize("kind", ["quads", "block4"])
@pytest.mark.parametrize("tokens", [1, 64, 100])
def test_int8_ffn_kept_token_blocked_gives_the_same_bits(tokens, kind, monkeypatch):
    """Two int8 Linears reading the token-blocked layout (quads; 1×4 blocks below a path's stored-weight threshold,
    set here — by default they read the interleaved layout): the first writes fp32
    token-blocked and the second quantizes that elementwise, or the first writes the second's uint8 codes straight
    from its epilogue — every real token's result is bit for bit that of two plain calls."""
    from sparsecore.deploy.int8_model import ActQuant, QuantLinear
    from sparsecore.deploy.linears import QLinearT
    from sparsecore.kernels.int8_linear import TOKEN_BLOCKED_BELOW

    rng = np.random.default_rng(tokens)
    c1, c2 = _block_or_scattered(rng, 96, 32, kind == "block4"), _block_or_scattered(rng, 32, 96, kind == "block4")
    if kind == "block4":
        default = QLinearT(QuantLinear(c1, np.zeros(96, np.int64), np.ones(96, np.float32), ActQuant(0.05, 120)))
        assert default.format == f"int8 block4 {integer_path()}" and not default.token_blocked
        monkeypatch.setitem(TOKEN_BLOCKED_BELOW, integer_path(), 1e9)
    inner = QLinearT(QuantLinear(c1, rng.integers(-500, 500, 96), rng.random(96).astype(np.float32) / 50,
                                 ActQuant(0.05, 120)))
    outer = QLinearT(QuantLinear(c2, rng.integers(-500, 500, 32), rng.random(32).astype(np.float32) / 50,
                                 ActQuant(0.02, 10)))
    assert inner.format == outer.format == f"int8 {kind} {integer_path()}"
    assert inner.token_blocked and outer.token_blocked
    xt = rng.standard_normal((32, tokens)).astype(np.float32) * 3
    plain = outer(inner(xt, gelu=True))
    blocked = inner(xt, gelu=True, blocked_out=True)
    np.testing.assert_array_equal(outer.blocked(blocked, tokens), plain)
    codes = inner(xt, gelu=True, blocked_out=True, out_codes=outer.activation_codes)
    assert codes.dtype == np.uint8 and codes.shape == blocked.shape
    np.testing.assert_array_equal(outer.blocked(codes, tokens), plain)
    with pytest.raises(ValueError, match="codes need blocked_out"):
        inner(xt, gelu=True, out_codes=outer.activation_codes)
    widening = QLinearT(QuantLinear(c1, np.zeros(96, np.int64), np.ones(96, np.float32), ActQuant(0.05, 120)), "csr")
    with pytest.raises(ValueError, match="blocked_out needs the int8 quads or block4 format"):
        widening(xt, blocked_out=True)
    # a 1×4-block Linear writes its output token-blocked too (Q, K, V for the attention): its plain output laid out
    blocks = QLinearT(QuantLinear(c1, rng.integers(-500, 500, 96), rng.random(96).astype(np.float32) / 50,
                                  ActQuant(0.05, 120)), "block4")
    assert blocks.writes_blocked and blocks.token_blocked == (integer_path() in TOKEN_BLOCKED_BELOW)  # 96 < 128
    laid = blocks(xt, blocked_out=True)
    tb = laid.shape[2]
    assert laid.shape == (-(-tokens // tb), 96, tb)
    np.testing.assert_array_equal(laid.transpose(1, 0, 2).reshape(96, -1)[:, :tokens], blocks(xt))


@pytest.mark.skipif(integer_path() == "generic", reason="the int8 kernels need an integer path (VNNI or AVX2)")
@pytest.mark.parametrize("outer_kind", ["block4", "quads"])
@pytest.mark.parametrize("tokens", [1, 64, 100])
def test_int8_ffn_into_the_layout_the_output_linear_reads(tokens, outer_kind):
    """A 1×4-block intermediate Linear on the interleaved layout writes the output Linear's codes in the layout that
    one reads — interleaved by four rows for a 1×4-block Linear, token-blocked for quads — and the engine's plan picks
    that shape: every real token's result is bit for bit that of two plain calls."""
    from sparsecore.deploy.int8_model import ActQuant, QuantLinear
    from sparsecore.deploy.linears import QLinearT
    from sparsecore.deploy.token_layout import ffn_blocks

    rng = np.random.default_rng(tokens)
    c1 = _block_or_scattered(rng, 96, 32, True)
    c2 = _block_or_scattered(rng, 32, 96, outer_kind == "block4")
    inner = QLinearT(QuantLinear(c1, rng.integers(-500, 500, 96), rng.random(96).astype(np.float32) / 50,
                                 ActQuant(0.05, 120)))
    outer = QLinearT(QuantLinear(c2, rng.integers(-500, 500, 32), rng.random(32).astype(np.float32) / 50,
                                 ActQuant(0.02, 10)))
    assert inner.format == f"int8 block4 {integer_path()}" and not inner.token_blocked
    assert outer.format == f"int8 {outer_kind} {integer_path()}"
    shape = ffn_blocks(inner, outer, tokens)
    if inner.tokens_per_block != outer.tokens_per_block:  # quads with other token blocks (avx_vnni): no shared layout
        assert shape is None
        return
    assert shape == outer.input_shape(tokens) and len(shape) == (4 if outer_kind == "block4" else 3)
    xt = rng.standard_normal((32, tokens)).astype(np.float32) * 3
    codes = inner(xt, gelu=True, blocked_out=True, out_codes=outer.activation_codes, interleaved=len(shape) == 4)
    assert codes.shape == shape and codes.dtype == np.uint8
    np.testing.assert_array_equal(outer.blocked(codes, tokens), outer(inner(xt, gelu=True)))


def test_formats_is_checked_and_int8_only_formats_leave_fp32_linears_to_the_rule():
    from sparsecore.deploy.linears import FORMATS, build_linear

    rng = np.random.default_rng(11)
    w = (rng.standard_normal((32, 64)) * (rng.random((32, 64)) > 0.9)).astype(np.float32)
    b = np.zeros(32, np.float32)
    with pytest.raises(ValueError, match=r"formats='bogus' is not one of auto, dense, csr, block4, quads"):
        build_linear((w, b), "bogus")
    auto = build_linear((w, b)).format
    assert "csr blocked" in FORMATS and all(build_linear((w, b), f).format == auto for f in ("quads", "csr blocked"))


def test_bound_stage_calls_read_each_calls_inputs(pruned_minilm):
    """The fp32 engine binds each stage's kernel call once per token layout: later calls with other tokens (and
    other padding masks) give a fresh engine's logits."""
    from engine_replay import check_bound_calls_follow_the_inputs

    from sparsecore.deploy.sparse_engine import SparsecoreEngine

    check_bound_calls_follow_the_inputs(lambda: SparsecoreEngine(pruned_minilm / "deployment" / "model.onnx", 4, [40]))
