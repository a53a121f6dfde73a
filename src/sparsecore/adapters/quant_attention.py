"""BERT self-attention with quantizable matmuls (QKᵀ and attn·V), as a transformers attention function.

:func:`quantizable_attention` registers ``sparsecore_qat`` in transformers' ``AttentionInterface``,
switches the model to it and declares the two products on every self-attention module
(``sparsecore_matmuls = ("qk", "av")``). The engine's quantization then fake-quantizes both inputs
of each product; without it the function computes exactly what transformers' eager attention does.
Kᵀ is formed before quantization (per-tensor quantization commutes with the transpose), so the
ONNX export holds ``MatMul(DQ(Q(q)), DQ(Q(kᵀ)))``, the pattern the integer conversion rewrites.
"""

from __future__ import annotations

import torch
from torch import nn

from sparsecore.quant.qat import MATMUL_QUANT_ATTR
from sparsecore.quant.sites import MATMULS_ATTR

NAME = "sparsecore_qat"


def sparsecore_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                         attention_mask: torch.Tensor | None, scaling: float | None = None, dropout: float = 0.0,
                         **kwargs):
    """``(attn_output (B, S, H, D), attn_weights (B, H, S, S))``; query/key/value are (B, H, S, D)."""
    quant = getattr(module, MATMUL_QUANT_ATTR, None)
    scaling = query.size(-1) ** -0.5 if scaling is None else scaling
    key_t = key.transpose(2, 3)
    if quant is not None:
        query, key_t = quant("qk", query, key_t)
    scores = torch.matmul(query, key_t) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask
    probs = nn.functional.softmax(scores, dim=-1)
    if quant is not None:  # quantize before dropout: eval-mode dropout vanishes from the traced graph
        probs, value = quant("av", probs, value)
    probs = nn.functional.dropout(probs, p=dropout, training=module.training)
    out = torch.matmul(probs, value)
    return out.transpose(1, 2).contiguous(), probs


def quantizable_attention(model: nn.Module) -> int:
    """Route ``model``'s self-attention through :func:`sparsecore_attention`; returns the modules marked."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, eager_mask

    AttentionInterface.register(NAME, sparsecore_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, eager_mask)  # additive float mask, as eager attention gets
    count = 0
    for module in model.modules():
        if type(module).__name__.endswith("SelfAttention") and hasattr(module, "config"):
            setattr(module, MATMULS_ATTR, ("qk", "av"))
            count += 1
    model.set_attn_implementation(NAME)
    return count
