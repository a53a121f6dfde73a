"""Siamese (bi-encoder) classifiers of text pairs: each text encoded alone, a head on the two embeddings.

A cross-encoder reads a pair as one sequence; a siamese classifier encodes each side alone through the same
encoder, mean-pools its real tokens into ``u`` and ``v`` and classifies from them — the way sentence-embedding
checkpoints such as all-MiniLM-L6-v2 were trained, and what a backbone pruned for its embeddings keeps. Heads:

- classification: one Linear on ``[u, v, |u − v|, u ⊙ v]`` (``4·H → labels``), cross-entropy;
- regression: ``a·cos(u, v) + b`` (a Linear of one input), mean squared error, ``a`` and ``b`` starting at the
  training labels' range so that cosines 0…1 map onto it from the first step.

The model's parameters keep the names a sequence classifier of the family has (``bert.encoder.layer.N…``), so
recipes, masks, quantization and sparsity reports select the same weights; ``head.*`` is the head. The encoder's
pooler stays (its weights, its module names) but never runs and gets no quantizer. A saved folder
(``SparseTrainer`` writes it) is ``config.json`` (the encoder's config with :data:`MARKER` set to ``"siamese"``
and the task's labels) plus ``model.safetensors`` (every parameter, ``head.*`` included):
``AutoModel.from_pretrained`` reads its encoder as from any classifier folder.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

from sparsecore.selectors import NEVER_RUN_ATTR

MARKER = "sparsecore_pair_encoding"  # config.json key: "siamese" for this model
ENCODINGS = ("cross", "siamese")
SIDE_B = "_b"  # suffix of the second text's inputs: input_ids_b, attention_mask_b (deploy.model_folder.SIAMESE_INPUTS)


def is_siamese(config) -> bool:
    return getattr(config, MARKER, None) == "siamese"


def folder_pair_encoding(path: str | Path) -> str | None:
    """"siamese" when the folder's config.json marks a siamese classifier, else None (also for hub ids)."""
    import json

    config = Path(path) / "config.json"
    try:
        return "siamese" if json.loads(config.read_text()).get(MARKER) == "siamese" else None
    except (OSError, ValueError, AttributeError):
        return None


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of each row's real-token states (``mask`` 1 on real tokens)."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)


