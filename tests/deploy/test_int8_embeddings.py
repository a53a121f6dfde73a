"""An int8 export's embedding Gather → DequantizeLinear read by the engine's loader: the word table kept as codes
it owns, per-tensor and per-feature quantizers, anything else refused in one line."""

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from sparsecore import onnx_proto
from sparsecore.deploy.int8_model import IntegerGraph
from sparsecore.errors import SparsecoreError
from sparsecore.onnx_graph import GraphIndex

CODES = np.arange(-60, 60, dtype=np.int8).reshape(20, 6)


def graph(scale: np.ndarray, zero: np.ndarray, axis: int | None):
    """Gather(int8 table, ids) → DequantizeLinear(scale, zero[, axis]), read back through onnx_proto (the loader's
    reader: tensors are views into the serialized bytes)."""
    attrs = {} if axis is None else {"axis": axis}
    nodes = [helper.make_node("Gather", ["table", "ids"], ["g"], name="/embeddings/word_embeddings/Gather_int8"),
             helper.make_node("DequantizeLinear", ["g", "scale", "zero"], ["out"], name="dq", **attrs)]
    inits = [numpy_helper.from_array(CODES, "table"), numpy_helper.from_array(scale, "scale"),
             numpy_helper.from_array(zero, "zero")]
    model = helper.make_model(helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 3])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, 6])], inits))
    model = onnx_proto.loads(model.SerializeToString())
    index = GraphIndex(model)

    def const(name: str):
        return onnx_proto.to_array(index.inits[index.resolve(name)]) if index.resolve(name) else None

    return IntegerGraph(model, const, "model.onnx")


@pytest.mark.parametrize("scale, zero, axis", [
    (np.array(0.02, np.float32), np.array(3, np.int8), None),
    (np.linspace(0.01, 0.06, 6, dtype=np.float32), np.arange(-3, 3, dtype=np.int8), 2),
    (np.linspace(0.01, 0.06, 6, dtype=np.float32), np.arange(-3, 3, dtype=np.int8), -1),
])
def test_the_word_table_stays_codes_it_owns(scale, zero, axis):
    table = graph(scale, zero, axis).embedding("/embeddings/word_embeddings/Gather_int8")
    assert table.codes.dtype == np.int8 and table.codes.base is None  # a copy, not a view into the model's bytes
    np.testing.assert_array_equal(table.dense(), (CODES.astype(np.float32) - zero.astype(np.float32)) * scale)


@pytest.mark.parametrize("scale, zero, axis", [
    (np.linspace(0.01, 0.06, 6, dtype=np.float32), np.zeros(6, np.int8), 1),  # per position, not per feature
    (np.linspace(0.01, 0.2, 20, dtype=np.float32), np.zeros(20, np.int8), 0),  # per row of the table
])
def test_other_quantizers_are_refused_in_one_line(scale, zero, axis):
    with pytest.raises(SparsecoreError, match="not per tensor or per embedding feature"):
        graph(scale, zero, axis).embedding("/embeddings/word_embeddings/Gather_int8")
