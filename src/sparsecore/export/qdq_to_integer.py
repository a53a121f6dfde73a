"""Rewrite a QDQ ONNX graph into integer kernels (the form DeepSparse and ONNX Runtime run as int8).

Rules (everything else is left as it is):

* ``MatMul(DequantizeLinear(qa, sa, za), DequantizeLinear(qb, sb, zb)) [+ bias]`` with a per-tensor ``a``
  and a per-tensor or per-column ``b`` →
  ``Mul(Cast<float>(MatMulInteger(qa, qb, za, zb) [+ round(bias / (sa·sb)) as int32]), sa·sb)``.
  Σ(qa−za)(qb−zb) is exact in int32 and scaled once, where the QDQ graph dequantizes first (fp32
  rounding only); a constant bias joins the int32 accumulator (SparseML's MatMulInteger-Add-Cast-Mul
  layout, which DeepSparse fuses), off by at most half an accumulator unit. Weights keep
  their int8 codes (0 stays 0) with an explicit int8 zero point: DeepSparse 1.8 runs that form
  (it asserts on an int8 ``b`` without zero point), ONNX Runtime too.
* ``Gather(DequantizeLinear(q, s, z), ids)`` (quantized embeddings) → ``DequantizeLinear(Gather(q, ids), s, z)``:
  the table stays int8 and only the gathered rows are dequantized.

Weight codes are copied unchanged, so pruned zeros stay exactly zero in the int8 initializers.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from sparsecore.onnx_graph import GraphIndex


def constants_to_initializers(model: onnx.ModelProto) -> None:
    """``Constant`` nodes holding tensors → initializers (what graph rewrites and DeepSparse expect)."""
    keep = []
    for node in model.graph.node:
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
            tensor = onnx.TensorProto()
            tensor.CopyFrom(node.attribute[0].t)
            tensor.name = node.output[0]
            model.graph.initializer.append(tensor)
        else:
            keep.append(node)
    del model.graph.node[:]
    model.graph.node.extend(keep)


def _axis(node, rank: int) -> int:
    for a in node.attribute:
        if a.name == "axis":
            return a.i % rank
    return 1 % rank


def qdq_to_integer(model: onnx.ModelProto) -> dict:
    """Rewrite ``model`` in place; returns counts of what was converted."""
    constants_to_initializers(model)
    g = GraphIndex(model)
    new_nodes, absorbed, counts = {}, set(), {"MatMulInteger": 0, "Gather": 0, "int32 bias": 0}
    for node in list(g.graph.node):
        if node.op_type == "MatMul":
            done = _matmul(g, node)
            if done and done[-1] is not None:  # the bias Add now lives inside the integer chain
                absorbed.add(id(done[-1]))
                counts["int32 bias"] += 1
            done = done and done[0]
        elif node.op_type == "Gather":
            done = _gather(g, node)
        else:
            continue
        if done:
            new_nodes[id(node)] = done
            counts["MatMulInteger" if node.op_type == "MatMul" else "Gather"] += 1
    nodes = []
    for node in g.graph.node:
        if id(node) not in absorbed:
            nodes.extend(new_nodes.get(id(node), [node]))
    del g.graph.node[:]
    g.graph.node.extend(nodes)
    _prune(model)
    return counts


def _bias_add(g: GraphIndex, node, columns: int):
    """``(Add node, bias)`` when the MatMul's only consumer adds a constant per-column bias, else None."""
    users = g.consumers.get(node.output[0], [])
    if len(users) != 1 or users[0].op_type != "Add" or node.output[0] in {o.name for o in g.graph.output}:
        return None
    add = users[0]
    other = add.input[1] if add.input[0] == node.output[0] else add.input[0]
    bias = g.const(other)
    if bias is None or bias.dtype != np.float32 or bias.shape != (columns,):
        return None
    return add, bias


