"""The runtime's own ONNX reader against the onnx package's parser: every field the runtime reads, every tensor
encoding, unknown fields, external data, malformed files. (A deployment served with the onnx package blocked: tests/test_layers.py.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from sparsecore import onnx_proto
from sparsecore.errors import SparsecoreError


def _same_tensor(ours, theirs) -> None:
    assert ours.name == theirs.name and ours.data_type == theirs.data_type and list(ours.dims) == list(theirs.dims)
    a, b = onnx_proto.to_array(ours), numpy_helper.to_array(theirs)
    assert a.dtype == b.dtype and a.shape == b.shape, ours.name
    assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), ours.name


def _same_value_info(ours, theirs) -> None:
    assert ours.name == theirs.name
    assert ours.type.tensor_type.elem_type == theirs.type.tensor_type.elem_type
    assert [(d.dim_value, d.dim_param) for d in ours.type.tensor_type.shape.dim] == [
        (d.dim_value, d.dim_param) for d in theirs.type.tensor_type.shape.dim]


def _same_model(ours, theirs) -> None:
    assert ours.ir_version == theirs.ir_version and ours.producer_name == theirs.producer_name
    assert [(o.domain, o.version) for o in ours.opset_import] == [(o.domain, o.version) for o in theirs.opset_import]
    g, h = ours.graph, theirs.graph
    assert g.name == h.name and len(g.node) == len(h.node) and len(g.initializer) == len(h.initializer)
    for a, b in zip(g.node, h.node):
        assert (a.name, a.op_type, a.domain, list(a.input), list(a.output)) == (
            b.name, b.op_type, b.domain, list(b.input), list(b.output))
        assert [x.name for x in a.attribute] == [y.name for y in b.attribute]
        for x, y in zip(a.attribute, b.attribute):
            assert (x.type, x.i, x.s, list(x.ints), list(x.strings)) == (y.type, y.i, y.s, list(y.ints),
                                                                         list(y.strings)), x.name
            assert np.array_equal(np.float32(x.f), np.float32(y.f)) and np.array_equal(
                np.float32(x.floats), np.float32(y.floats)), x.name
            assert x.HasField("t") == y.HasField("t")
            if y.HasField("t"):
                _same_tensor(x.t, y.t)
    for a, b in zip(g.initializer, h.initializer):
        _same_tensor(a, b)
    for a, b in zip([*g.input, *g.output, *g.value_info], [*h.input, *h.output, *h.value_info]):
        _same_value_info(a, b)


def _every_kind() -> onnx.ModelProto:
    """A graph with each attribute type, each tensor encoding (raw and typed) and symbolic/fixed dims."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((3, 5)).astype(np.float32), "raw_f32"),
        helper.make_tensor("typed_f32", TensorProto.FLOAT, [2, 2], [1.5, -0.0, np.inf, np.nan]),
        helper.make_tensor("typed_i64", TensorProto.INT64, [4], [-1, 0, 2**62, -(2**63)]),
        helper.make_tensor("typed_i8", TensorProto.INT8, [3], [-128, 0, 127]),
        helper.make_tensor("typed_u8", TensorProto.UINT8, [2], [0, 255]),
        helper.make_tensor("typed_i32", TensorProto.INT32, [2], [-(2**31), 2**31 - 1]),
        helper.make_tensor("typed_f16", TensorProto.FLOAT16, [3], np.array([1.0, -2.5, 65504], np.float16)),
        helper.make_tensor("typed_f64", TensorProto.DOUBLE, [2], [1e300, -1e-300]),
        helper.make_tensor("typed_bool", TensorProto.BOOL, [2], [True, False]),
        helper.make_tensor("typed_u64", TensorProto.UINT64, [1], [2**64 - 1]),
        helper.make_tensor("strings", TensorProto.STRING, [2], [b"a", "é\0".encode()]),
        numpy_helper.from_array(np.array(3.25, np.float32), "scalar"),
        numpy_helper.from_array(np.zeros((0, 4), np.float32), "empty"),
        numpy_helper.from_array(rng.integers(-128, 128, (4, 6)).astype(np.int8), "raw_i8"),
    ]
    node = helper.make_node("Custom", ["x", "raw_f32"], ["y"], name="all-attributes", domain="test.domain",
                            f=-0.125, i=-7, s=b"bytes\x00here", t=numpy_helper.from_array(np.arange(3, dtype=np.int64)),
                            floats=[1.0, -2.0], ints=[-1, 2**40, 0], strings=[b"p", b"q"])
    gemm = helper.make_node("Gemm", ["x", "raw_f32"], ["z"], name="Gemm_0", transB=1, alpha=0.5)
    graph = helper.make_graph(
        [node, gemm], "every-kind",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3]),
         helper.make_tensor_value_info("z", TensorProto.FLOAT, [None, 3])], inits,
        value_info=[helper.make_tensor_value_info("w", TensorProto.INT8, [7, "n"])])
    return helper.make_model(graph, producer_name="test", opset_imports=[helper.make_opsetid("", 17),
                                                                          helper.make_opsetid("test.domain", 1)])


def test_every_field_and_encoding_matches_onnx():
    model = _every_kind()
    _same_model(onnx_proto.loads(model.SerializeToString()), model)


def test_real_export_matches_onnx(tiny_deployment):
    path = Path(tiny_deployment) / "model.onnx"
    _same_model(onnx_proto.load(path), onnx.load(str(path)))


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, wire: int, payload: bytes) -> bytes:
    if wire == 2:
        payload = _varint(len(payload)) + payload
    return _varint(number << 3 | wire) + payload