class SiameseClassifier(nn.Module):
    """``forward(input_ids, attention_mask, input_ids_b, attention_mask_b, labels=None)`` →
    a ``SequenceClassifierOutput`` (loss, logits); both sides run through the encoder as one batch (padded to the
    longer side), or, with ``sides_apart`` (set for ONNX export: no shape-dependent padding in the graph), one
    encoder call per side."""

    sides_apart = False
    _keys_to_ignore_on_save = None  # what Trainer reads of a PreTrainedModel after loading a checkpoint

    def __init__(self, encoder: nn.Module, config, head: nn.Linear) -> None:
        super().__init__()
        self.prefix = getattr(encoder, "base_model_prefix", "") or "encoder_model"
        self.config = config
        setattr(self, self.prefix, encoder)
        self.head = head

    @property
    def encoder_model(self) -> nn.Module:
        return getattr(self, self.prefix)

    def set_attn_implementation(self, name: str) -> None:
        self.encoder_model.set_attn_implementation(name)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return mean_pool(hidden, attention_mask)

    def forward(self, input_ids=None, attention_mask=None, input_ids_b=None, attention_mask_b=None, labels=None,
                length=None, **unused):
        """``length`` (the longer side's token count: what length-grouped batches sort by) is not read."""
        if self.sides_apart:
            u, v = self.embed(input_ids, attention_mask), self.embed(input_ids_b, attention_mask_b)
        else:
            rows, width = input_ids.shape[0], max(input_ids.shape[1], input_ids_b.shape[1])
            pad = self.config.pad_token_id or 0
            ids = torch.cat([_widen(input_ids, width, pad), _widen(input_ids_b, width, pad)])
            mask = torch.cat([_widen(attention_mask, width, 0), _widen(attention_mask_b, width, 0)])
            both = self.embed(ids, mask)
            u, v = both[:rows], both[rows:]
        if self.config.problem_type == "regression":
            logits = self.head(nn.functional.cosine_similarity(u, v, dim=-1).unsqueeze(-1))
        else:
            logits = self.head(torch.cat([u, v, (u - v).abs(), u * v], dim=-1))
        loss = _loss(self.config.problem_type, logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


def _no_pooling(*args, **kwargs) -> None:
    """The forward of a siamese encoder's pooler: nothing (the head reads mean-pooled tokens, not the pooler)."""


def _widen(t: torch.Tensor, width: int, value: int) -> torch.Tensor:
    return t if t.shape[1] == width else nn.functional.pad(t, (0, width - t.shape[1]), value=value)


def _loss(problem_type: str, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if problem_type == "regression":
        return nn.functional.mse_loss(logits.squeeze(-1), labels.to(logits.dtype).view(-1))
    if problem_type == "multi_label_classification":
        return nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
    return nn.functional.cross_entropy(logits, labels.view(-1))


def head_for(config, hidden: int, label_range: tuple[float, float] | None) -> nn.Linear:
    """A fresh head: ``Linear(4·hidden, labels)`` for classification, ``Linear(1, 1)`` = range·cos + low for
    regression (``label_range``: the training labels' (low, high); (0, 1) when unknown)."""
    if config.problem_type == "regression":
        low, high = label_range or (0.0, 1.0)
        head = nn.Linear(1, 1)
        with torch.no_grad():
            head.weight.fill_(float(high - low) or 1.0)
            head.bias.fill_(float(low))
        return head
    return nn.Linear(4 * hidden, config.num_labels)


def load_siamese(path: str, config, cache_dir: str | None = None,
                 label_range: tuple[float, float] | None = None) -> tuple[SiameseClassifier, list[str]]:
    """``(model, missing head keys)``: the encoder of any folder of the family (a backbone, a cross-encoder or a
    siamese classifier) and the head a siamese folder holds — else a fresh one (its keys returned)."""
    from safetensors import safe_open
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # a classifier folder's head and pooler are expected to be left out here
    try:
        encoder = AutoModel.from_pretrained(path, config=config, cache_dir=cache_dir)
    finally:
        hf_logging.set_verbosity(verbosity)
    pooler = getattr(encoder, "pooler", None)
    if pooler is not None:  # kept (its weights stay in the folder; recipes name its modules, e.g. Tanh), never run
        pooler.forward = _no_pooling
        for module in pooler.modules():
            setattr(module, NEVER_RUN_ATTR, True)  # no quantization site, no recipe selects its weights
        for p in pooler.parameters():
            p.requires_grad_(False)
    setattr(config, MARKER, "siamese")
    config.architectures = [type(encoder).__name__]
    hidden = config.hidden_size if hasattr(config, "hidden_size") else config.dim
    head = head_for(config, hidden, label_range)
    weights = Path(path) / "model.safetensors"
    missing = [f"head.{k}" for k in head.state_dict()]
    if weights.is_file():
        with safe_open(str(weights), framework="pt") as f:
            keys = set(f.keys())
            stored = {k: f.get_tensor(f"head.{k}") for k in head.state_dict() if f"head.{k}" in keys}
        if len(stored) == len(missing) and all(stored[k].shape == v.shape for k, v in head.state_dict().items()):
            head.load_state_dict(stored)
            missing = []
    return SiameseClassifier(encoder, config, head), missing


class PairCollator:
    """Pads each side of a batch of siamese features to its own longest text (labels travel with side a)."""

    def __init__(self, tokenizer) -> None:
        from transformers import DataCollatorWithPadding

        self.pad = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=None)

    def __call__(self, features: list[dict]) -> dict:
        first = [{k: v for k, v in f.items() if not k.endswith(SIDE_B) and k != "length"} for f in features]
        second = [{k[:-len(SIDE_B)]: v for k, v in f.items() if k.endswith(SIDE_B)} for f in features]
        batch = dict(self.pad(first))
        batch.update({f"{k}{SIDE_B}": v for k, v in self.pad(second).items()})
        return batch
