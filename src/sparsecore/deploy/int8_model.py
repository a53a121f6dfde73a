"""The integer parts of a quantized export (``--quantized_format integer``), read for ``engine="sparsecore"``.

What :func:`sparsecore.export.qdq_to_integer.qdq_to_integer` writes for one quantized Linear, and what is read
back from it here (names from the exporter: ``/…/layer.3/intermediate/dense/MatMul_integer``)::

    QuantizeLinear(x, sa, za) → MatMulInteger(qa, W (K, N) int8, za, zb) [→ Add(int32 bias)] → Cast → Mul(sa·sb)

and for the two attention products of a layer (``…/attention/self/MatMul_integer`` = Q·Kᵀ and
``MatMul_1_integer`` = P·V) the four activation quantizers (Q, K, softmax P, V). Embedding tables are int8
``Gather → DequantizeLinear`` (per-tensor or per-feature scale): the position and token-type tables are
dequantized at load, the word table stays codes (:class:`~sparsecore.kernels.embeddings.CodeTable`) whose rows
the lookup dequantizes, exactly as ``DequantizeLinear`` does per gathered row. LayerNorm, softmax and GELU stay
fp32, as in the graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sparsecore.errors import SparsecoreError
from sparsecore.families import Family
from sparsecore.kernels.embeddings import CodeTable
from sparsecore.onnx_graph import GraphIndex

_FIX = "re-export the model with sparsecore.transformers.export_onnx, or use engine='onnxruntime'"


@dataclass(frozen=True)
class ActQuant:
    """A per-tensor uint8 activation quantizer: ``q = clip(round(x / scale) + zero, 0, 255)``."""

    scale: float
    zero: int


@dataclass
class QuantLinear:
    """``y = (Σ_k codes[n, k]·(q_k − za) + bias[n]) · rescale[n]`` with q the uint8 codes of the input."""

    codes: np.ndarray  # (N, K) int8, torch layout; pruned weights are exact zeros
    bias: np.ndarray  # (N,) int64, accumulator units (zeros when the graph has none)
    rescale: np.ndarray  # (N,) float32: sa·sb
    act: ActQuant


@dataclass(frozen=True)
class AttentionQuant:
    """The quantizers in front of Q·Kᵀ (q, k) and softmax(…)·V (p, v), and the graph's rescales of the two
    integer products (sq·sk and sp·sv, as stored: fp32 products of the scales)."""

    q: ActQuant
    k: ActQuant
    p: ActQuant
    v: ActQuant
    scores_rescale: float
    context_rescale: float


class IntegerGraph:
    """Look-ups over one integer export: producers, consumers and constant initializers."""

    def __init__(self, model, const, where: str) -> None:
        self.const, self.where = const, where  # const(name) -> the initializer's array (through aliases) or None
        self.nodes = {n.name: n for n in model.graph.node}
        index = GraphIndex(model)
        self.producer, self.consumers = index.producer, index.consumers

    def _fail(self, what: str):
        raise SparsecoreError(what, self.where, _FIX)

    def array(self, name: str) -> np.ndarray:
        """The constant initializer ``name`` (through aliases); ``SparsecoreError`` when it is not a constant."""
        value = self.const(name)
        if value is None:
            self._fail(f"{name} is not a constant of the graph")
        return value

    def only_user(self, tensor: str):
        """The node consuming ``tensor`` when exactly one does, else None."""
        users = self.consumers.get(tensor, [])
        return users[0] if len(users) == 1 else None

    def act_quant(self, tensor: str, what: str) -> ActQuant:
        """The per-tensor uint8 ``QuantizeLinear`` producing ``tensor`` (the input of ``what``, for errors)."""
        node = self.producer.get(tensor)
        if node is None or node.op_type != "QuantizeLinear" or len(node.input) < 3:
            self._fail(f"the input of {what} does not come from a QuantizeLinear")
        scale, zero = self.array(node.input[1]), self.array(node.input[2])
        if scale.size != 1 or zero.size != 1 or zero.dtype != np.uint8:
            self._fail(f"{what} has a per-channel or int8 activation quantizer (only per-tensor uint8 is supported)")
        return ActQuant(float(scale.reshape(())), int(zero.reshape(())))

    def matmul_integer(self, name: str) -> object:
        """The ``MatMulInteger`` node called ``name``; ``SparsecoreError`` when there is none."""
        node = self.nodes.get(name)
        if node is None or node.op_type != "MatMulInteger":
            self._fail(f"the export has no MatMulInteger node {name}")
        return node

    def linear(self, name: str) -> QuantLinear:
        """The :class:`QuantLinear` of MatMulInteger ``name``: codes transposed to (N, K), symmetric int8 weights
        (zero point 0), its input quantizer, and the bias and rescale of the chain after it."""
        node = self.matmul_integer(name)
        codes_t = self.array(node.input[1])  # (K, N) int8
        zb = self.array(node.input[3]) if len(node.input) > 3 and node.input[3] else np.zeros(1, np.int8)
        if codes_t.dtype != np.int8 or codes_t.ndim != 2 or np.any(zb != 0):
            self._fail(f"{name} has non-symmetric or non-int8 weights (zero point ≠ 0)")
        bias, rescale = self.requantization(node, codes_t.shape[1])
        act = self.act_quant(node.input[0], name)
        if len(node.input) > 2 and node.input[2] and int(self.array(node.input[2]).reshape(())) != act.zero:
            self._fail(f"{name} uses a zero point other than its input quantizer's")
        return QuantLinear(np.ascontiguousarray(codes_t.T), bias, rescale, act)

    def requantization(self, node, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``(bias (n,) int64, rescale (n,) float32)`` of the chain after a MatMulInteger."""
        bias, rescale, tensor = np.zeros(n, np.int64), None, node.output[0]
        for _ in range(3):  # MatMulInteger → [Add int32 bias] → Cast → Mul(rescale)
            user = self.only_user(tensor)
            if user is None:
                break
            other = [self.const(i) for i in user.input if i != tensor]
            value = other[0] if len(other) == 1 else None
            if user.op_type == "Add" and value is not None and value.dtype == np.int32:
                bias = value.astype(np.int64).reshape(-1) + np.zeros(n, np.int64)
            elif user.op_type == "Mul" and value is not None:
                rescale = value.astype(np.float32).reshape(-1) * np.ones(n, np.float32)
                break
            elif user.op_type != "Cast":
                break
            tensor = user.output[0]
        if rescale is None:
            self._fail(f"{node.name} is not followed by Cast → Mul(rescale)")
        return bias, rescale

    def attention(self, prefix: str) -> AttentionQuant:
        """The :class:`AttentionQuant` of the self-attention at ``prefix`` (its ``MatMul_integer`` = Q·Kᵀ and
        ``MatMul_1_integer`` = P·V, which must add no bias)."""
        scores = self.matmul_integer(f"{prefix}/MatMul_integer")
        context = self.matmul_integer(f"{prefix}/MatMul_1_integer")
        rescales = []
        for node in (scores, context):
            bias, rescale = self.requantization(node, 1)
            if np.any(bias != 0):
                self._fail(f"{node.name} adds a constant to an attention product")
            rescales.append(float(rescale[0]))
        return AttentionQuant(self.act_quant(scores.input[0], f"{prefix} Q"),
                              self.act_quant(scores.input[1], f"{prefix} K"),
                              self.act_quant(context.input[0], f"{prefix} softmax"),
                              self.act_quant(context.input[1], f"{prefix} V"), *rescales)

    def embedding(self, gather_name: str) -> CodeTable:
        """The table of an int8 ``Gather → DequantizeLinear`` pair, kept as its codes (rows dequantized when read)."""
        gather = self.nodes.get(gather_name)
        if gather is None:
            self._fail(f"the export has no int8 embedding Gather {gather_name}")
        dq = self.only_user(gather.output[0])
        if dq is None or dq.op_type != "DequantizeLinear":
            self._fail(f"{gather_name} is not followed by DequantizeLinear")
        codes = self.array(gather.input[0])
        zero = self.array(dq.input[2]) if len(dq.input) > 2 and dq.input[2] else 0
        scale = self.array(dq.input[1])
        axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)  # of the gathered (batch, seq, E) codes
        per_feature = np.size(scale) == codes.shape[1] and axis in (2, -1)
        if np.ndim(scale) > 1 or np.ndim(zero) > 1 or not (np.size(scale) == 1 or per_feature) or \
                np.size(zero) not in (1, np.size(scale)):
            self._fail(f"{gather_name}'s DequantizeLinear is not per tensor or per embedding feature")
        return CodeTable.of(codes, zero, scale)


