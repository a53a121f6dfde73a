"""QDQ export of fake-quant models and its rewrite into integer kernels, run in ONNX Runtime."""

from collections import Counter

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from tiny import tiny

from sparsecore.deploy.ort_session import ort_session
from sparsecore.export import QUANTIZED, validate_onnx
from sparsecore.export.onnx_export import export_onnx
from sparsecore.export.qdq_to_integer import constants_to_initializers, qdq_to_integer
from sparsecore.quant.qat import QuantConfig, QuantState
from sparsecore.quant.scheme import DEFAULT_ACTIVATIONS, DEFAULT_WEIGHTS, QuantArgs
from sparsecore.quant.sites import select_sites


def quantized_tiny(sparsity=0.8, activations=DEFAULT_ACTIVATIONS, weights=DEFAULT_WEIGHTS, uniform_attention=False):
    """The tiny model with fake-quant attached and calibrated on 9-token inputs; ``uniform_attention``: query
    weights and bias zeroed first, so every softmax output is exactly 1 / length."""
    model = tiny(seed=3, sparsity=sparsity)
    if uniform_attention:
        with torch.no_grad():
            model.attn.query.weight.zero_()
            model.attn.query.bias.zero_()
    qs = QuantState(QuantConfig(weights, activations)).attach(
        model, select_sites(model, submodules=None, exclude_types=None, ignore=None, embeddings=True, where="t"))
    model.train()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _ in range(4):
            model(torch.randint(0, 50, (16, 9), generator=gen))
    return model.eval(), qs


def export(model, qs, path):
    sample = {"ids": torch.randint(0, 50, (2, 9))}
    with qs.exporting():
        export_onnx(model, sample, path, ("logits",), {"ids": {0: "batch", 1: "sequence"}})
    return onnx.load(str(path))


def feeds(n=64, seq=11, seed=1):
    return {"ids": np.random.default_rng(seed).integers(0, 50, (n, seq)).astype(np.int64)}


def reference(model):
    def run(f):
        with torch.no_grad():
            return model(torch.from_numpy(f["ids"])).numpy()
    return run


@pytest.fixture
def exported(tmp_path):
    model, qs = quantized_tiny()
    qdq = export(model, qs, tmp_path / "qdq.onnx")
    constants_to_initializers(qdq)
    onnx.save(qdq, tmp_path / "qdq.onnx")
    integer = onnx.load(tmp_path / "qdq.onnx")
    counts = qdq_to_integer(integer)
    onnx.save(integer, tmp_path / "int.onnx")
    return model, tmp_path, counts, integer


def test_qdq_graph_holds_int8_weight_constants(exported):
    _, folder, _, _ = exported
    ops = Counter(n.op_type for n in onnx.load(folder / "qdq.onnx").graph.node)
    assert ops["QuantizeLinear"] == 6 + 4  # one per Linear input (q, k, v, ffn ×2, head), two per attention product
    assert ops["DequantizeLinear"] == ops["QuantizeLinear"] + 6 + 1  # + int8 weights of 6 Linears + embedding


def test_integer_form_ops_and_agreement_with_pytorch(exported):
    model, folder, counts, integer = exported
    assert counts == {"MatMulInteger": 8, "Gather": 1, "int32 bias": 6}  # 6 Linears (biases folded) + QKᵀ + attn·V
    ops = Counter(n.op_type for n in integer.graph.node)
    assert ops["MatMulInteger"] == 8 and ops["MatMul"] == 0
    assert not [i for i in integer.graph.initializer if i.data_type == onnx.TensorProto.FLOAT and len(i.dims) == 2]
    for path in ("qdq.onnx", "int.onnx"):
        report = validate_onnx(folder / path, [feeds(seed=s) for s in range(4)], reference(model), QUANTIZED)
        assert report["passed"] and report["label_agreement"] >= 0.99, report
        assert report["median_abs_diff"] < 1e-5


def test_integer_weights_keep_pruned_zeros(exported):
    model, _, _, integer = exported
    inits = {i.name: numpy_helper.to_array(i) for i in integer.graph.initializer}
    for name in ("attn.query", "ffn.0", "ffn.2", "head"):
        w = model.get_submodule(name).weight.detach().numpy()
        matches = [a for a in inits.values() if a.dtype == np.int8 and a.shape == w.T.shape and not a[w.T == 0].any()]
        assert len(matches) == 1, name
        assert (matches[0] == 0).mean() >= (w == 0).mean() > 0.7


def test_integer_and_qdq_forms_compute_the_same(exported):
    _, folder, _, _ = exported
    f = feeds(n=128, seed=9)
    a = ort_session(folder / "qdq.onnx").run(None, f)[0]
    b = ort_session(folder / "int.onnx").run(None, f)[0]
    assert np.median(np.abs(a - b)) < 1e-5 and np.mean(a.argmax(1) == b.argmax(1)) >= 0.99


def test_low_bit_and_reduced_range_activations_export_with_clip(tmp_path):
    model, qs = quantized_tiny(activations=QuantArgs(num_bits=8, symmetric=False, reduce_range=True),
                               weights=QuantArgs(num_bits=4, strategy="channel"))
    graph = export(model, qs, tmp_path / "q.onnx")
    assert Counter(n.op_type for n in graph.graph.node)["Clip"] == 10  # 7-bit activations in uint8 storage
    qdq_to_integer(graph)
    onnx.save(graph, tmp_path / "int.onnx")
    report = validate_onnx(tmp_path / "int.onnx", [feeds(seed=s) for s in range(3)], reference(model), QUANTIZED)
    assert report["passed"], report
    codes = [numpy_helper.to_array(i) for i in graph.graph.initializer if i.data_type == onnx.TensorProto.INT8
             and len(i.dims) == 2]
    assert codes and all(c.min() >= -8 and c.max() <= 7 for c in codes)  # 4-bit weights in int8 storage


@pytest.mark.parametrize("vnni", [False, True])
def test_exact_integer_options_only_where_the_cpu_lacks_vnni(exported, monkeypatch, vnni):
    """Without VNNI the integer graph gets ONNX Runtime's exact u8·u8 kernels and the QDQ graph its unfused
    form; with VNNI both keep the defaults (the fast kernels are exact there). Outputs agree either way."""
    import sparsecore.deploy.ort_session as ort_module

    _, folder, _, _ = exported
    monkeypatch.setattr(ort_module, "cpu_has_vnni", lambda: vnni)
    integer, qdq = ort_module.ort_session(folder / "int.onnx"), ort_module.ort_session(folder / "qdq.onnx")
    entries = (_entry(integer, "session.x64quantprecision"), _entry(qdq, "session.disable_quant_qdq"))
    assert entries == (("", "") if vnni else ("1", "1"))
    f = feeds(n=64, seed=3)
    assert np.median(np.abs(integer.run(None, f)[0] - qdq.run(None, f)[0])) < 1e-5


def _entry(session, name: str) -> str:
    """A session config entry's value, "" when it was never set (ONNX Runtime raises for those)."""
    try:
        return session.get_session_options().get_session_config_entry(name)
    except Exception:  # onnxruntime.capi.onnxruntime_pybind11_state.InvalidArgument, not importable by name
        return ""
