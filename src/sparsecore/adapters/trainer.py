"""HF ``Trainer`` glue: the session rides on callbacks, distillation on ``compute_loss``.

No copy of the training loop: Trainer keeps every ``TrainingArguments`` feature;
the session is created when training begins (the optimizer exists then), gets
``batch_start`` at every optimizer step, saves its masks and schedule position
into every checkpoint, and is finalized at the end.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import torch
from transformers import DataCollatorWithPadding, Trainer, TrainerCallback, set_seed

from sparsecore import distributed
from sparsecore.adapters.batches import lengths_of, sorted_draw
from sparsecore.adapters.layers import finish_layer_pruning
from sparsecore.adapters.models import output_keys
from sparsecore.recipe import Recipe
from sparsecore.session import Session


def make_grad_sampler(model: torch.nn.Module, dataset, collator, default_batch_size: int, device, seed: int = 0,
                      group_by_length: bool = False):
    """Gradients for OBS: forward/backward on shuffled training batches (eval mode: no dropout noise).

    Each call draws its batch order from ``seed`` and the call's number (not the global RNG), the same on
    every rank; under torchrun this rank computes global samples ``rank, rank + W, …`` of it
    (:func:`sparsecore.distributed.own_samples`), so all ranks together compute what one process would.
    ``group_by_length`` (on when training batches are grouped by length): each call's randomly drawn rows are
    sorted by length into its batches (:func:`sparsecore.adapters.batches.sorted_draw`), a third of the padding."""
    calls = itertools.count()
    lengths: list[int] = []

    def sample(count: int, batch_size: int | None, desc: str):
        order = torch.Generator().manual_seed(seed + next(calls))
        own = set(distributed.own_samples(count))
        size = batch_size or default_batch_size
        if group_by_length and not lengths:
            lengths.extend(lengths_of(dataset))
        plan = sorted_draw(lengths, size, count, order) if group_by_length else None
        try:
            for i, batch in enumerate(_eval_batches(model, dataset, collator, size, count, desc, order, plan)):
                if i not in own:
                    continue
                model.zero_grad(set_to_none=False)
                with torch.enable_grad():  # callers may hold no_grad around the sampling loop
                    out = model(**{k: v.to(device) for k, v in batch.items()})
                    (out["loss"] if isinstance(out, dict) else out.loss).backward()  # a ModelOutput is a dict
                yield
        finally:
            model.zero_grad(set_to_none=True)

    return sample


def make_forward_sampler(model: torch.nn.Module, dataset, collator, batch_size: int, device):
    """Forward passes for quantization calibration (``count`` None: one pass over ``dataset``)."""

    def sample(count: int | None, desc: str):
        steps = math.ceil(len(dataset) / batch_size) if count is None else count
        for batch in _eval_batches(model, dataset, collator, batch_size, steps, desc):
            with torch.no_grad():
                model(**{k: v.to(device) for k, v in batch.items() if k != "labels"})
            yield

    return sample


def _eval_batches(model, dataset, collator, batch_size: int, count: int, desc: str,
                  order: torch.Generator | None = None, plan: list[list[int]] | None = None):
    """``count`` shuffled batches (cycling; or the batches of row indices in ``plan``), with the model in eval
    mode meanwhile."""
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    loader = (DataLoader(dataset, batch_sampler=plan, collate_fn=collator) if plan is not None else
              DataLoader(dataset, batch_size=batch_size, shuffle=True, collate_fn=collator, generator=order))
    was_training = model.training
    model.eval()
    batches = iter(())
    try:
        for _ in tqdm(range(count), desc=desc, unit="batch", disable=not distributed.is_main()):
            batch = next(batches, None)
            if batch is None:
                batches = iter(loader)
                batch = next(batches)
            yield batch
    finally:
        model.train(was_training)


class SessionCallback(TrainerCallback):
    def __init__(self, trainer: "SparseTrainer") -> None:
        self.trainer = trainer

    def on_train_begin(self, args, state, control, model=None, optimizer=None, train_dataloader=None, **kwargs):
        t = self.trainer
        steps = math.ceil(len(train_dataloader) / args.gradient_accumulation_steps)
        inner = getattr(optimizer, "optimizer", optimizer)  # accelerate wraps the torch optimizer
        data = (t.model, t.train_dataset, t.data_collator, args.per_device_train_batch_size, args.device)
        grads = make_grad_sampler(*data, args.seed, grouped(args))
        t.session = Session(t.recipe, t.model, inner, steps_per_epoch=steps, problem_type=t.problem_type,
                            teacher_disabled=t.teacher is None, grad_sampler=grads,
                            forward_sampler=make_forward_sampler(*data), output_keys=output_keys(t.model))
        t.session.initialize()
        if t.resume_dir is not None:
            t.session.load(t.resume_dir)

    def on_step_begin(self, args, state, control, **kwargs):
        session = self.trainer.session
        session.batch_start(step=state.global_step)
        update = session.pop_update()
        if update is not None and args.logging_strategy != "no":  # into log_history, TensorBoard, W&B, …
            self.trainer.log({f"sparsecore/{k}": v for k, v in update.items() if k not in ("step", "epoch")})

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if args.should_save and folder.is_dir():  # rank 0 writes; every rank holds the same session
            self.trainer.session.save(folder)

    def on_train_end(self, args, state, control, **kwargs):
        session = self.trainer.session
        session.finalize()
        finish_layer_pruning(self.trainer.model, session.dropped_layers)  # removed layers leave the model


def grouped(args) -> bool:
    """Training batches grouped by length (``--train_sampling_strategy group_by_length``): OBS's gradient
    batches are then sorted by length too."""
    return getattr(args, "train_sampling_strategy", "random") == "group_by_length"


def seed_everything(seed: int) -> None:
    """Python, numpy and torch RNGs (before the model is built: the new classifier head is random)."""
    set_seed(seed)


def padding_collator(tokenizer, separate: bool = False):
    """Pads each batch to its longest example (rows are already padded with --pad_to_max_length); ``separate``
    (features of a siamese pair classifier): each text of the pairs to its own side's longest."""
    if separate:
        from sparsecore.adapters.pair_encoder import PairCollator

        return PairCollator(tokenizer)
    return DataCollatorWithPadding(tokenizer, pad_to_multiple_of=None)


