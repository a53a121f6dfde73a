"""``train`` and ``oneshot``: sparsify a text classifier with a recipe, as Python calls (the CLI's twins).

    from sparsecore.workflows import train
    result = train(model_name_or_path="minilm", task_name="sst2", recipe="minilm-gmp80-demo",
                   distill_teacher="out/dense", output_dir="out/gmp80")
    result.metrics["eval_accuracy"], result.sparsity["total"]["sparsity"], result.output_dir

Keyword arguments are the CLI's flags (``python -m sparsecore.transformers.text_classification --help``):
:class:`~sparsecore.adapters.arguments.ModelArguments`, ``DataTrainingArguments`` and every
``transformers.TrainingArguments`` field. Flow: validate everything (nothing written on bad input) → load
model and data → train through :class:`sparsecore.adapters.trainer.SparseTrainer` (or apply the recipe at
once) → evaluate → write the trained folder (:mod:`sparsecore.folders`). Notes about the run (recipe vs flag
decisions) go to the ``sparsecore`` logger and into the result.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from sparsecore import distributed
from sparsecore.adapters.arguments import training_arguments
from sparsecore.adapters.layers import check_layer_pruning, finish_layer_pruning
from sparsecore.adapters.models import backbone_notes, family, load_classifier, load_tokenizer, output_keys
from sparsecore.adapters.trainer import args_as_json, seed_everything
from sparsecore.errors import SparsecoreError
from sparsecore.file_checks import check_vocabulary, is_disk_full, remove_added, snapshot
from sparsecore.folders import TrainingInfo
from sparsecore.quant.qat import CONFIG_FILE as QUANT_CONFIG
from sparsecore.report import write_sparsity_report
from sparsecore.session import Session, apply_one_shot
from sparsecore.tasks import compute_metrics, metric_names_for
from sparsecore.workflows.features import tokenize_split, tokenizer_fingerprint
from sparsecore.workflows.plan import Plan, make_plan

log = logging.getLogger("sparsecore")


@dataclass(frozen=True)
class TrainResult:
    """What a ``train``/``oneshot`` run produced."""

    output_dir: Path
    metrics: dict  # eval_* metrics, encoder_sparsity, wall_time_s (also in eval_results.json)
    sparsity: dict  # sparsity_report.json: {"params": [...per weight...], "total": {...}}
    notes: tuple[str, ...] = ()  # decisions taken about flags vs recipe, logged before the run
    files: dict = field(default_factory=dict)  # name → path of what the run wrote (model, recipe, report, ...)


def train(**flags) -> TrainResult:
    """Fine-tune (and prune/distil/quantize, as the recipe says) a text classifier. See the module docstring."""
    return run(*training_arguments("train", flags), given=set(flags))


def oneshot(**flags) -> TrainResult:
    """Apply the recipe's final state at once, without training (``--one_shot``), then evaluate and save."""
    if flags.get("one_shot", True) is not True:
        raise SparsecoreError("oneshot() with one_shot=False", "oneshot()", "call train() to train")
    flags = {**flags, "one_shot": True}
    return run(*training_arguments("oneshot", flags), given=set(flags))


def run(model_args, data_args, training_args, given: set[str], on_note=log.warning) -> TrainResult:
    """Validate the arguments into a plan, report its notes through ``on_note``, then execute it."""
    plan = make_plan(model_args, data_args, training_args, given)
    _join_ranks(training_args)  # every rank has checked the output folder before rank 0 creates it
    for note in plan.notes if distributed.is_main() else ():
        on_note(note)
    if "report_to" not in given:
        training_args.report_to = []  # no experiment trackers unless asked for
    return execute(plan, model_args, data_args, training_args)


def execute(plan: Plan, model_args, data_args, training_args) -> TrainResult:
    """Run a checked :class:`Plan`: build the trainer, check the recipe against the model, train with the recipe
    (or apply it at once with ``--one_shot``), evaluate, write the trained folder. On failure nothing of the
    run is kept in a folder it created (unless it holds checkpoints); on a full disk, what it added is removed."""
    seed_everything(training_args.seed)
    started = time.time()
    job = _Job(plan, model_args, data_args, training_args)
    created = not plan.output_dir.exists()  # Trainer creates output_dir as soon as it is built
    before = snapshot(plan.output_dir)
    try:
        trainer = job.trainer()
        if plan.recipe is not None:
            if training_args.do_train:
                trainer.create_optimizer()  # the real optimizer, so param_groups indices are checked as trained
            check_layer_pruning(job.model, plan.recipe)
            Session(plan.recipe, job.model, trainer.optimizer, steps_per_epoch=1,
                    output_keys=output_keys(job.model)).validate()  # before training
        quantization = job.sparsify(trainer)
        metrics = job.evaluate(trainer) if training_args.do_eval else {}
        files = job.save(trainer, quantization, metrics, started)
    except BaseException as exc:
        if is_disk_full(exc):  # what this run wrote is partial: remove all of it, keep what was there before
            remove_added(plan.output_dir, before)
            raise SparsecoreError(f"no space left on the disk of {plan.output_dir}", "--output_dir",
                                  "free some space or choose another folder; nothing of this run was kept") from None
        # no half-written output on failure, but never throw away checkpoints of a long run
        if created and distributed.is_main() and plan.output_dir.exists() and \
                not any(plan.output_dir.glob("checkpoint-*")):
            shutil.rmtree(plan.output_dir, ignore_errors=True)
        raise
    return TrainResult(plan.output_dir, metrics, job.table, tuple(plan.notes), files)


