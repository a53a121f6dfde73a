"""``engine="sparsecore"``: our own CPU engine for pruned BERT classifiers (numpy + Numba kernels).

Everything runs in the features × tokens layout (see :mod:`sparsecore.kernels.sparse_matmul`): the
hidden state is ``Xᵀ (H, T)`` with T = batch·sequence tokens, so each Linear is one kernel call
``Yᵀ = W·Xᵀ + b`` and no activation is ever transposed between layers. Q, K and V are fused into one
(3H, H) matrix per layer. Attention uses batched BLAS matmuls over (batch, head); LayerNorm, softmax and
the residual adds are numpy over contiguous rows; GELU is fused into the intermediate Linear.

Format rule (per Linear, decided once at load; measured with ``benchmarks/test_sparse_kernels.py``,
table in the README): a matrix with sparsity below ``DENSE_BELOW`` stays dense (BLAS sgemm is faster
there); otherwise block4 when its non-zeros fill their 1×4 blocks (stored values ≤ ``BLOCK_FILL``·nnz,
i.e. it was pruned with ``mask_type: block4``), else CSR.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sparsecore.deploy.sparse_model import BertArrays, load_bert_arrays

DENSE_BELOW = 0.7  # measured crossover (README, "Sparse kernels"): below it BLAS wins at 128 tokens
BLOCK_FILL = 1.25  # block4 when 4·blocks ≤ 1.25·nnz (blocks at least 80% full)
LINEAR_QKV = ("attention.self.query", "attention.self.key", "attention.self.value")  # fused into one matrix


@dataclass
class LinearT:
    """``Yᵀ = W·Xᵀ + b`` with W stored as ``dense`` (N, K) array, ``csr`` or ``block4``."""

    weight: object
    bias: np.ndarray
    format: str

    @classmethod
    def build(cls, w: np.ndarray, b: np.ndarray, formats: str = "auto") -> "LinearT":
        from sparsecore.kernels.sparse_matmul import to_block4, to_csr

        nnz = int(np.count_nonzero(w))
        sparsity = 1.0 - nnz / w.size
        fmt = formats
        if formats == "auto":
            fmt = "dense" if sparsity < DENSE_BELOW else "csr"
            if fmt == "csr" and w.shape[1] % 4 == 0:
                blocks = int(np.count_nonzero(np.any(w.reshape(w.shape[0], -1, 4) != 0, axis=2)))
                fmt = "block4" if 4 * blocks <= BLOCK_FILL * nnz else "csr"
        weight = {"dense": lambda: np.ascontiguousarray(w), "csr": lambda: to_csr(w),
                  "block4": lambda: to_block4(w)}[fmt]()
        return cls(weight, np.ascontiguousarray(b, dtype=np.float32), fmt)

    def __call__(self, xt: np.ndarray, gelu: bool = False) -> np.ndarray:
        from sparsecore.kernels.sparse_matmul import gelu_inplace, sparse_linear_t

        if self.format == "dense":
            y = self.weight @ xt
            y += self.bias[:, None]
            return gelu_inplace(y) if gelu else y
        return sparse_linear_t(self.weight, xt, self.bias, gelu)


def layer_norm_t(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    """LayerNorm over features (axis 0) of ``x (H, T)``, in place."""
    x -= x.mean(axis=0)
    x /= np.sqrt((x * x).mean(axis=0) + np.float32(eps))
    x *= gamma[:, None]
    x += beta[:, None]
    return x


def softmax_(x: np.ndarray) -> np.ndarray:
    x -= x.max(axis=-1, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=-1, keepdims=True)
    return x


class SparseBert:
    def __init__(self, arrays: BertArrays, formats: str = "auto") -> None:
        self.a = arrays
        self.layers = []
        for layer in arrays.layers:
            qkv_w = np.concatenate([layer[n][0] for n in LINEAR_QKV])
            qkv_b = np.concatenate([layer[n][1] for n in LINEAR_QKV])
            self.layers.append({
                "qkv": LinearT.build(qkv_w, qkv_b, formats),
                "attn_out": LinearT.build(*layer["attention.output.dense"], formats),
                "intermediate": LinearT.build(*layer["intermediate.dense"], formats),
                "out": LinearT.build(*layer["output.dense"], formats),
                "ln1": layer["ln1"], "ln2": layer["ln2"]})

    def formats(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for layer in self.layers:
            for key in ("qkv", "attn_out", "intermediate", "out"):
                counts[layer[key].format] = counts.get(layer[key].format, 0) + 1
        return counts

    def embed_t(self, ids: np.ndarray, token_types: np.ndarray) -> np.ndarray:
        a = self.a
        batch, seq = ids.shape
        h = a.word[ids] + a.token_type[token_types] + a.position[:seq][None]
        xt = np.ascontiguousarray(h.reshape(batch * seq, -1).T)
        return layer_norm_t(xt, *a.embed_ln, a.eps)

    def attention_t(self, qkv: np.ndarray, add_mask: np.ndarray, batch: int, seq: int) -> np.ndarray:
        hidden = qkv.shape[0] // 3
        heads = self.a.heads
        d = hidden // heads
        q, k, v = (qkv[i * hidden:(i + 1) * hidden].reshape(heads, d, batch, seq) for i in range(3))
        scores = np.matmul(q.transpose(2, 0, 3, 1), k.transpose(2, 0, 1, 3))  # (B, heads, S, S)
        scores *= np.float32(1.0 / math.sqrt(d))
        scores += add_mask[:, None, None, :]
        probs = softmax_(scores)
        ctx = np.matmul(v.transpose(2, 0, 1, 3), probs.transpose(0, 1, 3, 2))  # (B, heads, D, S)
        return np.ascontiguousarray(ctx.transpose(1, 2, 0, 3)).reshape(hidden, batch * seq)

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray) -> np.ndarray:
        batch, seq = input_ids.shape
        eps = self.a.eps
        add_mask = (1.0 - attention_mask.astype(np.float32)) * np.finfo(np.float32).min  # HF's additive mask
        xt = self.embed_t(input_ids, token_type_ids)
        for layer in self.layers:
            ctx = self.attention_t(layer["qkv"](xt), add_mask, batch, seq)
            h = layer["attn_out"](ctx)
            h += xt
            xt = layer_norm_t(h, *layer["ln1"], eps)
            h = layer["out"](layer["intermediate"](xt, gelu=True))
            h += xt
            xt = layer_norm_t(h, *layer["ln2"], eps)
        cls = np.ascontiguousarray(xt[:, ::seq])  # (H, B): the first token of every sequence
        pooled = np.tanh(self.a.pooler[0] @ cls + self.a.pooler[1][:, None])
        return np.ascontiguousarray((self.a.classifier[0] @ pooled + self.a.classifier[1][:, None]).T)



class SparsecoreEngine:
    """Pipeline engine: ``{input_ids, attention_mask, token_type_ids}`` → logits, any batch and length.

    When any Linear runs sparse, BLAS (attention products, dense-format layers) runs single-threaded
    inside a forward pass: the Numba kernels use every core, and OpenBLAS worker threads spinning
    between calls would take those cores from them (measured on BERT-base 90%, batch 1: 316 ms with
    both pools vs 71 ms). An all-dense model keeps BLAS's threads.
    """

    def __init__(self, onnx_path: Path, batch_size: int, sequence_lengths: list[int], formats: str = "auto") -> None:
        from threadpoolctl import ThreadpoolController

        self.model = SparseBert(load_bert_arrays(Path(onnx_path), Path(onnx_path).with_name("config.json")), formats)
        self.batch_size = batch_size
        self._pools = ThreadpoolController()
        self._single_blas = any(f != "dense" for f in self.model.formats())  # all dense: BLAS keeps its threads

    def __call__(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        ids = feeds["input_ids"]
        token_types = feeds.get("token_type_ids")
        if token_types is None:
            token_types = np.zeros_like(ids)
        if not self._single_blas:
            return self.model(ids, feeds["attention_mask"], token_types)
        with self._pools.limit(limits=1, user_api="blas"):
            return self.model(ids, feeds["attention_mask"], token_types)
