"""An encoder classifier read from our ONNX export, as arrays the sparsecore engine runs.

The family (:mod:`sparsecore.families`, from config.json's ``model_type``) names everything: block Linears
are found through the exporter's node names (``/…/encoder/layer.3/intermediate/dense/MatMul``; weights
stored transposed, (K, N)), their biases and the LayerNorms by parameter name, the head's two Linears as
``Gemm`` nodes (``…/pooler/dense/Gemm``, ``…/classifier/Gemm``). Integer exports (``MatMulInteger``
Linears, int8 embedding tables, quantized attention products) are read by
:mod:`sparsecore.deploy.int8_model`; a graph may mix both. Architecture numbers (heads, LayerNorm eps,
activation, padding id) come from the deployment's config.json. Anything unexpected is a clear error,
never a silent mis-read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sparsecore import onnx_proto
from sparsecore.deploy.int8_model import TABLES, AttentionQuant, QuantLinear, read_integer_encoder
from sparsecore.errors import SparsecoreError
from sparsecore.families import ROLES, Family, family_of
from sparsecore.kernels.embeddings import CodeTable
from sparsecore.onnx_graph import GraphIndex
from sparsecore.onnx_proto import to_array

_FIX = "export the model with sparsecore.transformers.export_onnx"
Linear = tuple  # (W (N, K) float32, b (N,)), torch layout


@dataclass
class EncoderArrays:
    """Arrays of one exported classifier. A Linear is ``(W (N, K) float32, b (N,))`` or, quantized, a
    :class:`QuantLinear`; ``attention_quant[i]`` holds layer i's attention quantizers (None: fp32)."""

    family: Family
    word: np.ndarray | CodeTable  # an int8 export's word table stays codes (CodeTable), dequantized row by row
    position: np.ndarray
    token_type: np.ndarray | None  # None: the family has no token types (DistilBERT)
    embed_ln: tuple[np.ndarray, np.ndarray]
    layers: list[dict]  # per layer: {role: Linear | QuantLinear} + "ln1", "ln2": (gamma, beta)
    head: tuple  # the head's hidden and output Linears (family.head), family.head_activation between them
    heads: int
    eps: float
    pad_id: int = 0  # RoBERTa positions count from pad_id + 1
    project: Linear | QuantLinear | None = None  # ELECTRA's embeddings → hidden projection
    attention_quant: list[AttentionQuant | None] | None = None
    pair_head: Linear | None = None  # a siamese export's head (``head`` is then empty): sparsecore.deploy.pair_head
    pair_regression: bool = False  # the siamese head reads the cosine of the two embeddings

    @property
    def quantized(self) -> bool:
        """True when any Linear (block, head or projection) is a :class:`QuantLinear`."""
        return any(isinstance(v, QuantLinear) for v in (*self.head, self.project)) or any(
            isinstance(v, QuantLinear) for layer in self.layers for v in layer.values())

    def positions(self, ids: np.ndarray) -> np.ndarray:
        """Position ids ``(batch, seq)`` as the family's embeddings compute them."""
        if self.family.positions == "after_padding":
            real = ids != self.pad_id
            return np.cumsum(real, axis=1) * real + self.pad_id
        return np.broadcast_to(np.arange(ids.shape[1]), ids.shape)


def _config(config_path: Path) -> tuple[dict, Family]:
    config = json.loads(Path(config_path).read_text())
    family = family_of(config.get("model_type"), str(config_path))
    act = config.get("hidden_act", config.get("activation", "gelu"))
    if not family.engine or act != "gelu":
        raise SparsecoreError(f"engine='sparsecore' runs encoders with exact GELU, this is {family.name} / {act!r}",
                              str(config_path), "use engine='onnxruntime' for this model")
    return config, family


