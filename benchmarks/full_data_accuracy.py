"""Full-data SST-2 accuracy of MiniLM-L6 (67,349 training sentences, dynamic padding), one run at a time.

    python benchmarks/full_data_accuracy.py --run dense          # 1 epoch, the teacher of the others
    python benchmarks/full_data_accuracy.py --run gmp80          # 80% GMP + distillation
    python benchmarks/full_data_accuracy.py --run obs90          # 90% OBS + distillation
    python benchmarks/full_data_accuracy.py --run qat80          # 80% GMP + distillation, then int8 QAT
    python benchmarks/full_data_accuracy.py --run oneshot_curve  # one-shot GMP and OBS, 50–95%, from dense
    python benchmarks/full_data_accuracy.py --run throughput     # samples/s vs a plain HF Trainer, side by side
    python benchmarks/full_data_accuracy.py --table              # print the tables, draw the PNG

Each run is long (about 25 min per full epoch on 2 cores): run them one at a time with nothing else heavy.
Results accumulate in ``benchmarks/results/full_data_accuracy.json`` (one entry per run, with its command,
wall time and training throughput), so runs done in different sessions make one table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).with_name("results") / "full_data_accuracy.json"
PICTURE = Path(__file__).resolve().parents[1] / "docs" / "accuracy_vs_sparsity.png"
COMMON = dict(task_name="sst2", pad_to_max_length=False, max_seq_length=128, per_device_train_batch_size=32,
              per_device_eval_batch_size=64, do_train=True, do_eval=True, save_strategy="no", logging_steps=100,
              seed=42, overwrite_output_dir=True, disable_tqdm=True,
              train_sampling_strategy="group_by_length")  # batches of similar length: 1.05× padding, not 3×
LINEARS = (r"re:.*encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense|"
           r"intermediate\.dense|output\.dense)\.weight")
OBS90 = f"""
num_epochs: 3
training_modifiers:
  - !EpochRangeModifier
    end_epoch: eval(num_epochs)
  - !LearningRateFunctionModifier
    lr_func: linear
    init_lr: 1.0e-4
    final_lr: 1.0e-6
    end_epoch: eval(num_epochs)
pruning_modifiers:
  - !OBSPruningModifier
    params: ['{LINEARS}']
    final_sparsity: 0.9
    start_epoch: 0
    end_epoch: 2.0
    update_frequency: 0.25
    num_grads: 128
    fisher_block_size: 50
    grad_sampler_kwargs: {{batch_size: 16}}
distillation_modifiers:
  - !DistillationModifier
    hardness: 0.5
    temperature: 2.0
