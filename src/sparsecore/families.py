"""Model families: the one declaration of each encoder architecture that training, export, the Pipeline and
our engine consume (no ``transformers`` import: it is data about module and ONNX names).

Every supported family has the same block shape — post-LayerNorm self-attention (Q, K, V, output
projection) and a two-Linear feed-forward — and differs in names, inputs, positions and head:

================  =====================================  ==================  ===============================
family            blocks / Linears                       inputs              positions, head
================  =====================================  ==================  ===============================
bert              ``encoder.layer.N`` query/key/value/…  ids, mask, types    absolute; pooler (tanh) → classifier
roberta, xlm-r    as bert                                ids, mask           offset past the padding id; dense
                                                                             (tanh) → out_proj
electra           as bert (+ embeddings_project)         ids, mask, types    absolute; dense (gelu) → out_proj
distilbert        ``transformer.layer.N`` q_lin/…/lin2   ids, mask           absolute, no token types;
                                                                             pre_classifier (relu) → classifier
================  =====================================  ==================  ===============================
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sparsecore.errors import SparsecoreError

ROLES = ("query", "key", "value", "attn_out", "intermediate", "output")  # the block's Linears, in order


@dataclass(frozen=True)
class Family:
    name: str
    model_types: tuple[str, ...]  # config.json "model_type" values
    blocks: str  # module path of the block list, e.g. "encoder.layer" (blocks are "<blocks>.<N>")
    linears: dict[str, str]  # role (ROLES) → module path inside a block
    layer_norms: tuple[str, str]  # after attention, after the feed-forward (module paths inside a block)
    onnx_inputs: tuple[str, ...]
    head: tuple[str, str]  # module paths (from the model root) of the head's hidden and output Linears
    head_activation: str  # between them: "tanh" | "gelu" | "relu"
    positions: str = "absolute"  # or "after_padding" (RoBERTa: position = padding_idx + 1 + index among non-pads)
    token_types: bool = True  # the embeddings add a token-type table
    export_atol: float = 1e-4
    engine: bool = True  # engine="sparsecore" runs it

    @property
    def dynamic_axes(self) -> dict:
        return {n: {0: "batch", 1: "sequence"} for n in self.onnx_inputs}

    @property
    def encoder_linears(self) -> tuple[str, ...]:
        """Recipe selector for the blocks' Linear weights: what pruning recipes target and the sparsity
        report counts ("encoder sparsity"). Not SparseML's ``__ALL_PRUNABLE__`` (every Linear and Conv,
        classifier included)."""
        paths = "|".join(re.escape(p) for p in self.linears.values())
        return (rf"re:.*{re.escape(self.blocks)}\.\d+\.({paths})\.weight",)

    def onnx_node(self, role: str, suffix: str = "MatMul", attention: bool = False) -> re.Pattern:
        """The exporter's node name of a block Linear: ``/…/encoder/layer.3/attention/self/query/MatMul``
        (module path with "/", the block index kept as ``layer.3``); group 1 is the block index.
        ``attention=True``: the node of the attention module that holds ``role`` (its own products, e.g.
        ``…/layer.3/attention/self/MatMul`` for Q·Kᵀ)."""
        *parents, last = self.blocks.split(".")
        inner = self.linears[role].split(".")
        path = "/".join([*map(re.escape, parents), rf"{re.escape(last)}\.(\d+)",
                         *map(re.escape, inner[:-1] if attention else inner)])
        return re.compile(rf"/{path}/{re.escape(suffix)}$")

    def block_linear(self, node_name: str, suffix: str = "MatMul") -> tuple[str, int] | None:
        """``(role, block index)`` when ``node_name`` is the exporter's node of a block Linear, else None."""
        for role in ROLES:
            if match := self.onnx_node(role, suffix).search(node_name):
                return role, int(match.group(1))
        return None


_BERT_LINEARS = {"query": "attention.self.query", "key": "attention.self.key", "value": "attention.self.value",
                 "attn_out": "attention.output.dense", "intermediate": "intermediate.dense", "output": "output.dense"}
_BERT_NORMS = ("attention.output.LayerNorm", "output.LayerNorm")

FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("bert", ("bert",), "encoder.layer", _BERT_LINEARS, _BERT_NORMS,
           ("input_ids", "attention_mask", "token_type_ids"), ("pooler.dense", "classifier"), "tanh"),
    Family("roberta", ("roberta", "xlm-roberta"), "encoder.layer", _BERT_LINEARS, _BERT_NORMS,
           ("input_ids", "attention_mask"), ("classifier.dense", "classifier.out_proj"), "tanh",
           positions="after_padding"),
    Family("electra", ("electra",), "encoder.layer", _BERT_LINEARS, _BERT_NORMS,
           ("input_ids", "attention_mask", "token_type_ids"), ("classifier.dense", "classifier.out_proj"), "gelu"),
    Family("distilbert", ("distilbert",), "transformer.layer",
           {"query": "attention.q_lin", "key": "attention.k_lin", "value": "attention.v_lin",
            "attn_out": "attention.out_lin", "intermediate": "ffn.lin1", "output": "ffn.lin2"},
           ("sa_layer_norm", "output_layer_norm"), ("input_ids", "attention_mask"),
           ("pre_classifier", "classifier"), "relu", token_types=False),
)}

BERT = FAMILIES["bert"]


def family_of(model_type: str | None, where: str = "config.json") -> Family:
    """The family of a config's ``model_type``, or a one-line error naming the supported ones."""
    for family in FAMILIES.values():
        if model_type in family.model_types:
            return family
    known = ", ".join(t for f in FAMILIES.values() for t in f.model_types)
    raise SparsecoreError(f"model type {model_type!r} is not a supported encoder family", where,
                          f"use one of: {known}")
