"""The Hugging Face side of upstream pruning (:mod:`sparsecore.workflows.upstream`): the model to train for an
objective, its collator and its training arguments."""

from __future__ import annotations

import torch

from sparsecore.errors import SparsecoreError


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
        if self.layers == "all":
            extra["output_hidden_states"] = True
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        teacher = self._teacher[0].to(input_ids.device)
        with torch.no_grad():
            target = teacher(input_ids=input_ids, attention_mask=mask, **extra)
        student = self.student(input_ids=input_ids, attention_mask=mask, **extra)
        real = mask.unsqueeze(-1).to(student.last_hidden_state.dtype)
        pairs = (zip(student.hidden_states[1:], target.hidden_states[1:]) if self.layers == "all"
                 else [(student.last_hidden_state, target.last_hidden_state)])
        errors = [((h - t) ** 2 * real).sum() / (real.sum() * h.shape[-1]) for h, t in pairs]
        tokens = sum(errors) / len(errors)
        pooled, pooled_t = ((h * real).sum(1) / real.sum(1).clamp(min=1)
                            for h in (student.last_hidden_state, target.last_hidden_state))
        sentence = (1 - torch.nn.functional.cosine_similarity(pooled, pooled_t, dim=-1)).mean()
        return {"loss": tokens + sentence}


def upstream_model(path: str, objective: str, distill_layers: str = "last"):
    """``(model to train, backbone inside it, objective)``; ``distill_layers``: the distiller's ``layers``."""
    from transformers import AutoModel, AutoModelForMaskedLM
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        if objective in ("auto", "mlm"):
            try:
                mlm, info = AutoModelForMaskedLM.from_pretrained(path, output_loading_info=True)
                head_missing = any(not k.startswith(mlm.base_model_prefix + ".") for k in info["missing_keys"])
            except ValueError:  # the family has no MLM class
                mlm, head_missing = None, True
            if not head_missing:
                return mlm, mlm.base_model, "mlm"
            if objective == "mlm":
                raise SparsecoreError("the model has no masked-language-modelling head", "--objective mlm",
                                      "use --objective distill (or auto)")
        student, teacher = AutoModel.from_pretrained(path), AutoModel.from_pretrained(path)
        return HiddenStateDistiller(student, teacher, distill_layers), student, "distill"
    finally:
        hf_logging.set_verbosity(verbosity)


def collator(tokenizer, objective: str, mlm_probability: float):
    """Masks ``mlm_probability`` of the tokens for ``mlm``; pads only for ``distill``."""
    from transformers import DataCollatorForLanguageModeling

    from sparsecore.adapters.trainer import padding_collator

    if objective == "mlm":
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
