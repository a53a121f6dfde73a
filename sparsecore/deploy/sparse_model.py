"""A BERT-family classifier read from our ONNX export, as arrays the sparsecore engine runs.

Weights come from the export's initializers: parameters keep their names (``…encoder.layer.3.output.
LayerNorm.weight``), MatMul weights are found through the exporter's node names
(``/…/layer.3/intermediate/dense/MatMul``; stored transposed, (K, N)), the pooler and classifier are
``Gemm`` nodes. Integer exports (``MatMulInteger`` Linears, int8 embedding tables, quantized attention
products) are read by :mod:`sparsecore.deploy.int8_model`; a graph may mix both. Architecture numbers
(heads, LayerNorm eps, activation) come from the deployment's
config.json. Anything unexpected is a clear error, never a silent mis-read.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sparsecore.deploy.int8_model import TABLES, AttentionQuant, QuantLinear, read_integer_bert
from sparsecore.errors import SparsecoreError

LINEARS = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
           "intermediate.dense", "output.dense")
_NODE = re.compile(r"layer\.(\d+)/(attention/self/query|attention/self/key|attention/self/value|"
                   r"attention/output/dense|intermediate/dense|output/dense)/MatMul$")


@dataclass
class BertArrays:
    """Arrays of one exported BERT classifier. A Linear is ``(W (N, K) float32, b (N,))`` (torch layout) or,
    quantized, a :class:`QuantLinear`; ``attention_quant[i]`` holds layer i's attention quantizers (None: fp32)."""

    word: np.ndarray
    position: np.ndarray
    token_type: np.ndarray
    embed_ln: tuple[np.ndarray, np.ndarray]
    layers: list[dict]  # per layer: {linear name: (W (N, K), b (N,)) | QuantLinear} + "ln1", "ln2": (gamma, beta)
    pooler: tuple[np.ndarray, np.ndarray] | QuantLinear
    classifier: tuple[np.ndarray, np.ndarray] | QuantLinear
    heads: int
    eps: float
    attention_quant: list[AttentionQuant | None] | None = None

    @property
    def quantized(self) -> bool:
        return isinstance(self.classifier, QuantLinear) or any(
            isinstance(v, QuantLinear) for layer in self.layers for v in layer.values())


def load_bert_arrays(onnx_path: Path, config_path: Path) -> BertArrays:
    import onnx
    from onnx import numpy_helper

    config = json.loads(Path(config_path).read_text())
    if config.get("model_type") != "bert" or config.get("hidden_act", "gelu") != "gelu":
        raise SparsecoreError(f"engine='sparsecore' runs BERT models with GELU, this is "
                              f"{config.get('model_type')!r} / {config.get('hidden_act')!r}", str(config_path),
                              "use engine='onnxruntime' for this model")
    model = onnx.load(str(onnx_path))
    inits = {i.name: i for i in model.graph.initializer}
    # the exporter stores identical tensors once and names the copies through Identity nodes
    alias = {n.output[0]: n.input[0] for n in model.graph.node if n.op_type == "Identity"}

    def resolve(name: str) -> str | None:
        seen = 0
        while name not in inits and name in alias and seen < 16:
            name, seen = alias[name], seen + 1
        return name if name in inits else None

    def array(name: str) -> np.ndarray:
        return numpy_helper.to_array(inits[resolve(name)]).astype(np.float32)

    def const(name: str) -> np.ndarray | None:
        return numpy_helper.to_array(inits[resolve(name)]) if resolve(name) else None

    def param(suffix: str) -> np.ndarray:
        hits = [name for name in (*inits, *alias) if (name == suffix or name.endswith("." + suffix)) and resolve(name)]
        if len(hits) != 1:
            raise SparsecoreError(f"the export has {len(hits)} initializers named *{suffix}", str(onnx_path),
                                  "export the model with sparsecore.transformers.export_onnx")
        return array(hits[0])

    n_layers = int(config["num_hidden_layers"])
    integer = {"layers": [{} for _ in range(n_layers)], "attention": [None] * n_layers, "tables": {}}
    if any(node.op_type == "MatMulInteger" for node in model.graph.node):
        integer = read_integer_bert(model, const, n_layers, str(onnx_path))
    layers = integer["layers"]
    gemms = {k: integer[k] for k in ("pooler", "classifier") if k in integer}
    for node in model.graph.node:
        match = _NODE.search(node.name) if node.op_type == "MatMul" else None
        if match and resolve(node.input[1]):
            i, name = int(match.group(1)), match.group(2).replace("/", ".")
            weight_t = array(node.input[1])  # (K, N): torch's exporter stores Linear weights transposed
            layers[i][name] = (np.ascontiguousarray(weight_t.T), param(f"encoder.layer.{i}.{name}.bias"))
        elif node.op_type == "Gemm" and resolve(node.input[1]):
            key = "pooler" if "pooler" in node.name else "classifier" if "classifier" in node.name else None
            trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
            w = array(node.input[1])
            if key:
                gemms[key] = (np.ascontiguousarray(w if trans_b else w.T), array(node.input[2]))
    for i, layer in enumerate(layers):
        missing = [n for n in LINEARS if n not in layer]
        if missing:
            raise SparsecoreError(f"layer {i} has no {missing[0]} MatMul in the export", str(onnx_path),
                                  "export the model with sparsecore.transformers.export_onnx (float, or quantized "
                                  "in the default --quantized_format integer)")
        layer["ln1"] = (param(f"layer.{i}.attention.output.LayerNorm.weight"),
                        param(f"layer.{i}.attention.output.LayerNorm.bias"))
        layer["ln2"] = (param(f"layer.{i}.output.LayerNorm.weight"), param(f"layer.{i}.output.LayerNorm.bias"))
    if set(gemms) != {"pooler", "classifier"}:
        raise SparsecoreError("the export has no pooler/classifier Gemm", str(onnx_path),
                              "export a BertForSequenceClassification folder")
    tables = {name: integer["tables"][name] if name in integer["tables"] else param(f"embeddings.{name}.weight")
              for name in TABLES}
    return BertArrays(tables["word_embeddings"], tables["position_embeddings"], tables["token_type_embeddings"],
                      (param("embeddings.LayerNorm.weight"), param("embeddings.LayerNorm.bias")),
                      layers, gemms["pooler"], gemms["classifier"], int(config["num_attention_heads"]),
                      float(config.get("layer_norm_eps", 1e-12)), integer["attention"])