def fuse_qkv(parts: list[QuantLinear], where: str) -> QuantLinear:
    """Q, K and V as one (3H, H) integer Linear: they must share their input quantizer."""
    if len({p.act for p in parts}) != 1:
        raise SparsecoreError("the query, key and value Linears of a layer quantize their input differently",
                              where, "export with one quantizer per attention input, or use engine='onnxruntime'")
    return QuantLinear(np.concatenate([p.codes for p in parts]), np.concatenate([p.bias for p in parts]),
                       np.concatenate([p.rescale for p in parts]), parts[0].act)


TABLES = ("word_embeddings", "position_embeddings", "token_type_embeddings")


def read_integer_encoder(model, const, family: Family, n_layers: int, where: str) -> dict:
    """The integer parts of an encoder classifier export: ``layers`` (per layer {role: QuantLinear}),
    ``attention`` (per layer AttentionQuant, None where fp32), ``tables`` {name: fp32 table; the word table a
    :class:`CodeTable`}, and ``head``
    (the head's hidden/output Linear, by position) and ``project`` where quantized. Parts left out are fp32 in
    the graph and read by the caller."""
    g = IntegerGraph(model, const, where)
    layers: list[dict] = [{} for _ in range(n_layers)]
    attention: list[AttentionQuant | None] = [None] * n_layers
    scores = family.onnx_node("query", "MatMul_integer", attention=True)
    head_names = [p.replace(".", "/") + "/MatMul_integer" for p in family.head]
    tables, head, project = {}, {}, None
    for name, node in g.nodes.items():
        if node.op_type == "Gather" and name.endswith("/Gather_int8"):
            table = next((t for t in TABLES if f"/{t}/" in name), None)
            if table:
                codes = g.embedding(name)
                tables[table] = codes if table == "word_embeddings" else codes.dense()
        if node.op_type != "MatMulInteger":
            continue
        if linear := family.block_linear(name, "MatMul_integer"):
            role, block = linear
            layers[block][role] = g.linear(name)
        elif match := scores.search(name):
            attention[int(match.group(1))] = g.attention(name.removesuffix("/MatMul_integer"))
        elif any(name.endswith("/" + h) for h in head_names):
            head[next(i for i, h in enumerate(head_names) if name.endswith("/" + h))] = g.linear(name)
        elif name.endswith("embeddings_project/MatMul_integer"):
            project = g.linear(name)
        elif not name.endswith("MatMul_1_integer"):  # P·V is read with its layer's Q·Kᵀ
            g._fail(f"the export has an integer product the engine does not know: {name}")
    return {"layers": layers, "attention": attention, "tables": tables, "head": head, "project": project}
