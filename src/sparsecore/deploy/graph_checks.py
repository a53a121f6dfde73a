"""Check a deployment's ONNX graph against its config.json and family before any engine reads it.

A deployment folder is input from outside: a table cut short, a Linear of the wrong width or a scale of zero
would otherwise reach an engine and fail at the first call (or, worse, answer). :func:`check_graph` compares every
tensor the engines read with the shapes ``config.json`` and the family declaration imply:

- embedding tables ``(vocab_size | max_position_embeddings | type_vocab_size, embedding width)``;
- each block Linear's weight ``(K, N)`` (the exporter's transposed layout; float ``MatMul``, ``MatMulInteger`` or
  ``MatMul`` on a ``DequantizeLinear``), its bias and rescale ``(N,)``, the block count and each block's six Linears;
- LayerNorm weights and biases, the head's two Linears (``Gemm`` or integer), ELECTRA's embedding projection;
- quantizers: scales finite and positive, zero points int8/uint8 of the scale's size;
- every float32 initializer finite (no NaN or infinity).

Graphs whose node names are not the exporter's (another tool's ONNX) are checked where the names match. The
tokenizer and sequence-length checks need the Pipeline's settings: :func:`check_inputs`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sparsecore.errors import SparsecoreError
from sparsecore.families import ROLES, Family
from sparsecore.onnx_graph import GraphIndex
from sparsecore.onnx_proto import EXTERNAL, FLOAT, INT8, UINT8, to_array, type_name

_FIX = "re-export the model with sparsecore.transformers.export_onnx (and keep the folder's files together)"
_INT8 = (INT8, UINT8)


@dataclass(frozen=True)
class Dimensions:
    """The architecture numbers of ``config.json`` (BERT's key names, or DistilBERT's)."""

    hidden: int
    heads: int
    intermediate: int
    layers: int
    embedding: int  # ELECTRA's embedding width; the hidden size elsewhere
    vocab: int | None
    positions: int | None
    type_vocab: int | None
    pad_id: int

    @classmethod
    def of(cls, config: dict, where: str) -> "Dimensions":
        """Read and check the numbers; ``SparsecoreError`` naming ``where`` for a missing or impossible one."""
        def number(*keys: str, required: bool = True, default=None):
            key = next((k for k in keys if k in config), None)
            value = config.get(key) if key else default
            if value is None and not required:
                return None
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise SparsecoreError(f"config.json has {keys[0]} = {value!r}, not a positive integer", where,
                                      _FIX)
            return value

        hidden = number("hidden_size", "dim")
        heads = number("num_attention_heads", "n_heads")
        if hidden % heads:
            raise SparsecoreError(f"config.json's hidden size {hidden} is not a multiple of its {heads} attention "
                                  "heads", where, _FIX)
        pad = config.get("pad_token_id")
        if pad is not None and (not isinstance(pad, int) or isinstance(pad, bool) or pad < 0):
            raise SparsecoreError(f"config.json has pad_token_id = {pad!r}, not a token id", where, _FIX)
        eps = config.get("layer_norm_eps", 1e-12)
        if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not 0 <= eps < 1:
            raise SparsecoreError(f"config.json has layer_norm_eps = {eps!r}, not a small positive number", where, _FIX)
        return cls(hidden, heads, number("intermediate_size", "hidden_dim"), number("num_hidden_layers", "n_layers"),
                   number("embedding_size", default=hidden), number("vocab_size", required=False),
                   number("max_position_embeddings", required=False),
                   number("type_vocab_size", required=False), pad or 0)


@dataclass(frozen=True)
class GraphFacts:
    """What the Pipeline checks against its tokenizer and sequence lengths: embedding table rows (None: not found)
    and the first position id a sequence uses (past the padding id for RoBERTa-style positions, else 0)."""

    word_rows: int | None
    position_rows: int | None
    type_rows: int | None
    position_offset: int = 0


class _Graph(GraphIndex):
    """:class:`~sparsecore.onnx_graph.GraphIndex` with the look-ups the checks use."""

    def init(self, name: str):
        """The initializer (TensorProto) ``name`` refers to through aliases, or None."""
        found = self.resolve(name)
        return self.inits[found] if found is not None else None

    def weight(self, name: str):
        """The initializer behind ``name``: itself (through Identity), or the codes of a DequantizeLinear."""
        found = self.init(name)
        node = self.producer.get(name)
        if found is None and node is not None and node.op_type == "DequantizeLinear":
            found = self.init(node.input[0])
        return found

    def next_op(self, tensor: str, op_type: str, hops: int = 3):
        """The constant operand of the first ``op_type`` node on the single-user chain after ``tensor``."""
        for _ in range(hops):
            users = self.consumers.get(tensor, [])
            if len(users) != 1:
                return None
            node = users[0]
            if node.op_type == op_type:
                return next((self.init(i) for i in node.input if i != tensor and self.init(i) is not None), None)
            tensor = node.output[0]
        return None


def _shape(tensor) -> tuple[int, ...]:
    return tuple(int(d) for d in tensor.dims)


class _Checker:
    def __init__(self, graph: _Graph, where: str) -> None:
        self.g, self.where = graph, where

    def expect(self, tensor, what: str, want: tuple[int, ...], why: str) -> None:
        if tensor is not None and _shape(tensor) != want:
            raise SparsecoreError(f"{what} ({tensor.name}) has shape {_shape(tensor)}, config.json implies {want} "
                                  f"({why})", self.where, _FIX)

    def linear(self, node, what: str, k: int, n: int, why: str) -> None:
        """A MatMul/MatMulInteger/Gemm node: weight, bias and (integer) rescale against (k, n)."""
        weight = self.g.weight(node.input[1])
        if node.op_type == "Gemm":
            trans = next((a.i for a in node.attribute if a.name == "transB"), 0)
            self.expect(weight, f"{what} weight", (n, k) if trans else (k, n), why)
            bias = self.g.init(node.input[2]) if len(node.input) > 2 else None
        else:
            self.expect(weight, f"{what} weight", (k, n), why)
            bias = self.g.next_op(node.output[0], "Add", hops=1)
        if bias is not None and _shape(bias) not in ((n,), (1, n)):
            self.expect(bias, f"{what} bias", (n,), why)
        if node.op_type == "MatMulInteger":
            for i in (2, 3):
                if len(node.input) > i and node.input[i]:
                    self.zero_point(node.input[i], f"{what} zero point")
            rescale = self.g.next_op(node.output[0], "Mul")
            if rescale is not None:
                if _shape(rescale) not in ((), (1,), (n,)):
                    self.expect(rescale, f"{what} rescale", (n,), why)
                self.positive(rescale, f"{what} rescale")

    def positive(self, tensor, what: str) -> None:
        values = to_array(tensor).reshape(-1)
        if values.dtype.kind != "f":
            raise SparsecoreError(f"{what} ({tensor.name}) must be float, found {values.dtype}", self.where, _FIX)
        bad = values[~(np.isfinite(values) & (values > 0))]
        if bad.size:
            raise SparsecoreError(f"{what} ({tensor.name}) must be finite and positive, found {bad[:1]}", self.where,
                                  _FIX)

    def zero_point(self, name: str, what: str, size: int | None = None) -> None:
        tensor = self.g.init(name)
        if tensor is None:
            return
        if tensor.data_type not in _INT8 or (size is not None and int(np.prod(_shape(tensor))) != size):
            raise SparsecoreError(f"{what} ({tensor.name}) must be int8 or uint8 with {size or 'one'} value(s), found "
                                  f"{type_name(tensor.data_type).lower()} "
                                  f"of shape {_shape(tensor)}", self.where, _FIX)

    def quantizer(self, node, width: int | None = None) -> None:
        """A QuantizeLinear/DequantizeLinear: scale positive, per-tensor or one value per channel of the axis
        (``width``: the channels, when the caller knows them), zero point to match."""
        scale = self.g.init(node.input[1]) if len(node.input) > 1 else None
        if scale is None:
            return
        self.positive(scale, f"{node.op_type} scale")
        data = self.g.init(node.input[0])
        if width is None and data is not None and len(_shape(data)) == 2:
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            width = _shape(data)[axis] if -2 <= axis < 2 else None
        per_channel = int(np.prod(_shape(scale))) > 1
        if len(_shape(scale)) > 1 or (per_channel and width is not None and _shape(scale) != (width,)):
            raise SparsecoreError(f"{node.op_type} scale ({scale.name}) has shape {_shape(scale)}, expected one value "
                                  f"or one per channel ({width})", self.where, _FIX)
        if len(node.input) > 2 and node.input[2]:
            self.zero_point(node.input[2], f"{node.op_type} zero point", int(np.prod(_shape(scale)) or 1))
            zero = self.g.init(node.input[2])
            if zero is not None and _shape(zero) != _shape(scale):
                raise SparsecoreError(f"{node.op_type} zero point ({zero.name}) has shape {_shape(zero)}, its scale "
                                      f"{_shape(scale)}", self.where, _FIX)


def check_graph(model, config: dict, family: Family, num_labels: int | None,
                onnx_path: str | Path) -> GraphFacts:
    """Compare the graph's tensors with ``config.json`` (see the module docstring); returns the embedding rows the
    Pipeline checks next. ``SparsecoreError`` naming the file, the tensor, the shape found and the one expected."""
    where = str(onnx_path)
    d = Dimensions.of(config, str(Path(onnx_path).with_name("config.json")))
    g = _Graph(model)
    c = _Checker(g, where)
    h, inner = d.hidden, d.intermediate
    sizes = {"query": (h, h), "key": (h, h), "value": (h, h), "attn_out": (h, h), "intermediate": (h, inner),
             "output": (inner, h)}
    found: dict[int, set] = {}
    head_paths = [p.replace(".", "/") for p in family.head]
    head_sizes = [(h, h), (h, num_labels)] if num_labels else [(h, h), None]
    tables = {}
    for node in model.graph.node:
        op = node.op_type
        if op in ("QuantizeLinear", "DequantizeLinear"):
            c.quantizer(node)
        if op == "Gather" and node.input and g.init(node.input[0]) is not None:
            name = next((t for t in ("word_embeddings", "position_embeddings", "token_type_embeddings")
                         if f"/{t}/" in node.name), "word_embeddings" if node.input[1] == "input_ids" else None)
            if name:
                tables[name] = g.init(node.input[0])
                after = g.consumers.get(node.output[0], [])
                if len(after) == 1 and after[0].op_type == "DequantizeLinear":
                    c.quantizer(after[0], d.embedding)
        if op not in ("MatMul", "MatMulInteger", "Gemm") or len(node.input) < 2 or g.weight(node.input[1]) is None:
            continue
        suffix = {"MatMul": "MatMul", "MatMulInteger": "MatMul_integer", "Gemm": "Gemm"}[op]
        if op != "Gemm" and (linear := family.block_linear(node.name, suffix)):
            role, block = linear
            if block >= d.layers:
                raise SparsecoreError(f"the graph has a block {block} Linear ({node.name}) but config.json has "
                                      f"num_hidden_layers = {d.layers}", where, _FIX)
            found.setdefault(block, set()).add(role)
            c.linear(node, f"layer {block} {family.linears[role]}", *sizes[role],
                     f"hidden_size {h}, intermediate_size {inner}")
        elif (k := next((i for i, p in enumerate(head_paths) if node.name.endswith(f"/{p}/{suffix}")), None)) \
                is not None and head_sizes[k]:
            c.linear(node, family.head[k], *head_sizes[k], f"hidden_size {h}, {num_labels} labels")
        elif node.name.endswith(f"embeddings_project/{suffix}"):
            c.linear(node, "embeddings_project", d.embedding, h, f"embedding_size {d.embedding}, hidden_size {h}")
    _check_finite(model, where)
    if found and (set(found) != set(range(d.layers)) or any(v != set(ROLES) for v in found.values())):
        block = next(i for i in range(d.layers) if found.get(i) != set(ROLES))
        missing = [r for r in ROLES if r not in found.get(block, set())]
        raise SparsecoreError(f"block {block} of num_hidden_layers = {d.layers} has no "
                              f"{', '.join(family.linears[r] for r in missing)} Linear in the graph", where, _FIX)
    _check_norms(c, g, family, d)
    rows = {"word_embeddings": ("vocab_size", d.vocab), "position_embeddings": ("max_position_embeddings", d.positions),
            "token_type_embeddings": ("type_vocab_size", d.type_vocab)}
    for name, table in tables.items():
        key, count = rows[name]
        if count is not None:
            c.expect(table, name.replace("_", " ").removesuffix("s") + " table", (count, d.embedding),
                     f"{key} {count}, embedding width {d.embedding}")
        elif len(_shape(table)) != 2 or _shape(table)[1] != d.embedding:
            raise SparsecoreError(f"{name} table ({table.name}) has shape {_shape(table)}, expected (rows, "
                                  f"{d.embedding})", where, _FIX)
    rows_of = {name: _shape(t)[0] for name, t in tables.items()}
    return GraphFacts(rows_of.get("word_embeddings"), rows_of.get("position_embeddings"),
                      rows_of.get("token_type_embeddings"), d.pad_id + 1 if family.positions == "after_padding" else 0)


def _check_finite(model, where: str) -> None:
    """Every float32 initializer holds finite numbers."""
    for tensor in model.graph.initializer:
        if tensor.data_type != FLOAT or tensor.data_location == EXTERNAL:
            continue
        values = np.frombuffer(tensor.raw_data, np.float32) if tensor.raw_data else np.asarray(tensor.float_data)
        with np.errstate(over="ignore"):
            finite = np.isfinite(values.sum())  # fast path; a sum that overflows is looked at value by value
        if values.size and not finite and not np.isfinite(values).all():
            bad = int((~np.isfinite(values)).sum())
            raise SparsecoreError(f"tensor {tensor.name} holds {bad:,} NaN or infinite value(s)", where, _FIX)


def _check_norms(c: _Checker, g: _Graph, family: Family, d: Dimensions) -> None:
    names = [(f"embeddings.LayerNorm.{p}", d.embedding) for p in ("weight", "bias")]
    names += [(f"{family.blocks}.{i}.{norm}.{p}", d.hidden) for i in range(d.layers) for norm in family.layer_norms
              for p in ("weight", "bias")]
    for suffix, width in names:
        name = next((n for n in (*g.inits, *g.alias) if n == suffix or n.endswith("." + suffix)), None)
        tensor = g.init(name) if name else None
        c.expect(tensor, suffix.replace(".weight", " weight").replace(".bias", " bias"), (width,),
                 f"hidden_size {d.hidden}" if width == d.hidden else f"embedding width {width}")


def check_inputs(facts: GraphFacts, tokenizer_tokens: int, positions: int, pairs: bool, onnx_path: Path) -> None:
    """The tables against what the Pipeline will feed: every token id of the tokenizer, ``positions`` position ids
    (the longest sequence length, plus the padding offset of RoBERTa-style positions), token type 1 for pairs."""
    onnx_file = str(onnx_path)
    if facts.word_rows is not None and facts.word_rows < tokenizer_tokens:
        raise SparsecoreError(f"the word-embedding table has {facts.word_rows:,} rows but tokenizer.json has "
                              f"{tokenizer_tokens:,} tokens", onnx_file, _FIX)
    if facts.position_rows is not None and facts.position_rows < positions:
        raise SparsecoreError(f"the position-embedding table has {facts.position_rows} rows, {positions} are needed "
                              "for the longest sequence length", onnx_file, "use a shorter sequence_length, or " + _FIX)
    if pairs and facts.type_rows is not None and facts.type_rows < 2:
        raise SparsecoreError(f"the token-type table has {facts.type_rows} row(s) but the model takes sentence pairs "
                              "(token type 1)", onnx_file, _FIX)