"""
RUNS = {  # name → (teacher needed, train() keyword arguments); the student starts from the dense run
    "dense": (False, dict(model_name_or_path="minilm", recipe="dense-finetune",
                          recipe_args="num_epochs=1,init_lr=1e-4")),
    "gmp80": (True, dict(recipe="minilm-gmp80-demo",
                         recipe_args="num_epochs=3,pruning_start_epoch=0,pruning_end_epoch=2,"
                                     "pruning_update_frequency=0.1,init_lr=1e-4")),
    "obs90": (True, dict(recipe=OBS90)),
    "qat80": (True, dict(model_name_or_path="{out}/gmp80", recipe="minilm-pruned-qat",
                         recipe_args="num_epochs=1,observer_freeze_epoch=0.75")),
}
ONESHOT = "modifiers:\n  - !{tag}\n    params: ['{params}']\n    final_sparsity: {s}\n    end_epoch: 1\n{extra}"
GRID = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def record(name: str, entry: dict) -> None:
    RESULTS.parent.mkdir(exist_ok=True)
    rows = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    rows[name] = entry
    RESULTS.write_text(json.dumps(rows, indent=1))


def train_run(name: str, glue_dir: str, out: Path) -> dict:
    from sparsecore.workflows import train

    needs_teacher, flags = RUNS[name]
    flags = {**COMMON, **flags, "glue_dir": glue_dir, "output_dir": str(out / name)}
    flags["model_name_or_path"] = flags.get("model_name_or_path", str(out / "dense")).format(out=out)
    if needs_teacher:
        flags["distill_teacher"] = str(out / "dense")
    started = time.time()
    result = train(**flags)
    return {**_summary(result, out / name, started),
            "flags": {k: v for k, v in flags.items() if k not in ("glue_dir", "output_dir")}}


def _summary(result, folder: Path, started: float) -> dict:
    return {"accuracy": result.metrics["eval_accuracy"], "encoder_sparsity": result.metrics["encoder_sparsity"],
            "wall_time_s": time.time() - started, "train_samples_per_second": _speed(folder)}


def _speed(folder: Path) -> float:
    """The Trainer's own train_samples_per_second, from the run's trainer_state.json."""
    state = json.loads((folder / "trainer_state.json").read_text())
    return next(e for e in reversed(state["log_history"]) if "train_samples_per_second" in e)[
        "train_samples_per_second"]


def oneshot_curve(glue_dir: str, out: Path) -> dict:
    """One-shot from the dense run: magnitude (layer by layer) and OBS (global, 64 gradients) over GRID."""
    from sparsecore.workflows import oneshot

    points = {}
    for method, tag, extra in (("magnitude", "GMPruningModifier", ""),
                               ("obs", "OBSPruningModifier", "    num_grads: 64\n    grad_sampler_kwargs: "
                                                             "{batch_size: 16}\n")):
        for s in GRID:
            started = time.time()
            result = oneshot(model_name_or_path=str(out / "dense"), task_name="sst2", glue_dir=glue_dir,
                             recipe=ONESHOT.format(tag=tag, params=LINEARS, s=s, extra=extra),
                             output_dir=str(out / f"oneshot-{method}-{s}"), overwrite_output_dir=True,
                             max_train_samples=4096, per_device_train_batch_size=16, max_seq_length=128,
                             disable_tqdm=True)
            points[f"{method}@{s}"] = {"accuracy": result.metrics["eval_accuracy"],
                                       "encoder_sparsity": result.metrics["encoder_sparsity"],
                                       "wall_time_s": time.time() - started}
            print(method, s, points[f"{method}@{s}"], flush=True)
    return {"points": points}


def throughput(glue_dir: str, out: Path, rows: int = 2048) -> dict:
    """Training samples/s on the same ``rows`` sentences, side by side: a plain HF Trainer fine-tune, then
    sparsecore with a dense recipe, GMP + distillation and QAT + distillation. OBS is left out: on 64 steps its
    Fisher passes (one per update) would dominate; the obs90 run's own samples/s shows its real share."""
    from sparsecore.workflows import train

    speeds = {"plain HF Trainer": _plain_trainer(glue_dir, out / "tp-plain", rows)}
    short = dict(COMMON, glue_dir=glue_dir, max_train_samples=rows, do_eval=False,
                 model_name_or_path=str(out / "dense"))
    jobs = {"sparsecore dense recipe": dict(recipe="dense-finetune", recipe_args="num_epochs=1"),
            "GMP 80% + distillation": dict(recipe="minilm-gmp80-demo", distill_teacher=str(out / "dense"),
                                           recipe_args="num_epochs=1,pruning_start_epoch=0,pruning_end_epoch=0.75,"
                                                       "pruning_update_frequency=0.25"),
            "QAT + distillation": dict(recipe="minilm-pruned-qat", distill_teacher=str(out / "dense"),
                                       recipe_args="num_epochs=1,observer_freeze_epoch=0.75")}
    for label, flags in jobs.items():
        folder = out / ("tp-" + label.split()[0].lower())
        train(**short, **flags, output_dir=str(folder))
        speeds[label] = _speed(folder)
        print(label, speeds[label], flush=True)
    return {"rows": rows, "samples_per_second": speeds}


