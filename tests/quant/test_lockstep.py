"""Lockstep validation of integer graphs: a runtime's codes are accepted where they are a rounding of the model's
values (ties either way), refused where no rounding explains them; wrong graphs fail, tied ones pass."""

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from test_qdq_to_integer import export, exported, feeds, quantized_tiny, reference  # noqa: F401 (a fixture)

from sparsecore.errors import SparsecoreError
from sparsecore.export import QUANTIZED, validate_onnx
from sparsecore.export.qdq_to_integer import constants_to_initializers, qdq_to_integer
from sparsecore.quant.lockstep import Lockstep, LockstepMismatch, following, in_lockstep

SCALE, ZERO = torch.tensor(0.5), torch.tensor(3, dtype=torch.int32)


def _take(x, codes, tau=1e-3):
    state = Lockstep([np.array(codes, np.uint8)], tau)
    out = state.take(torch.tensor(x, dtype=torch.float32), SCALE, ZERO, 0, 255)
    return state, out


def test_ties_round_either_way_and_others_must_match():
    # v = x / 0.5 + 3: 1.25 → 5.5 (a tie), 1.0 → 5, -10 → -17 (clamps to 0), 200 → 403 (clamps to 255)
    for codes in ([5, 5, 0, 255], [6, 5, 0, 255]):
        state, out = _take([1.25, 1.0, -10.0, 200.0], codes)
        assert state.unexplained == 0 and state.checked == 4 and state.first_bad is None
        np.testing.assert_array_equal(out.numpy(), (np.array(codes) - 3) * 0.5)  # the runtime's codes, dequantized
    for codes in ([7, 5, 0, 255], [5, 6, 0, 255], [5, 5, 1, 255], [5, 5, 0, 254]):
        state, _ = _take([1.25, 1.0, -10.0, 200.0], codes)
        assert state.unexplained == 1 and state.first_bad == 0, codes
    state, _ = _take([1.2495], [6])  # v = 5.499: 0.001 past the tie is within the tolerance, 0.01 is not
    assert state.unexplained == 0 and state.worst == pytest.approx(0.001, abs=1e-5)
    assert _take([1.245], [6])[0].unexplained == 1


def test_quantizers_must_line_up():
    with pytest.raises(LockstepMismatch, match=r"codes have shape \(2,\), the model's tensor \(3,\)"):
        _take([1.0, 2.0, 3.0], [1, 2])
    state = Lockstep([np.zeros(1, np.uint8)] * 2)
    with pytest.raises(LockstepMismatch, match="the graph quantizes 2 activations, the model 1"):
        with following(state):
            state.take(torch.zeros(1), SCALE, ZERO, 0, 255)
    state = Lockstep([])
    with pytest.raises(LockstepMismatch, match="more activations than the graph's 0"):
        state.take(torch.zeros(1), SCALE, ZERO, 0, 255)


def test_correct_graphs_pass_in_lockstep(exported):  # noqa: F811
    model, folder, _, _ = exported
    for path in ("qdq.onnx", "int.onnx"):
        report = validate_onnx(folder / path, [feeds(seed=s) for s in range(3)], reference(model), QUANTIZED,
                               in_lockstep(reference(model)))
        step = report["lockstep"]
        assert report["passed"] and step["codes_unexplained"] == 0 and step["activation_quantizers"] == 10
        assert step["codes_checked"] > 10_000 and step["max_abs_diff"] < 1e-5 and step["worst_code_distance"] < 1e-4
        assert "label_agreement" in report["free_running"]


def _mutated(folder, pick, change):
    model = onnx.load(str(folder / "int.onnx"))
    name = pick(model)
    tensor = next(i for i in model.graph.initializer if i.name == name)
    tensor.CopyFrom(numpy_helper.from_array(change(numpy_helper.to_array(tensor)), name))
    onnx.save(model, str(folder / "bad.onnx"))
    return folder / "bad.onnx"


def _quantize_input(index, slot):
    return lambda m: [n for n in m.graph.node if n.op_type == "QuantizeLinear"][index].input[slot]


def _rescale(index):
    return lambda m: [n for n in m.graph.node if n.op_type == "Mul" and n.name.endswith("_rescale")][index].input[1]


def _weights(index):
    return lambda m: [n for n in m.graph.node if n.op_type == "MatMulInteger"
                      and n.input[1] in {i.name for i in m.graph.initializer}][index].input[1]


WRONG = {
    "zero point + 1": (_quantize_input(2, 2), lambda a: (a + 1).astype(a.dtype)),
    "scale × 1.02": (_quantize_input(4, 1), lambda a: a * np.float32(1.02)),
    "rescale × 1.02": (_rescale(1), lambda a: a * np.float32(1.02)),
    "weights transposed": (_weights(0), lambda a: np.ascontiguousarray(a.T)),  # (16, 16): the same shape
    "a weight code flipped": (_weights(3), lambda a: np.where(np.abs(a) == np.abs(a).max(), -a, a).astype(a.dtype)),
}


@pytest.mark.parametrize("case", WRONG)
def test_wrong_graphs_fail_in_lockstep(case, exported):  # noqa: F811
    model, folder, _, _ = exported
    bad = _mutated(folder, *WRONG[case])
    with pytest.raises(SparsecoreError, match="in lockstep: .*(activation codes are no rounding|max .Δlogit.)"):
        validate_onnx(bad, [feeds(seed=s) for s in range(3)], reference(model), QUANTIZED,
                      in_lockstep(reference(model)))


def test_ties_rounded_the_other_way_pass_in_lockstep_and_fail_free_running(tmp_path):
    """Uniform attention (zero query weights) puts softmax outputs on exact rounding ties at these lengths (255 · 9/T
    = k + ½ for a scale calibrated on 9 tokens); a softmax scale one float step larger — an equally correct graph —
    rounds them the other way. The free-running logit check refuses it as a bug; lockstep accepts every code."""
    model, qs = quantized_tiny(sparsity=0.0, uniform_attention=True)
    graph = export(model, qs, tmp_path / "q.onnx")
    constants_to_initializers(graph)
    qdq_to_integer(graph)
    softmax = next(n for n in graph.graph.node if n.name == "/attn/QuantizeLinear_2")  # the input of P·V
    scale = next(i for i in graph.graph.initializer if i.name == softmax.input[1])
    scale.CopyFrom(numpy_helper.from_array(np.nextafter(numpy_helper.to_array(scale), np.float32(1)), scale.name))
    onnx.save(graph, tmp_path / "int.onnx")
    cases = [{"ids": np.random.default_rng(s).integers(0, 50, (32, n)).astype(np.int64)}
             for s, n in enumerate((10, 18, 34))]
    with pytest.raises(SparsecoreError, match=r"median \|Δlogit\| .* > 0.0001"):
        validate_onnx(tmp_path / "int.onnx", cases, reference(model), QUANTIZED)
    report = validate_onnx(tmp_path / "int.onnx", cases, reference(model), QUANTIZED, in_lockstep(reference(model)))
    step = report["lockstep"]
    assert report["passed"] and step["codes_unexplained"] == 0 and step["codes_rounded_other_way"] > 10_000
    assert step["max_abs_diff"] < 1e-6 and report["free_running"]["median_abs_diff"] > 1e-4