class _Job:
    """One run's model, tokenizer, teacher and tokenized splits, and the steps :func:`execute` takes."""

    def __init__(self, plan: Plan, model_args, data_args, training_args) -> None:
        from sparsecore.adapters.quant_attention import quantizable_attention

        self.plan, self.data_args, self.args = plan, data_args, training_args
        self.model_name_or_path = model_args.model_name_or_path
        data = plan.data
        self.tokenizer = load_tokenizer(model_args.tokenizer_name or plan.model_path, model_args.cache_dir)
        self.tokenizer_fp = tokenizer_fingerprint(self.tokenizer)  # before any call changes its truncation state
        self.cache_dir = model_args.cache_dir
        loading: dict = {}
        self.siamese = plan.pair_encoding == "siamese"
        self.model = load_classifier(plan.model_path, data.problem_type, data.label_names, model_args.cache_dir,
                                     loading=loading, pair_encoding=plan.pair_encoding,
                                     label_range=_label_range(data))
        if distributed.is_main():
            for note in backbone_notes(self.model, loading["missing_keys"], plan.recipe,
                                       f"--model_name_or_path {model_args.model_name_or_path}",
                                       loading["qat_observers_dropped"]):
                log.warning(note)
        check_vocabulary(len(self.tokenizer), getattr(self.model.config, "vocab_size", None),
                         f"--model_name_or_path {model_args.model_name_or_path}")
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit is not None and data_args.max_seq_length > limit:
            raise SparsecoreError(f"--max_seq_length {data_args.max_seq_length} exceeds the model's {limit} "
                                  "positions", "--max_seq_length", f"use at most {limit}")
        self.teacher = _load_teacher(plan, self.model, model_args)
        if plan.recipe is not None and plan.recipe.quantizes:
            quantizable_attention(self.model)  # QKᵀ and attn·V become quantizable matmuls
        wants_train = training_args.do_train or data_args.one_shot  # one-shot OBS samples gradients from train data
        with training_args.main_process_first(desc="tokenizing"):  # torchrun: rank 0 fills the cache, others read it
            train = data.train if wants_train else None
            self.train_ds = self.features(train, data_args.max_train_samples) if train is not None else None
            self.eval_sets = {name: self.features(split, data_args.max_eval_samples)
                              for name, split in data.evals.items()}
        self.table: dict = {}
        self.rank_checks: list[dict] = []

    def features(self, split, max_rows):
        args = self.data_args
        return tokenize_split(split, self.tokenizer, args.max_seq_length, args.pad_to_max_length, max_rows,
                              tokenizer_fp=self.tokenizer_fp, cache_dir=self.cache_dir,
                              overwrite_cache=args.overwrite_cache, num_proc=args.preprocessing_num_workers,
                              separate=self.siamese)

    def trainer(self):
        from sparsecore.adapters.trainer import SparseTrainer, padding_collator

        data = self.plan.data
        metric_names = metric_names_for(data.task_name, data.problem_type)

        def metrics_fn(pred):
            logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
            return compute_metrics(data.problem_type, metric_names, logits, pred.label_ids)

        if not torch.cuda.is_available():
            self.args.dataloader_pin_memory = False  # pinning needs an accelerator; avoids a warning per run
        self.collator = padding_collator(self.tokenizer, self.siamese)
        return SparseTrainer(model=self.model, args=self.args, train_dataset=self.train_ds,
                             eval_dataset=next(iter(self.eval_sets.values()), None), processing_class=self.tokenizer,
                             data_collator=self.collator, compute_metrics=metrics_fn, recipe=self.plan.recipe,
                             problem_type=data.problem_type, teacher=self.teacher, resume_dir=self.plan.resume_dir)

    def sparsify(self, trainer):
        """Train (or apply the recipe one-shot); the quantization state when the recipe quantized, else None."""
        from sparsecore.adapters.trainer import grouped, make_forward_sampler, make_grad_sampler

        if self.data_args.one_shot:
            samplers = {}
            if self.train_ds is not None:
                batch = (self.model, self.train_ds, self.collator, self.args.per_device_train_batch_size,
                         self.args.device)
                samplers = {"grad_sampler": make_grad_sampler(*batch, self.args.seed, grouped(self.args)),
                            "forward_sampler": make_forward_sampler(*batch)}
            session = apply_one_shot(self.plan.recipe, self.model, problem_type=self.plan.data.problem_type,
                                     **samplers)
            finish_layer_pruning(self.model, session.dropped_layers)
            self.rank_checks = session.rank_checks
            return session.quantization
        if self.args.do_train:
            trainer.train(resume_from_checkpoint=self.plan.resume_dir)
            if trainer.session is None:
                return None
            self.rank_checks = trainer.session.rank_checks
            return trainer.session.quantization
        return None

    def evaluate(self, trainer) -> dict:
        metrics = {}
        for name, ds in self.eval_sets.items():
            prefix = "eval" if name in ("validation", "test") else f"eval_{name}"  # test: --eval_on_test
            metrics.update(trainer.evaluate(eval_dataset=ds, metric_key_prefix=prefix))
            metrics[f"{prefix}_samples"] = len(ds)  # as run_glue reports it
        return metrics

    def save(self, trainer, quantization, metrics: dict, started: float) -> dict:
        """Write the trained folder (rank 0 under torchrun; the others wait); returns name → path written."""
        plan, data, out = self.plan, self.plan.data, self.plan.output_dir
        trainer.save_model(str(out))  # on rank 0 only (Trainer decides)
        if not distributed.is_main():
            if self.args.do_predict:
                trainer.predict(self.features(data.test, self.data_args.max_predict_samples))  # a collective
            distributed.barrier()
            return {}
        out.mkdir(parents=True, exist_ok=True)
        args_as_json(out, self.args)
        self.tokenizer.save_pretrained(str(out))
        files = {"model": out}
        if self.args.do_train and not self.data_args.one_shot:
            trainer.save_state()  # trainer_state.json: log_history with every sparsecore/ update, as run_glue does
            files["trainer_state"] = out / "trainer_state.json"
        if self.args.do_predict:
            files["predictions"] = _predict(trainer, self.features(data.test, self.data_args.max_predict_samples),
                                            data, out)
        if plan.recipe is not None:
            files["recipe"] = out / "recipe.yaml"
            files["recipe"].write_text(plan.recipe.to_yaml())
        if quantization is not None:
            quantization.save(out)  # export rebuilds the fake-quant model from it
            files["quantization"] = out / QUANT_CONFIG
        self.table = write_sparsity_report(self.model, out, family(self.model).encoder_linears,
                                           title=f"Sparsity per layer — {out.name}")
        files["sparsity_report"] = out / "sparsity_report.png"
        metrics["encoder_sparsity"] = self.table["total"]["sparsity"]
        metrics["wall_time_s"] = time.time() - started
        files["eval_results"] = out / "eval_results.json"
        files["eval_results"].write_text(json.dumps(metrics, indent=1))
        files["training_info"] = TrainingInfo(
            task_name=data.task_name, problem_type=data.problem_type, label_names=tuple(data.label_names),
            text_columns=tuple(data.text_columns), max_seq_length=self.data_args.max_seq_length,
            recipe=plan.recipe.source if plan.recipe else None,
            model_name_or_path=self.model_name_or_path, pair_encoding=plan.pair_encoding).write(out)
        if (ranks := distributed.write_rank_checks(out, self.rank_checks)) is not None:
            files["ranks"] = ranks
        distributed.barrier()
        return files


