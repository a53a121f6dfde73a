"""A read-only ONNX file reader in plain Python and NumPy: what the runtime reads of an export, without the
``onnx`` package (whose import alone takes longer than loading and running a small sparse model).

:func:`load` decodes the protobuf wire format of ``ModelProto`` into light objects that carry the field names of
``onnx``'s own classes (``model.graph.node[i].op_type``, ``.attribute``, ``graph.initializer``,
``graph.input[i].type.tensor_type.shape.dim``, ...), so code written against ``onnx`` reads them unchanged; a field
absent from the file reads as protobuf's default (0, ``""``, ``b""``, an empty list or an empty message).
Tensor bytes stay views of the file's buffer; :func:`to_array` gives a tensor's values as a NumPy array (raw,
typed or external data). Both packed and unpacked encodings of repeated numbers are read, and unknown fields
are skipped, as protobuf parsers must. Decoding errors raise :class:`DecodeError` (a ``ValueError``).

Schema: field numbers of onnx/onnx.proto (IR version 10); only the messages and fields the runtime reads.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import ClassVar

import numpy as np

# TensorProto.DataType → (name, NumPy dtype or None for types this reader does not convert)
DATA_TYPES = {
    1: ("FLOAT", np.dtype("<f4")), 2: ("UINT8", np.dtype(np.uint8)), 3: ("INT8", np.dtype(np.int8)),
    4: ("UINT16", np.dtype("<u2")), 5: ("INT16", np.dtype("<i2")), 6: ("INT32", np.dtype("<i4")),
    7: ("INT64", np.dtype("<i8")), 8: ("STRING", np.dtype(object)), 9: ("BOOL", np.dtype(np.bool_)),
    10: ("FLOAT16", np.dtype("<f2")), 11: ("DOUBLE", np.dtype("<f8")), 12: ("UINT32", np.dtype("<u4")),
    13: ("UINT64", np.dtype("<u8")), 14: ("COMPLEX64", np.dtype("<c8")), 15: ("COMPLEX128", np.dtype("<c16")),
    16: ("BFLOAT16", None),
}
FLOAT, UINT8, INT8, INT64, STRING = 1, 2, 3, 7, 8
EXTERNAL = 1  # TensorProto.DataLocation


class DecodeError(ValueError):
    """The bytes are not a well-formed ONNX (protobuf) message."""


class Message:
    """A decoded message: set fields as attributes, the rest read as their protobuf defaults."""

    FIELDS: ClassVar[dict[int, tuple[str, str, bool]]] = {}  # number → (name, kind, repeated)
    _DEFAULTS: ClassVar[dict] = {"int": 0, "uint": 0, "float": 0.0, "double": 0.0, "str": "", "bytes": b"", "raw": b""}

    def __getattr__(self, name: str):
        for field, kind, repeated in self.FIELDS.values():
            if field == name:
                if repeated:
                    return []
                return self._DEFAULTS[kind] if kind in self._DEFAULTS else MESSAGES[kind]()
        raise AttributeError(f"{type(self).__name__} has no field {name!r}")

    def HasField(self, name: str) -> bool:
        return name in self.__dict__

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}=...' for k in self.__dict__)})"


def _message(name: str, fields: dict[int, tuple[str, str, bool]]) -> type[Message]:
    return type(name, (Message,), {"FIELDS": fields, "__module__": __name__})


_R, _S = True, False  # repeated, single
MESSAGES: dict[str, type[Message]] = {}
for _name, _fields in {
    "Model": {1: ("ir_version", "int", _S), 2: ("producer_name", "str", _S), 3: ("producer_version", "str", _S),
              4: ("domain", "str", _S), 5: ("model_version", "int", _S), 6: ("doc_string", "str", _S),
              7: ("graph", "Graph", _S), 8: ("opset_import", "OperatorSet", _R),
              14: ("metadata_props", "StringPair", _R)},
    "OperatorSet": {1: ("domain", "str", _S), 2: ("version", "int", _S)},
    "StringPair": {1: ("key", "str", _S), 2: ("value", "str", _S)},
    "Graph": {1: ("node", "Node", _R), 2: ("name", "str", _S), 5: ("initializer", "Tensor", _R),
              10: ("doc_string", "str", _S), 11: ("input", "ValueInfo", _R), 12: ("output", "ValueInfo", _R),
              13: ("value_info", "ValueInfo", _R)},
    "Node": {1: ("input", "str", _R), 2: ("output", "str", _R), 3: ("name", "str", _S), 4: ("op_type", "str", _S),
             5: ("attribute", "Attribute", _R), 6: ("doc_string", "str", _S), 7: ("domain", "str", _S)},
    "Attribute": {1: ("name", "str", _S), 2: ("f", "float", _S), 3: ("i", "int", _S), 4: ("s", "bytes", _S),
                  5: ("t", "Tensor", _S), 6: ("g", "Graph", _S), 7: ("floats", "float", _R),
                  8: ("ints", "int", _R), 9: ("strings", "bytes", _R), 10: ("tensors", "Tensor", _R),
                  11: ("graphs", "Graph", _R), 13: ("doc_string", "str", _S), 20: ("type", "int", _S),
                  21: ("ref_attr_name", "str", _S)},
    "Tensor": {1: ("dims", "int", _R), 2: ("data_type", "int", _S), 4: ("float_data", "float", _R),
               5: ("int32_data", "int", _R), 6: ("string_data", "bytes", _R), 7: ("int64_data", "int", _R),
               8: ("name", "str", _S), 9: ("raw_data", "raw", _S), 10: ("double_data", "double", _R),
               11: ("uint64_data", "uint", _R), 12: ("doc_string", "str", _S),
               13: ("external_data", "StringPair", _R), 14: ("data_location", "int", _S)},
    "ValueInfo": {1: ("name", "str", _S), 2: ("type", "Type", _S), 3: ("doc_string", "str", _S)},
    "Type": {1: ("tensor_type", "TensorType", _S), 6: ("denotation", "str", _S)},
    "TensorType": {1: ("elem_type", "int", _S), 2: ("shape", "Shape", _S)},
    "Shape": {1: ("dim", "Dimension", _R)},
    "Dimension": {1: ("dim_value", "int", _S), 2: ("dim_param", "str", _S), 3: ("denotation", "str", _S)},
}.items():
    MESSAGES[_name] = _message(_name, _fields)


def _varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise DecodeError("a varint runs past its message")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _signed(value: int) -> int:
    """An int32/int64 field's value: negative numbers are sent as 64-bit two's complement."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _packed(buf: memoryview, start: int, end: int, kind: str) -> list:
    if kind == "float":
        return np.frombuffer(buf[start:end], "<f4").tolist()
    if kind == "double":
        return np.frombuffer(buf[start:end], "<f8").tolist()
    values, pos = [], start
    while pos < end:
        value, pos = _varint(buf, pos, end)
        values.append(value if kind == "uint" else _signed(value))
    return values


