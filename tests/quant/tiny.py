"""A small transformer-shaped model for quantization tests: embedding, linears, one attention head."""

import torch
from torch import nn

from sparsecore.quant.qat import MATMUL_QUANT_ATTR


class TinyAttention(nn.Module):
    sparsecore_matmuls = ("qk", "av")

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.query, self.key, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, x):
        q, k, v = self.query(x), self.key(x).transpose(1, 2), self.value(x)
        quant = getattr(self, MATMUL_QUANT_ATTR, None)
        if quant is not None:
            q, k = quant("qk", q, k)
        probs = torch.softmax(q @ k / q.shape[-1] ** 0.5, dim=-1)
        if quant is not None:
            probs, v = quant("av", probs, v)
        return probs @ v


class TinyClassifier(nn.Module):
    def __init__(self, vocab: int = 50, dim: int = 16, labels: int = 3) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.attn = TinyAttention(dim)
        self.norm = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.head = nn.Linear(dim, labels)

    def forward(self, ids):
        h = self.embed(ids)
        h = self.norm(h + self.attn(h))
        h = h + self.ffn(h)
        return self.head(h.mean(dim=1))


def tiny(seed: int = 0, sparsity: float = 0.0) -> TinyClassifier:
    torch.manual_seed(seed)
    model = TinyClassifier()
    if sparsity:
        for m in model.modules():
            if isinstance(m, nn.Linear):
                with torch.no_grad():
                    m.weight[torch.rand_like(m.weight) < sparsity] = 0.0
    return model