def _join_ranks(training_args) -> None:
    """Under torchrun: start the process group (Trainer's device set-up does) and wait for every rank."""
    if training_args.world_size > 1:
        distributed.barrier()


def _load_teacher(plan: Plan, model, model_args):
    if plan.teacher == "disable" or plan.recipe is None or not plan.recipe.distills:
        return None
    if plan.teacher == "self":
        return copy.deepcopy(model)
    data = plan.data
    return load_classifier(plan.teacher, data.problem_type, data.label_names, model_args.cache_dir,
                           flag="--distill_teacher", pair_encoding=plan.pair_encoding)


def _label_range(data) -> tuple[float, float] | None:
    """(lowest, highest) training label of a regression task (a fresh siamese regression head starts on it)."""
    labels = getattr(data.train, "labels", None) if data.train is not None else None
    if data.problem_type != "regression" or labels is None or len(labels) == 0:
        return None
    return float(np.min(labels)), float(np.max(labels))


def _predict(trainer, ds, data, out: Path) -> Path:
    logits = trainer.predict(ds).predictions
    logits = logits[0] if isinstance(logits, tuple) else logits
    path = out / "predict_results.txt"
    with open(path, "w") as f:
        f.write("index\tprediction\n")
        for i, row in enumerate(np.asarray(logits)):
            if data.problem_type == "regression":
                f.write(f"{i}\t{float(row.reshape(-1)[0]):.4f}\n")
            elif data.problem_type == "multi_label_classification":
                f.write(f"{i}\t{','.join(n for n, v in zip(data.label_names, row) if v > 0)}\n")
            else:
                f.write(f"{i}\t{data.label_names[int(np.argmax(row))]}\n")
    return path