def load_encoder_arrays(onnx_path: Path, config_path: Path) -> EncoderArrays:
    """Read an exported classifier (float, integer or mixed) into :class:`EncoderArrays`.

    ``config_path``: the deployment's config.json (family, layer and head counts, LayerNorm eps, padding id).
    Raises ``SparsecoreError`` for a family or activation the engine does not run (only exact GELU) and for any
    missing Linear, LayerNorm, embedding table or head node.
    """
    config, family = _config(config_path)
    model = onnx_proto.read(onnx_path)
    index = GraphIndex(model)
    inits, alias, resolve = index.inits, index.alias, index.resolve

    def array(name: str) -> np.ndarray:
        if resolve(name) is None:
            raise SparsecoreError(f"the export has no tensor {name}", str(onnx_path), _FIX)
        return to_array(inits[resolve(name)]).astype(np.float32)

    def const(name: str) -> np.ndarray | None:
        return to_array(inits[resolve(name)]) if resolve(name) else None

    def param(suffix: str, required: bool = True) -> np.ndarray | None:
        hits = [name for name in (*inits, *alias) if (name == suffix or name.endswith("." + suffix)) and resolve(name)]
        if len(hits) != 1 and (required or hits):
            raise SparsecoreError(f"the export has {len(hits)} initializers named *{suffix}", str(onnx_path), _FIX)
        return array(hits[0]) if hits else None

    n_layers = int(config.get("num_hidden_layers", config.get("n_layers", 0)))
    siamese = any(i.name == "input_ids_b" for i in model.graph.input)  # sparsecore.adapters.pair_encoder's graph
    if siamese and any(node.op_type == "MatMulInteger" for node in model.graph.node):
        raise SparsecoreError("engine='sparsecore' runs float siamese pair classifiers; this export is quantized",
                              str(onnx_path), "use engine='onnxruntime' or 'deepsparse' for it")
    integer = read_integer_encoder(model, const, family, n_layers, str(onnx_path)) if any(
        node.op_type == "MatMulInteger" for node in model.graph.node) else {
        "layers": [{} for _ in range(n_layers)], "attention": [None] * n_layers, "tables": {}, "head": {},
        "project": None}
    layers, head, project = integer["layers"], dict(integer["head"]), integer["project"]
    gemms = ["head/Gemm"] if siamese else [p.replace(".", "/") + "/Gemm" for p in family.head]
    for node in model.graph.node:
        if node.op_type == "MatMul" and resolve(node.input[1]):
            if linear := family.block_linear(node.name):
                role, i = linear
                weight_t = array(node.input[1])  # (K, N): torch's exporter stores Linear weights transposed
                bias = param(f"{family.blocks}.{i}.{family.linears[role]}.bias")
                layers[i][role] = (np.ascontiguousarray(weight_t.T), bias)
            elif node.name.endswith("embeddings_project/MatMul"):
                project = (np.ascontiguousarray(array(node.input[1]).T), param("embeddings_project.bias"))
        elif node.op_type == "Gemm" and resolve(node.input[1]):
            k = next((k for k, g in enumerate(gemms) if node.name.endswith("/" + g)), None)
            trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
            w = array(node.input[1])
            if k is not None:
                head[k] = (np.ascontiguousarray(w if trans_b else w.T), array(node.input[2]))
    for i, layer in enumerate(layers):
        missing = [r for r in ROLES if r not in layer]
        if missing:
            raise SparsecoreError(f"layer {i} has no {family.linears[missing[0]]} MatMul in the export", str(onnx_path),
                                  f"{_FIX} (float, or quantized in the default --quantized_format integer)")
        for key, norm in zip(("ln1", "ln2"), family.layer_norms):
            layer[key] = (param(f"{family.blocks}.{i}.{norm}.weight"), param(f"{family.blocks}.{i}.{norm}.bias"))
    if siamese:
        if set(head) != {0}:
            raise SparsecoreError("the siamese export has no head Gemm", str(onnx_path), _FIX)
        head = {"pair": head[0]}
    elif set(head) != {0, 1}:
        raise SparsecoreError(f"the export has no {' / '.join(family.head)} Gemm", str(onnx_path),
                              f"export a {family.name} sequence classifier with sparsecore.transformers.export_onnx")
    if config.get("embedding_size", config.get("hidden_size")) != config.get("hidden_size") and project is None:
        raise SparsecoreError("the export has no embeddings_project MatMul", str(onnx_path), _FIX)
    tables = {name: integer["tables"].get(name) for name in TABLES}
    for name in TABLES:
        if tables[name] is None and (name != "token_type_embeddings" or family.token_types):
            tables[name] = param(f"embeddings.{name}.weight")
    return EncoderArrays(family, tables["word_embeddings"], tables["position_embeddings"],
                         tables["token_type_embeddings"],
                         (param("embeddings.LayerNorm.weight"), param("embeddings.LayerNorm.bias")),
                         layers, () if siamese else (head[0], head[1]),
                         int(config.get("num_attention_heads", config.get("n_heads", 0))),
                         float(config.get("layer_norm_eps", 1e-12)), int(config.get("pad_token_id") or 0), project,
                         integer["attention"], head.get("pair"), config.get("problem_type") == "regression")