def _scalar(buf: memoryview, wire: int, pos: int, end: int, kind: str):
    """(value, next position) of one non-message field."""
    if wire == 0:
        value, pos = _varint(buf, pos, end)
        return (_signed(value) if kind == "int" else value), pos
    if wire == 5:
        if pos + 4 > end:
            raise DecodeError("a 32-bit field runs past its message")
        return struct.unpack_from("<f", buf, pos)[0], pos + 4
    if wire == 1:
        if pos + 8 > end:
            raise DecodeError("a 64-bit field runs past its message")
        return struct.unpack_from("<d", buf, pos)[0], pos + 8
    raise DecodeError(f"wire type {wire} where a number was expected")


def _decode(buf: memoryview, start: int, end: int, cls: type[Message]) -> Message:
    msg = cls.__new__(cls)
    fields, values = cls.FIELDS, msg.__dict__
    pos = start
    while pos < end:
        tag, pos = _varint(buf, pos, end)
        number, wire = tag >> 3, tag & 7
        if wire == 2:
            size, pos = _varint(buf, pos, end)
            stop = pos + size
            if stop > end:
                raise DecodeError(f"field {number} of {cls.__name__} runs past its message")
        elif wire in (0, 1, 5):
            stop = None
        else:
            raise DecodeError(f"wire type {wire} (field {number} of {cls.__name__}) is not in ONNX files")
        spec = fields.get(number)
        if spec is None:  # unknown field: skip it
            pos = stop if stop is not None else _scalar(buf, wire, pos, end, "uint")[1]
            continue
        name, kind, repeated = spec
        if kind in MESSAGES:
            if stop is None:
                raise DecodeError(f"field {name} of {cls.__name__} is not a message")
            value = _decode(buf, pos, stop, MESSAGES[kind])
        elif kind in ("str", "bytes", "raw"):
            if stop is None:
                raise DecodeError(f"field {name} of {cls.__name__} is not a string")
            value = buf[pos:stop] if kind == "raw" else bytes(buf[pos:stop])  # raw tensor bytes: a view, no copy
            if kind == "str":
                value = value.decode("utf-8", "replace")
        elif stop is not None:  # packed repeated numbers
            if not repeated:
                raise DecodeError(f"field {name} of {cls.__name__} is a number, found bytes")
            values.setdefault(name, []).extend(_packed(buf, pos, stop, kind))
            pos = stop
            continue
        else:
            value, stop = _scalar(buf, wire, pos, end, kind)
        pos = stop
        if repeated:
            values.setdefault(name, []).append(value)
        else:
            values[name] = value
    return msg