def test_unpacked_repeated_numbers_and_unknown_fields():
    """Repeated numbers one field each (proto2 style), fields this reader does not know (skipped, all wire types)."""
    tensor = b"".join([_field(1, 0, _varint(2)), _field(1, 0, _varint(3)), _field(2, 0, _varint(7)),
                       *(_field(7, 0, _varint(v)) for v in (-5, 0, 9, 1 << 40, -1, 6)),
                       _field(8, 2, b"unpacked"), _field(99, 0, _varint(1)), _field(98, 5, b"\0\0\0\0"),
                       _field(97, 1, b"\0" * 8), _field(96, 2, b"ignored")])
    graph = _field(5, 2, tensor) + _field(2, 2, b"g") + _field(77, 2, b"\x08\x01")
    model = onnx_proto.loads(_field(1, 0, _varint(8)) + _field(7, 2, graph) + _field(50, 2, b"future field"))
    (init,) = model.graph.initializer
    assert init.name == "unpacked" and list(init.dims) == [2, 3]
    np.testing.assert_array_equal(onnx_proto.to_array(init), np.array([[-5, 0, 9], [1 << 40, -1, 6]], np.int64))
    # the same tensor as the onnx package reads it
    theirs = TensorProto()
    theirs.ParseFromString(tensor)
    np.testing.assert_array_equal(numpy_helper.to_array(theirs), onnx_proto.to_array(init))


def test_absent_fields_read_as_defaults():
    model = onnx_proto.loads(_field(7, 2, b""))
    assert model.graph.node == [] and model.graph.name == "" and model.ir_version == 0
    out = onnx_proto.MESSAGES["ValueInfo"]()
    assert out.type.tensor_type.shape.dim == [] and out.type.tensor_type.elem_type == 0
    with pytest.raises(AttributeError, match="no field 'nope'"):
        out.nope  # noqa: B018


def test_external_data_is_read_from_the_models_folder(tmp_path):
    weight = np.arange(4096, dtype=np.float32).reshape(64, 64)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "ext",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])],
                              [numpy_helper.from_array(weight, "w"),
                               numpy_helper.from_array(np.ones(3, np.float32), "small")])
    model = helper.make_model(graph)
    onnx.save_model(model, str(tmp_path / "m.onnx"), save_as_external_data=True, location="weights.bin",
                    size_threshold=1024)
    ours = onnx_proto.load(tmp_path / "m.onnx")
    assert ours.graph.initializer[0].data_location == onnx_proto.EXTERNAL
    np.testing.assert_array_equal(onnx_proto.to_array(ours.graph.initializer[0]), weight)
    np.testing.assert_array_equal(onnx_proto.to_array(ours.graph.initializer[1]), np.ones(3, np.float32))
    # a location that leaves the folder is refused, not followed
    escaping = onnx.load(str(tmp_path / "m.onnx"), load_external_data=False)
    escaping.graph.initializer[0].external_data[0].value = "../weights.bin"
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "m.onnx").write_bytes(escaping.SerializeToString())
    with pytest.raises(onnx_proto.DecodeError, match="outside the model's folder"):
        onnx_proto.to_array(onnx_proto.load(sub / "m.onnx").graph.initializer[0])


@pytest.mark.parametrize("data, message", [
    (b"", "no graph"),
    (b"\x3a\x05\x0a\x03", "runs past"),                      # graph field longer than the file
    (b"\x3a\x02\x0a\x80", "runs past"),                      # a node length varint cut short
    (b"\x3b\x00", "wire type 3"),                            # group wire types do not occur in ONNX
    (_field(7, 2, _field(1, 0, _varint(1))), "not a message"),
    (bytes(range(256)) * 4, None),
])
def test_malformed_bytes_raise_decode_error(data, message):
    with pytest.raises(onnx_proto.DecodeError, match=message):
        onnx_proto.loads(data)


def test_read_names_the_file_on_bad_input(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"\x3a\x05\x0a\x03")
    with pytest.raises(SparsecoreError, match="not a readable ONNX file") as err:
        onnx_proto.read(bad)
    assert str(bad) in str(err.value)
    with pytest.raises(SparsecoreError, match="not a readable ONNX file"):
        onnx_proto.read(tmp_path / "missing.onnx")


def test_data_that_does_not_fill_the_dims_is_refused():
    short = numpy_helper.from_array(np.ones(6, np.float32), "short")
    short.dims[:] = [2, 4]
    typed = helper.make_tensor("typed", TensorProto.INT64, [3], [1, 2, 3])
    typed.dims[:] = [4]
    model = helper.make_model(helper.make_graph([], "g", [], [], [short, typed]))
    inits = onnx_proto.loads(model.SerializeToString()).graph.initializer
    with pytest.raises(onnx_proto.DecodeError, match=r"short holds 24 bytes, its dims \[2, 4\] of FLOAT need 32"):
        onnx_proto.to_array(inits[0])
    with pytest.raises(onnx_proto.DecodeError, match=r"typed holds 3 values, its dims \[4\] need 4"):
        onnx_proto.to_array(inits[1])


def test_unconvertible_type_is_named():
    tensor = helper.make_tensor("bf", TensorProto.BFLOAT16, [1], [1.0])
    model = helper.make_model(helper.make_graph([], "g", [], [], [tensor]))
    with pytest.raises(onnx_proto.DecodeError, match="bf has data type BFLOAT16"):
        onnx_proto.to_array(onnx_proto.loads(model.SerializeToString()).graph.initializer[0])

