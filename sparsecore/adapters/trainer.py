"""HF ``Trainer`` glue: the session rides on callbacks, distillation on ``compute_loss``.

No copy of the training loop: Trainer keeps every ``TrainingArguments`` feature;
the session is created when training begins (the optimizer exists then), gets
``batch_start`` at every optimizer step, saves its masks and schedule position
into every checkpoint, and is finalized at the end.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback

from sparsecore.recipe import Recipe
from sparsecore.session import Session


class SessionCallback(TrainerCallback):
    def __init__(self, trainer: "SparseTrainer") -> None:
        self.trainer = trainer

    def on_train_begin(self, args, state, control, model=None, optimizer=None, train_dataloader=None, **kwargs):
        t = self.trainer
        steps = math.ceil(len(train_dataloader) / args.gradient_accumulation_steps)
        inner = getattr(optimizer, "optimizer", optimizer)  # accelerate wraps the torch optimizer
        t.session = Session(t.recipe, t.model, inner, steps_per_epoch=steps, problem_type=t.problem_type,
                            teacher_disabled=t.teacher is None)
        t.session.initialize()
        if t.resume_dir is not None:
            t.session.load(t.resume_dir)

    def on_step_begin(self, args, state, control, **kwargs):
        self.trainer.session.batch_start(step=state.global_step)

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir():
            self.trainer.session.save(folder)

    def on_log(self, args, state, control, logs=None, optimizer=None, **kwargs):
        if logs is not None and "learning_rate" in logs and self.trainer.session is not None:
            inner = getattr(optimizer, "optimizer", optimizer)
            logs["learning_rate"] = inner.param_groups[0]["lr"]  # the recipe's rate, not the idle scheduler's

    def on_train_end(self, args, state, control, **kwargs):
        self.trainer.session.finalize()


class SparseTrainer(Trainer):
    """``Trainer`` that applies a recipe through a :class:`Session`."""

    def __init__(self, *args, recipe: Recipe, problem_type: str, teacher: torch.nn.Module | None = None,
                 resume_dir: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.recipe, self.problem_type, self.teacher = recipe, problem_type, teacher
        self.resume_dir = resume_dir
        self.session: Session | None = None
        if teacher is not None:
            teacher.to(self.args.device).eval()
            for p in teacher.parameters():
                p.requires_grad_(False)
        self.add_callback(SessionCallback(self))

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        if model.training and self.session is not None:
            teacher_out = None
            if self.session.needs_teacher:
                with torch.no_grad():
                    teacher_out = self.teacher(**{k: v for k, v in inputs.items() if k != "labels"})
            loss = self.session.loss(loss, outputs, teacher_out)
        return (loss, outputs) if return_outputs else loss
