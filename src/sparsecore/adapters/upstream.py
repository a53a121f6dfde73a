"""The Hugging Face side of upstream pruning (:mod:`sparsecore.workflows.upstream`): the model to train for an
objective, its collator and its training arguments."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import torch

from sparsecore.errors import SparsecoreError

log = logging.getLogger("sparsecore")


class HiddenStateDistiller(torch.nn.Module):
    """Student backbone trained to reproduce a frozen teacher's token states and sentence embedding. The teacher
    is held outside the module tree, so recipe selectors (``__ALL_PRUNABLE__``) see the student only.
    ``layers``: ``"last"`` matches the last layer's token states, ``"all"`` every layer's (the mean of their
    per-layer errors); the sentence embedding is the last layer's either way."""

    def __init__(self, student, teacher, layers: str = "last") -> None:
        super().__init__()
        self.student = student
        self.config = student.config
        self.layers = layers
        self._teacher = [teacher.eval().requires_grad_(False)]

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, **_):
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        student = self.student(input_ids=input_ids, attention_mask=mask, **extra,
                               **({"output_hidden_states": True} if self.layers == "all" else {}))
        return {"loss": distillation_loss(student, self._teacher[0], input_ids, mask, extra, self.layers)}


class MlmDistiller(HiddenStateDistiller):
    """A masked-language model (``student``) trained on the sum of its MLM loss and :class:`HiddenStateDistiller`'s
    loss: its backbone's token states and sentence embedding against a frozen teacher backbone reading the same
    masked input (the Prune-OFA / oBERT upstream objective, with hidden states in place of MLM logits, so it works
    on models whose checkpoint has no MLM head to distill)."""

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None, **_):
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        out = self.student(input_ids=input_ids, attention_mask=mask, labels=labels, output_hidden_states=True,
                           **extra)
        backbone = SimpleNamespace(last_hidden_state=out.hidden_states[-1], hidden_states=out.hidden_states)
        return {"loss": out.loss + distillation_loss(backbone, self._teacher[0], input_ids, mask, extra, self.layers)}


def distillation_loss(student, teacher, input_ids, mask, extra: dict, layers: str):
    """Mean squared error of ``student``'s token states against ``teacher``'s on the same input over real tokens
    (the last layer's, or every layer's mean for ``layers="all"``) plus one minus the cosine of their mean-pooled
    sentence embeddings; ``student`` is a backbone output (with ``hidden_states`` for ``"all"``)."""
    teacher = teacher.to(input_ids.device)
    with torch.no_grad():
        target = teacher(input_ids=input_ids, attention_mask=mask, output_hidden_states=layers == "all", **extra)
    real = mask.unsqueeze(-1).to(student.last_hidden_state.dtype)
    pairs = (zip(student.hidden_states[1:], target.hidden_states[1:]) if layers == "all"
             else [(student.last_hidden_state, target.last_hidden_state)])
    errors = [((h - t) ** 2 * real).sum() / (real.sum() * h.shape[-1]) for h, t in pairs]
    pooled, pooled_t = ((h * real).sum(1) / real.sum(1).clamp(min=1)
                        for h in (student.last_hidden_state, target.last_hidden_state))
    return sum(errors) / len(errors) + (1 - torch.nn.functional.cosine_similarity(pooled, pooled_t, dim=-1)).mean()


def upstream_model(path: str, objective: str, distill_layers: str = "last"):
    """``(model to train, backbone inside it, objective)``; ``distill_layers``: the distiller's ``layers``. ``mlm``
    and ``mlm+distill`` on a checkpoint without an MLM head train a fresh head (one warning line; only the backbone
    is saved)."""
    from transformers import AutoModel, AutoModelForMaskedLM
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        if objective in ("auto", "mlm", "mlm+distill"):
            try:
                mlm, info = AutoModelForMaskedLM.from_pretrained(path, output_loading_info=True)
                head_missing = any(not k.startswith(mlm.base_model_prefix + ".") for k in info["missing_keys"])
            except ValueError:  # the family has no MLM class
                mlm, head_missing = None, True
            if objective == "auto" and not head_missing:
                mlm = _with_whole_backbone(mlm, path)
                return mlm, mlm.base_model, "mlm"
            if objective != "auto":
                if mlm is None:
                    raise SparsecoreError(f"the model family has no masked-language-modelling class ({path})",
                                          f"--objective {objective}", "use --objective distill (or auto)")
                if head_missing:
                    log.warning("the checkpoint has no masked-language-modelling head: a fresh one is trained with "
                                "the backbone (only the backbone is saved); --objective distill needs no head")
                mlm = _with_whole_backbone(mlm, path)
                if objective == "mlm":
                    return mlm, mlm.base_model, "mlm"
                return MlmDistiller(mlm, AutoModel.from_pretrained(path), distill_layers), mlm.base_model, objective
        student, teacher = AutoModel.from_pretrained(path), AutoModel.from_pretrained(path)
        return HiddenStateDistiller(student, teacher, distill_layers), student, "distill"
    finally:
        hf_logging.set_verbosity(verbosity)


def _with_whole_backbone(mlm, path: str):
    """``mlm`` with the checkpoint's backbone as its base model where the MLM class leaves out backbone weights the
    checkpoint holds (BERT's pooler), so the saved backbone keeps them; the output embeddings are tied again."""
    from transformers import AutoModel

    backbone, info = AutoModel.from_pretrained(path, output_loading_info=True)
    left_out = set(backbone.state_dict()) - set(mlm.base_model.state_dict())
    if not left_out or left_out & set(info["missing_keys"]):
        return mlm
    setattr(mlm, mlm.base_model_prefix, backbone)
    mlm.tie_weights()
    return mlm


def collator(tokenizer, objective: str, mlm_probability: float):
    """Masks ``mlm_probability`` of the tokens for ``mlm`` and ``mlm+distill``; pads only for ``distill``."""
    from transformers import DataCollatorForLanguageModeling

    from sparsecore.adapters.trainer import padding_collator

    if objective.startswith("mlm"):
        return DataCollatorForLanguageModeling(tokenizer, mlm_probability=mlm_probability)
    return padding_collator(tokenizer)


def training_arguments(**kwargs):
    """:class:`transformers.TrainingArguments` for an upstream run (inputs passed through whole: the distiller's
    forward takes what the collator gives)."""
    from transformers import TrainingArguments

    args = TrainingArguments(report_to=[], remove_unused_columns=False, **kwargs)
    if not torch.cuda.is_available():
        args.dataloader_pin_memory = False
    return args
