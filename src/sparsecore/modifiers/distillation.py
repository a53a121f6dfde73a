"""``!DistillationModifier``: blend a teacher's soft targets into the loss."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sparsecore.errors import SparsecoreError
from sparsecore.losses import blend, distillation_loss
from sparsecore.modifiers.base import EPOCH_EPS, UNUSED_BY_SPARSEML, Modifier, Params, SessionState


@dataclass(frozen=True, kw_only=True)
class DistillationModifier(Modifier):
    hardness: float = 0.5
    temperature: float = 2.0
    distill_output_keys: Params = ("logits",)
    start_epoch: float = 0.0
    end_epoch: float = -1.0
    teacher_input_keys: Params | None = None  # inputs the teacher gets (None: all but the labels)
    IGNORED_FIELDS = {**Modifier.IGNORED_FIELDS, "update_frequency": UNUSED_BY_SPARSEML}

    def __post_init__(self) -> None:
        self.check_epochs(self.start_epoch, self.end_epoch, end_required=False)
        if not 0.0 <= self.hardness <= 1.0:
            self.fail("hardness", f"is {self.hardness}", "use a value in [0, 1]")
        if self.temperature <= 0:
            self.fail("temperature", f"is {self.temperature}", "use a positive temperature")

    def initialize(self, state: SessionState) -> None:
        known = getattr(state, "output_keys", None)
        missing = [k for k in self.distill_output_keys if known is not None and k not in known]
        if missing:
            self.fail("distill_output_keys", f"names {missing[0]!r}, which the model does not produce",
                      f"use keys the model returns: {', '.join(known)}")

    def teacher_inputs(self, inputs: dict) -> dict:
        """What the teacher is called with: ``teacher_input_keys`` of ``inputs``, else all but the labels."""
        if self.teacher_input_keys is None:
            return {k: v for k, v in inputs.items() if k != "labels"}
        missing = [k for k in self.teacher_input_keys if k not in inputs]
        if missing:
            self.fail("teacher_input_keys", f"names {missing[0]!r}, which the batch lacks",
                      f"use keys of the batch: {', '.join(inputs)}")
        return {k: inputs[k] for k in self.teacher_input_keys}

    def active(self, epoch: float) -> bool:
        return epoch + EPOCH_EPS >= self.start_epoch and (self.end_epoch < 0 or epoch + EPOCH_EPS < self.end_epoch)

    def modify_loss(self, state: SessionState, epoch, loss, student, teacher) -> torch.Tensor:
        if not self.active(epoch) or state.teacher_disabled:
            return loss
        if teacher is None:
            raise RuntimeError("DistillationModifier is active but no teacher outputs were passed to Session.loss")
        total = 0.0
        for key in self.distill_output_keys:
            s, t = _pick(student, key), _pick(teacher, key)
            total = total + distillation_loss(s, t, self.temperature, state.problem_type)
        if loss.requires_grad:  # training batches only (evaluation losses are the Trainer's)
            state.record_losses({"task_loss": loss, "distill_loss": total})
        return blend(loss, total, self.hardness)


def _pick(outputs, key: str) -> torch.Tensor:
    if isinstance(outputs, torch.Tensor):
        return outputs
    try:
        return outputs[key]
    except (KeyError, TypeError):
        raise SparsecoreError(f"distill_output_keys names {key!r}, which the model outputs lack", "recipe",
                              "use keys the model returns, e.g. logits") from None