ARGS_JSON = "training_args.json"
ARGS_PICKLE = "training_args.bin"  # what Trainer writes: a pickle of TrainingArguments, never read by anyone


def args_as_json(folder: str | Path, args) -> None:
    """Replace the Trainer's pickled ``training_args.bin`` in ``folder`` by ``training_args.json`` (the same
    arguments, readable and safe to share: a copied folder carries no pickle)."""
    folder = Path(folder)
    (folder / ARGS_PICKLE).unlink(missing_ok=True)
    (folder / ARGS_JSON).write_text(args.to_json_string())


class ArgsAsJsonCallback(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if args.should_save and folder.is_dir():
            args_as_json(folder, args)


class RecipeOwnedLR(torch.optim.lr_scheduler.LRScheduler):
    """Scheduler that leaves the learning rate to the recipe's modifiers and reports what they set."""

    def get_lr(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:  # Trainer logs this right after optimizer.step()
        return self.get_lr()


class SparseTrainer(Trainer):
    """``Trainer`` that applies a recipe through a :class:`Session` (``recipe=None``: plain fine-tuning)."""

    # compute_loss returns per-micro-batch means (BERT's loss and the distillation blend), so let
    # Trainer divide by gradient_accumulation_steps even though BERT's forward accepts **kwargs
    loss_is_scaled_for_ga = False

    def __init__(self, *args, recipe: Recipe | None, problem_type: str, teacher: torch.nn.Module | None = None,
                 resume_dir: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.recipe, self.problem_type, self.teacher = recipe, problem_type, teacher
        self.resume_dir = resume_dir
        self.session: Session | None = None
        if teacher is not None:
            teacher.to(self.args.device).eval()
            for p in teacher.parameters():
                p.requires_grad_(False)
        self.add_callback(ArgsAsJsonCallback())
        if recipe is not None:
            self.add_callback(SessionCallback(self))

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        """Trainer's save; a siamese classifier (no ``PreTrainedModel``: Trainer writes its state dict only) also
        gets its config.json, so the folder and every checkpoint load again. A state dict written that way keeps
        one name per tied tensor (safetensors refuses shared memory; Trainer's resume loads it non-strictly and
        the tie restores the others)."""
        from transformers import PreTrainedModel

        if state_dict is None and not isinstance(self.model, PreTrainedModel):
            state_dict, seen = {}, set()
            for name, tensor in self.model.state_dict().items():
                key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
                if key not in seen:
                    seen.add(key)
                    state_dict[name] = tensor
        super()._save(output_dir, state_dict)
        from sparsecore.adapters.pair_encoder import is_siamese

        if self.args.should_save and is_siamese(getattr(self.model, "config", None)):
            self.model.config.save_pretrained(output_dir if output_dir is not None else self.args.output_dir)

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        """The recipe's learning-rate modifiers own the rate: a :class:`RecipeOwnedLR` (stateless, so one
        per optimizer serves every ``train()`` call) instead of the flags' schedule."""
        optimizer = optimizer or self.optimizer
        if self.recipe is not None and self.recipe.owns_lr and (
                self.lr_scheduler is None or isinstance(self.lr_scheduler, RecipeOwnedLR)):
            if self.lr_scheduler is None or self.lr_scheduler.optimizer is not optimizer:
                self.lr_scheduler = RecipeOwnedLR(optimizer)
            return self.lr_scheduler
        return super().create_scheduler(num_training_steps, optimizer)

    def log(self, logs: dict, *args, **kwargs) -> None:
        """Training logs also carry the recipe's loss parts (``sparsecore/task_loss``, ``…/distill_loss``: means
        since the last log, this rank's batches)."""
        if self.session is not None and "loss" in logs:
            logs = {**logs, **{f"sparsecore/{k}": v for k, v in self.session.pop_losses().items()}}
        super().log(logs, *args, **kwargs)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        # num_items_in_batch is withheld: our classifiers return mean losses, and with it the Trainer would
        # multiply the loss by the number of ranks under torchrun (its rule for models that sum over tokens)
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True)
        if model.training and self.session is not None:
            teacher_out = None
            if self.session.needs_teacher:
                with torch.no_grad():
                    teacher_out = self.teacher(**self.session.teacher_inputs(inputs))
            loss = self.session.loss(loss, outputs, teacher_out)
        return (loss, outputs) if return_outputs else loss