def _matmul(g: GraphIndex, node) -> tuple[list, object] | None:
    dq_a, dq_b = g.dq(node.input[0]), g.dq(node.input[1])
    if dq_a is None or dq_b is None or len(dq_a.input) < 3 or len(dq_b.input) < 3:
        return None
    sa, za, sb, zb = (g.const(n) for n in (dq_a.input[1], dq_a.input[2], dq_b.input[1], dq_b.input[2]))
    if any(v is None for v in (sa, za, sb, zb)) or sa.ndim != 0 or za.ndim != 0:
        return None
    qb = g.const(dq_b.input[0])
    if sb.ndim == 1:  # per-column b: only for a 2-D constant weight quantized along its columns
        if qb is None or qb.ndim != 2 or _axis(dq_b, 2) != 1:
            return None
    out, base = node.output[0], node.name or node.output[0]
    rescale = (sa.astype(np.float32) * sb.astype(np.float32)).astype(np.float32)
    scale = g.add_init(f"{base}_int_scale", rescale)
    zb_name = dq_b.input[2]
    if zb.ndim == 1 and np.all(zb == zb[0]):  # symmetric weights: one zero point (0) for every column
        zb_name = g.add_init(f"{base}_b_zero_point", np.array(zb[0], dtype=zb.dtype))
    # the zero points are always explicit: DeepSparse 1.8 rejects a MatMulInteger whose int8 b has none
    inputs = [dq_a.input[0], dq_b.input[0], dq_a.input[2], zb_name]
    nodes = [helper.make_node("MatMulInteger", inputs, [f"{base}_int32"], name=f"{base}_integer")]
    acc = f"{base}_int32"
    bias = _bias_add(g, node, qb.shape[1]) if qb is not None and qb.ndim == 2 else None
    if bias is not None:  # bias in accumulator units: rounding error ≤ sa·sb/2 per output
        add, values = bias
        out = add.output[0]
        codes = np.round(values.astype(np.float64) / np.broadcast_to(rescale, values.shape)).astype(np.int32)
        nodes.append(helper.make_node("Add", [acc, g.add_init(f"{base}_bias_int32", codes)], [f"{base}_biased"],
                                      name=f"{base}_bias"))
        acc = f"{base}_biased"
    nodes += [helper.make_node("Cast", [acc], [f"{base}_float"], to=TensorProto.FLOAT, name=f"{base}_cast"),
              helper.make_node("Mul", [f"{base}_float", scale], [out], name=f"{base}_rescale")]
    return nodes, (bias[0] if bias is not None else None)


def _gather(g: GraphIndex, node) -> list | None:
    dq = g.dq(node.input[0])
    if dq is None or g.const(dq.input[0]) is None or any(a.name == "axis" and a.i != 0 for a in node.attribute):
        return None
    table = g.const(dq.input[0])
    scale = g.const(dq.input[1])
    base = node.name or node.output[0]
    attrs = {}
    if scale is not None and scale.ndim == 1:
        if _axis(dq, table.ndim) != table.ndim - 1:
            return None
        attrs["axis"] = -1  # the table's last axis is the gathered rows' last axis
    return [helper.make_node("Gather", [dq.input[0], node.input[1]], [f"{base}_codes"], name=f"{base}_int8", axis=0),
            helper.make_node("DequantizeLinear", [f"{base}_codes", *dq.input[1:]], [node.output[0]],
                             name=f"{base}_dequantize", **attrs)]


def _prune(model: onnx.ModelProto) -> None:
    """Drop nodes whose outputs nobody reads and initializers no node uses."""
    graph = model.graph
    outputs = {o.name for o in graph.output}
    while True:
        used = {i for n in graph.node for i in n.input} | outputs
        keep = [n for n in graph.node if any(o in used for o in n.output)]
        if len(keep) == len(graph.node):
            break
        del graph.node[:]
        graph.node.extend(keep)
    used = {i for n in graph.node for i in n.input}
    inits = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(inits)


def finish_quantized(path, form: str) -> tuple[onnx.ModelProto, dict | None]:
    """A freshly exported QDQ file: constants → initializers, then (``form="integer"``) QDQ → integer kernels;
    saved in place. Returns the model and what :func:`qdq_to_integer` converted (None for ``"qdq"``)."""
    model = onnx.load(str(path))
    converted = None
    if form == "integer":
        converted = qdq_to_integer(model)
    else:
        constants_to_initializers(model)
    onnx.save(model, str(path))
    return model, converted