def loads(data: bytes | memoryview, base: str | Path | None = None) -> Message:
    """Decode a serialized ``ModelProto``; ``base``: the folder external tensor data is read from."""
    buf = memoryview(data).cast("B")
    model = _decode(buf, 0, len(buf), MESSAGES["Model"])
    if "graph" not in model.__dict__:
        raise DecodeError("no graph: not an ONNX model")
    model.__dict__["base"] = None if base is None else Path(base)
    for tensor in model.graph.initializer:
        tensor.__dict__["base"] = model.base
    return model


def load(path: str | Path) -> Message:
    """Read and decode the ONNX file at ``path`` (external data stays on disk until :func:`to_array`)."""
    path = Path(path)
    return loads(path.read_bytes(), path.parent)


def read(path: str | Path) -> Message:
    """:func:`load` for files from outside: a missing, unreadable or malformed file raises one ``SparsecoreError``
    naming it."""
    from sparsecore.errors import SparsecoreError

    try:
        return load(path)
    except (OSError, DecodeError) as exc:
        raise SparsecoreError(f"not a readable ONNX file ({exc})", str(path),
                              "pass the model.onnx written by sparsecore.transformers.export_onnx") from None


def _external(tensor: Message) -> memoryview:
    info = {entry.key: entry.value for entry in tensor.external_data}
    base = tensor.__dict__.get("base")
    if "location" not in info or base is None:
        raise DecodeError(f"tensor {tensor.name} keeps its data outside the file but names no location")
    target = (base / info["location"]).resolve()
    if base.resolve() not in target.parents:
        raise DecodeError(f"tensor {tensor.name}'s data file {info['location']!r} lies outside the model's folder")
    offset = int(info.get("offset", 0))
    with open(target, "rb") as f:
        f.seek(offset)
        data = f.read(int(info["length"])) if "length" in info else f.read()
    return memoryview(data)


def to_array(tensor) -> np.ndarray:
    """A tensor's values, shaped by its dims (``onnx.numpy_helper.to_array``'s result for the types it shares;
    ``onnx``'s own TensorProto objects are passed to that function)."""
    if not isinstance(tensor, Message):
        from onnx import numpy_helper

        return numpy_helper.to_array(tensor)
    name, dtype = DATA_TYPES.get(tensor.data_type, (str(tensor.data_type), None))
    if dtype is None:
        raise DecodeError(f"tensor {tensor.name} has data type {name}, which this reader does not convert")
    shape = tuple(tensor.dims)
    if tensor.data_type == STRING:
        return np.array([bytes(s).decode("utf-8") for s in tensor.string_data], dtype=object).reshape(shape)
    raw = _external(tensor) if tensor.data_location == EXTERNAL else tensor.raw_data
    count = int(np.prod(shape, dtype=np.int64))
    if len(raw):
        if len(raw) != count * dtype.itemsize:
            raise DecodeError(f"tensor {tensor.name} holds {len(raw)} bytes, its dims {list(shape)} of {name} need "
                              f"{count * dtype.itemsize}")
        return np.frombuffer(raw, dtype).reshape(shape)
    if dtype.kind == "f" and dtype.itemsize == 4:
        typed = np.asarray(tensor.float_data, dtype)
    elif dtype.itemsize == 8 and dtype.kind == "f":
        typed = np.asarray(tensor.double_data, dtype)
    elif tensor.data_type == INT64:
        typed = np.asarray(tensor.int64_data, dtype)
    elif tensor.data_type in (12, 13):
        typed = np.asarray(tensor.uint64_data, dtype)
    elif tensor.data_type == 10:  # float16 bits in int32_data
        typed = np.asarray(tensor.int32_data, np.uint16).view(dtype)
    elif dtype.kind == "c":
        pairs = tensor.float_data if dtype.itemsize == 8 else tensor.double_data
        typed = np.asarray(pairs, np.float64).view(np.complex128).astype(dtype)
    else:
        typed = np.asarray(tensor.int32_data).astype(dtype)
    if typed.size != count:
        raise DecodeError(f"tensor {tensor.name} holds {typed.size} values, its dims {list(shape)} need {count}")
    return typed.reshape(shape)


def type_name(data_type: int) -> str:
    """``TensorProto.DataType`` name of a data type number (``"FLOAT"``, ``"INT8"``, ...)."""
    return DATA_TYPES.get(data_type, (f"type {data_type}",))[0]