def _plain_trainer(glue_dir: str, folder: Path, rows: int) -> float:
    """transformers.Trainer itself (no sparsecore session), same data, batch, length and collator."""
    from transformers import Trainer, TrainingArguments

    from sparsecore.adapters.models import load_classifier, load_tokenizer, minilm_path
    from sparsecore.adapters.trainer import padding_collator
    from sparsecore.tasks import load_data
    from sparsecore.workflows.features import tokenize_split

    data = load_data(task_name="sst2", glue_dir=glue_dir)
    tokenizer = load_tokenizer(str(minilm_path()))
    model = load_classifier(str(minilm_path()), data.problem_type, data.label_names)
    args = TrainingArguments(output_dir=str(folder), per_device_train_batch_size=32, num_train_epochs=1,
                             learning_rate=1e-4, save_strategy="no", report_to=[], disable_tqdm=True, seed=42,
                             logging_steps=100, dataloader_pin_memory=False,
                             train_sampling_strategy="group_by_length")
    trainer = Trainer(model=model, args=args, train_dataset=tokenize_split(data.train, tokenizer, 128, False, rows),
                      data_collator=padding_collator(tokenizer))
    return trainer.train().metrics["train_samples_per_second"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", choices=sorted([*RUNS, "oneshot_curve", "throughput"]))
    parser.add_argument("--table", action="store_true")
    parser.add_argument("--glue_dir", default=os.environ.get("SPARSECORE_GLUE_DIR", "../shared/data/glue"))
    parser.add_argument("--out", default="runs/full-data")
    args = parser.parse_args(argv)
    if args.run:
        special = {"oneshot_curve": oneshot_curve, "throughput": throughput}
        entry = (special[args.run] if args.run in special else
                 lambda g, o: train_run(args.run, g, o))(args.glue_dir, Path(args.out))
        entry["command"] = " ".join(["python", *sys.argv])
        record(args.run, entry)
        print(json.dumps(entry, indent=1))
    if args.table:
        rows = json.loads(RESULTS.read_text())
        print(table(rows))
        if "throughput" in rows:
            speeds = rows["throughput"]["samples_per_second"]
            base = speeds["plain HF Trainer"]
            print("\n| training run | samples/s | vs plain HF Trainer |\n|---|---:|---:|")
            print("\n".join(f"| {k} | {v:.1f} | {v / base:.2f}× |" for k, v in speeds.items()))
        if "oneshot_curve" in rows:
            print("\n" + oneshot_table(rows["oneshot_curve"]["points"]))
            plot(rows, PICTURE)
            print(f"\nwrote {PICTURE}")


def table(rows: dict) -> str:
    dense = rows.get("dense", {}).get("accuracy")
    lines = ["| run | encoder sparsity | SST-2 val accuracy (872) | of dense | wall time | train samples/s |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, r in rows.items():
        if "accuracy" not in r:
            continue
        share = f"{100 * r['accuracy'] / dense:.1f}%" if dense else "—"
        lines.append(f"| {name} | {100 * r['encoder_sparsity']:.1f}% | {100 * r['accuracy']:.2f}% | {share} | "
                     f"{r['wall_time_s'] / 60:.0f} min | {r['train_samples_per_second']:.1f} |")
    return "\n".join(lines)


def oneshot_table(points: dict) -> str:
    lines = ["| one-shot from dense | " + " | ".join(f"{s:.0%}" for s in GRID) + " |", "|---|" + "---:|" * len(GRID)]
    for method in ("magnitude", "obs"):
        cells = [f"{100 * points[f'{method}@{s}']['accuracy']:.2f}%" if f"{method}@{s}" in points else "—"
                 for s in GRID]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: dict, path: Path) -> None:
    """Accuracy vs sparsity: one-shot magnitude and OBS curves, gradual runs as points, dense as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    points = rows["oneshot_curve"]["points"]
    for method, style in (("magnitude", "o-"), ("obs", "s-")):
        xs = [p["encoder_sparsity"] * 100 for k, p in points.items() if k.startswith(method)]
        ys = [p["accuracy"] * 100 for k, p in points.items() if k.startswith(method)]
        ax.plot(xs, ys, style, label=f"one-shot {'GMP (magnitude)' if method == 'magnitude' else 'OBS'}")
    for name, marker in (("gmp80", "D"), ("obs90", "*"), ("qat80", "P")):
        if name in rows:
            ax.plot(rows[name]["encoder_sparsity"] * 100, rows[name]["accuracy"] * 100, marker, markersize=10,
                    label=f"gradual {name} + distillation")
    if "dense" in rows:
        ax.axhline(rows["dense"]["accuracy"] * 100, color="gray", ls="--", label="dense (1 epoch)")
    ax.set_xlabel("encoder sparsity (%)")
    ax.set_ylabel("SST-2 validation accuracy (%)")
    ax.set_title("MiniLM-L6 on full SST-2: accuracy vs sparsity")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    main()
