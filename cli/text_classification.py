"""``sparsecore.transformers.text_classification``: sparsify a text classifier with a recipe.

    python -m sparsecore.transformers.text_classification \
        --model_name_or_path minilm --task_name sst2 --glue_dir ../shared/data/glue \
        --recipe minilm-gmp80-demo --distill_teacher out/dense --do_train --do_eval --output_dir out/gmp80

Flow: parse → validate everything (nothing written on bad input) → load model and
data → train through :class:`sparsecore.adapters.trainer.SparseTrainer` (or apply
the recipe one-shot) → evaluate → save model, tokenizer, recipe, sparsity report.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from sparsecore.adapters.bert import BERT, load_classifier, load_tokenizer, output_keys
from sparsecore.adapters.layers import check_layer_pruning, finish_layer_pruning
from sparsecore.cli.args import parse
from sparsecore.cli.features import tokenize_split
from sparsecore.cli.parser import user_errors
from sparsecore.cli.plan import Plan, make_plan
from sparsecore.errors import SparsecoreError
from sparsecore.modifiers.quantization import QuantizationModifier
from sparsecore.report import write_sparsity_report
from sparsecore.session import Session
from sparsecore.tasks import compute_metrics, metric_names_for


def main(argv: list[str] | None = None) -> None:
    with user_errors():
        result = run(argv)
    print(json.dumps(result["metrics"], indent=1))


def run(argv: list[str] | None = None) -> dict:
    """Run the CLI job; returns ``{"metrics": ..., "sparsity": ..., "output_dir": ...}``."""
    model_args, data_args, training_args, given = parse(argv)
    plan = make_plan(model_args, data_args, training_args, given)
    for note in plan.notes:
        sys.stderr.write(f"note: {note}\n")
    return execute(plan, model_args, data_args, training_args)


def execute(plan: Plan, model_args, data_args, training_args) -> dict:
    from transformers import DataCollatorWithPadding, set_seed

    from sparsecore.adapters.quant_attention import quantizable_attention
    from sparsecore.adapters.trainer import SparseTrainer, make_forward_sampler, make_grad_sampler

    logging.getLogger("sparsecore").setLevel(logging.INFO)
    set_seed(training_args.seed)
    started = time.time()
    data = plan.data
    tokenizer = load_tokenizer(model_args.tokenizer_name or plan.model_path, model_args.cache_dir)
    model = load_classifier(plan.model_path, data.problem_type, data.label_names, model_args.cache_dir)
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and data_args.max_seq_length > limit:
        raise SparsecoreError(f"--max_seq_length {data_args.max_seq_length} exceeds the model's {limit} positions",
                              "--max_seq_length", f"use at most {limit}")
    teacher = _load_teacher(plan, model, model_args)
    if _quantizes(plan):
        quantizable_attention(model)  # QKᵀ and attn·V become quantizable matmuls

    def features(split, max_rows):
        return tokenize_split(split, tokenizer, data_args.max_seq_length, data_args.pad_to_max_length, max_rows)

    wants_train = training_args.do_train or data_args.one_shot  # one-shot OBS samples gradients from train data
    train_ds = features(data.train, data_args.max_train_samples) if wants_train and data.train else None
    eval_sets = {name: features(split, data_args.max_eval_samples) for name, split in data.evals.items()}
    metric_names = metric_names_for(data.task_name, data.problem_type)

    def metrics_fn(pred):
        logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
        return compute_metrics(data.problem_type, metric_names, logits, pred.label_ids)

    training_args.report_to = []
    if not torch.cuda.is_available():
        training_args.dataloader_pin_memory = False  # pinning needs an accelerator; avoids a warning per run
    collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=None)
    first_eval = next(iter(eval_sets.values()), None)
    created = not plan.output_dir.exists()  # Trainer creates output_dir as soon as it is built
    try:
        trainer = SparseTrainer(model=model, args=training_args, train_dataset=train_ds, eval_dataset=first_eval,
                                processing_class=tokenizer, data_collator=collator, compute_metrics=metrics_fn,
                                recipe=plan.recipe, problem_type=data.problem_type, teacher=teacher,
                                resume_dir=plan.resume_dir)
        if plan.recipe is not None:
            if training_args.do_train:
                trainer.create_optimizer()  # the real optimizer, so param_groups indices are checked as trained
            check_layer_pruning(model, plan.recipe)
            Session(plan.recipe, model, trainer.optimizer, steps_per_epoch=1,
                    output_keys=output_keys(model)).validate()  # before training
        quantization = None
        if data_args.one_shot:
            samplers = {}
            if train_ds is not None:
                batch = (model, train_ds, collator, training_args.per_device_train_batch_size, training_args.device)
                samplers = {"grad_sampler": make_grad_sampler(*batch), "forward_sampler": make_forward_sampler(*batch)}
            session = apply_one_shot(plan, model, data.problem_type, **samplers)
            finish_layer_pruning(model, session.dropped_layers)
            quantization = session.quantization
        elif training_args.do_train:
            trainer.train(resume_from_checkpoint=plan.resume_dir)
            quantization = trainer.session.quantization if trainer.session else None
        metrics = {}
        if training_args.do_eval:
            for name, ds in eval_sets.items():
                prefix = "eval" if name == "validation" else f"eval_{name}"
                metrics.update(trainer.evaluate(eval_dataset=ds, metric_key_prefix=prefix))
        out = plan.output_dir
        out.mkdir(parents=True, exist_ok=True)
        trainer.save_model(str(out))
        tokenizer.save_pretrained(str(out))
        if training_args.do_predict:
            _predict(trainer, features(data.test, data_args.max_predict_samples), data, out)
        if plan.recipe is not None:
            (out / "recipe.yaml").write_text(plan.recipe.to_yaml())
        if quantization is not None:
            quantization.save(out)  # ranges + sites: export_onnx rebuilds the fake-quant model from them
        table = write_sparsity_report(model, out, BERT.prunable, title=f"Sparsity per layer — {out.name}")
        metrics["encoder_sparsity"] = table["total"]["sparsity"]
        metrics["wall_time_s"] = time.time() - started
        (out / "eval_results.json").write_text(json.dumps(metrics, indent=1))
        (out / "sparsecore_training.json").write_text(json.dumps({
            "task_name": data.task_name, "problem_type": data.problem_type, "label_names": data.label_names,
            "text_columns": list(data.text_columns), "max_seq_length": data_args.max_seq_length,
            "recipe": plan.recipe.source if plan.recipe else None, "model_name_or_path": model_args.model_name_or_path,
        }, indent=1))
    except BaseException:
        # no half-written output on failure, but never throw away checkpoints of a long run
        if created and plan.output_dir.exists() and not any(plan.output_dir.glob("checkpoint-*")):
            shutil.rmtree(plan.output_dir, ignore_errors=True)
        raise
    return {"metrics": metrics, "sparsity": table, "output_dir": str(plan.output_dir)}


def _load_teacher(plan: Plan, model, model_args):
    if plan.teacher == "disable" or plan.recipe is None or not any(
            m.tag == "DistillationModifier" for m in plan.recipe.modifiers):
        return None
    if plan.teacher == "self":
        return copy.deepcopy(model)
    data = plan.data
    teacher = load_classifier(plan.teacher, data.problem_type, data.label_names, model_args.cache_dir,
                              flag="--distill_teacher")
    return teacher


def apply_one_shot(plan: Plan, model, problem_type: str, grad_sampler=None, forward_sampler=None) -> Session:
    """Apply every modifier at the recipe's last epoch, without training (``--one_shot``)."""
    last = plan.recipe.num_epochs or 1.0
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # LR/weight-decay modifiers need one; never stepped
    steps = 1000
    with Session(plan.recipe, model, optimizer, steps_per_epoch=steps, problem_type=problem_type,
                 grad_sampler=grad_sampler, forward_sampler=forward_sampler, one_shot=True) as session:
        session.batch_start(step=math.ceil(last * steps))
    return session


def _quantizes(plan: Plan) -> bool:
    return plan.recipe is not None and any(isinstance(m, QuantizationModifier) for m in plan.recipe.modifiers)


def _predict(trainer, ds, data, out: Path) -> None:
    logits = trainer.predict(ds).predictions
    logits = logits[0] if isinstance(logits, tuple) else logits
    with open(out / "predict_results.txt", "w") as f:
        f.write("index\tprediction\n")
        for i, row in enumerate(np.asarray(logits)):
            if data.problem_type == "regression":
                f.write(f"{i}\t{float(row.reshape(-1)[0]):.4f}\n")
            elif data.problem_type == "multi_label_classification":
                f.write(f"{i}\t{','.join(n for n, v in zip(data.label_names, row) if v > 0)}\n")
            else:
                f.write(f"{i}\t{data.label_names[int(np.argmax(row))]}\n")
