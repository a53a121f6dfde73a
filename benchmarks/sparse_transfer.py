"""Sparse transfer learning on full GLUE data (MiniLM-L6): backbones pruned once upstream on unlabeled text, then
fine-tuned with every zero held on SST-2, MRPC and STS-B (a task whose text no upstream run read), side by side with
dense fine-tuning of the same length, one run at a time.

    python benchmarks/sparse_transfer.py --run upstream80          # GMP to 80% on the corpus, hidden-state distillation
    python benchmarks/sparse_transfer.py --run upstream90
    python benchmarks/sparse_transfer.py --run upstream80-layers   # the same, distilling every layer's token states
    python benchmarks/sparse_transfer.py --run upstream90-obs      # OBS (global, Fisher of the distillation loss)
    python benchmarks/sparse_transfer.py --run upstream80-short-mlm  # the objectives side by side, each 0.3 epochs:
                                                   # short-distill, short-mlm (a fresh MLM head), short-mlmdistill
    python benchmarks/sparse_transfer.py --run dense-mrpc          # dense fine-tuning (dense-sst2, dense-stsb too)
    python benchmarks/sparse_transfer.py --run transfer80-sst2     # `transfer` from runs/sparse-transfer/upstream80
    python benchmarks/sparse_transfer.py --run transfer80-layers-sst2   # from upstream80-layers
    python benchmarks/sparse_transfer.py --run transfer-quant80-sst2
    python benchmarks/sparse_transfer.py --run downstream80-stsb   # GMP to 80% on the task, from dense-stsb
    python benchmarks/sparse_transfer.py --run transfer80-stsb --epochs 8 --lr 3e-4   # another schedule: recorded as
                                                   # transfer80-stsb@e8-lr3e-4, compared with dense-stsb@e8-lr3e-4
    python benchmarks/sparse_transfer.py --run transfer80-siamese-stsb   # pair tasks as siamese classifiers (each
                                                   # text encoded alone): dense-siamese-TASK, ...-siamese-TASK
    python benchmarks/sparse_transfer.py --run zeroshot-upstream80 # STS-B with no training: cosine of mean-pooled
                                                   # embeddings (zeroshot-dense: all-MiniLM-L6-v2 itself)
    python benchmarks/sparse_transfer.py --table                   # print the table, draw the PNG

The upstream corpus is the text columns of the GLUE training files of CoLA, MRPC, RTE, SST-2 and WNLI plus QNLI's
validation file (Wikipedia sentences and questions; QNLI is never evaluated here) — labels are never read, STS-B is
left out, and no validation file of an evaluated task is read. A transfer run is as long as its dense run (same
epochs, learning rate, batch and sequence length), with no teacher. Results accumulate in
``benchmarks/results/sparse_transfer.json`` (one entry per run, with its command and wall time), so runs done in
different sessions make one table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from full_data_accuracy import COMMON, LINEARS  # the full-data runs' training flags and encoder-Linear selector

RESULTS = Path(__file__).with_name("results") / "sparse_transfer.json"
PICTURE = Path(__file__).resolve().parents[1] / "docs" / "sparse_transfer.png"
CORPUS = ("cola/train.tsv", "mrpc/train.tsv", "rte/train.tsv", "sst2/train.tsv", "wnli/train.tsv",
          "qnli/validation.tsv")
TASKS = {  # task → (main metric, epochs, initial learning rate) of both its dense and its transfer runs
    "sst2": ("accuracy", 1, 1e-4),
    "mrpc": ("accuracy", 3, 1e-4),
    "stsb": ("pearson", 3, 1e-4),
}
PAIR_TASKS = ("mrpc", "stsb")  # also run as siamese pair classifiers (KIND-siamese-TASK)
UPSTREAM_EPOCHS = 1.5
SHORT_EPOCHS = 0.3  # the objective comparison's upstream length, the same for every objective
VARIANTS = {  # upstreamS-VARIANT → (objective, distilled layers, pruner); no variant: ("distill", "last", GMP) for
    # UPSTREAM_EPOCHS
    "layers": ("distill", "all", "gmp"),
    "obs": ("distill", "last", "obs"),
    "short-distill": ("distill", "last", "gmp"),
    "short-mlm": ("mlm", "last", "gmp"),
    "short-mlmdistill": ("mlm+distill", "last", "gmp"),
}
GMP = """
num_epochs: {epochs}
training_modifiers:
  - !EpochRangeModifier
    end_epoch: eval(num_epochs)
  - !LearningRateFunctionModifier
    lr_func: linear
    init_lr: {init_lr}
    final_lr: {final_lr}
    end_epoch: eval(num_epochs)
pruning_modifiers:
  - !{modifier}
    params: ['{params}']
    init_sparsity: 0.0
    final_sparsity: {sparsity}
    start_epoch: 0.0
    end_epoch: {prune_end}
    update_frequency: {update_frequency}
    inter_func: cubic
{pruner_args}    mask_type: unstructured
    leave_enabled: true
"""  # gradual pruning (cubic) of the blocks' Linears, upstream and downstream: GMP layer by layer by default
PRUNERS = {  # pruner → (modifier, its own lines) of GMP
    "gmp": ("GMPruningModifier", ""),
    # OBS as in the full-data obs90 run (128 gradients, blocks of 50), ranked globally
    "obs": ("OBSPruningModifier", ("    global_sparsity: true\n    num_grads: 128\n    fisher_block_size: 50\n"
                                   "    grad_sampler_kwargs: {batch_size: 16}\n")),
}


def gradual(pruner: str = "gmp", **fields) -> str:
    """:data:`GMP` filled in with ``fields`` and the :data:`PRUNERS` entry ``pruner``."""
    modifier, pruner_args = PRUNERS[pruner]
    return GMP.format(modifier=modifier, pruner_args=pruner_args, **fields)


def record(name: str, entry: dict) -> None:
    from engine_bench import machine

    RESULTS.parent.mkdir(exist_ok=True)
    rows = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    rows[name] = {**entry, "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "machine": machine()}
    RESULTS.write_text(json.dumps(rows, indent=1))


def upstream(name: str, glue_dir: str, out: Path) -> dict:
    """``upstream80``/``upstream90`` (the last layer's token states distilled) and ``upstreamS-VARIANT``
    (:data:`VARIANTS`: ``-layers`` every layer's; ``-short-OBJECTIVE`` the objectives side by side, shorter)."""
    from sparsecore.workflows.upstream import prune_upstream

    sparsity, _, variant = name[len("upstream"):].partition("-")
    objective, layers, pruner = VARIANTS.get(variant, ("distill", "last", "gmp"))
    epochs = SHORT_EPOCHS if variant.startswith("short-") else UPSTREAM_EPOCHS
    recipe = gradual(pruner, epochs=epochs, init_lr="1.0e-4", final_lr="1.0e-6", params=LINEARS,
                     sparsity=int(sparsity) / 100, prune_end=epochs * 2 / 3,
                     update_frequency=epochs / (15 if pruner == "obs" else 30))  # OBS: ten Fisher updates
    folder = out / name
    if folder.exists():  # a rerun rebuilds the backbone (transfer rows recorded from the old one are rerun too)
        shutil.rmtree(folder)
    started = time.time()
    result = prune_upstream(model_name_or_path="minilm", train_file=[str(Path(glue_dir) / f) for f in CORPUS],
                            recipe=recipe, objective=objective, output_dir=folder, distill_layers=layers,
                            max_seq_length=128, per_device_train_batch_size=32, learning_rate=1e-4,
                            logging_steps=100, save_strategy="no", disable_tqdm=True,
                            train_sampling_strategy="group_by_length")
    result_dir = Path(result.output_dir)
    training = json.loads((result_dir / "sparsecore_training.json").read_text())
    return {"objective": result.objective, **({"distill_layers": layers} if "distill" in objective else {}),
            "pruner": pruner,
            "corpus": training["corpus"], "epochs": epochs,
            "loss": result.metrics.get("train_loss"), "wall_time_s": time.time() - started,
            "train_samples_per_second": result.metrics.get("train_samples_per_second"),
            "encoder_sparsity": result.sparsity["total"]["sparsity"]}


def zero_shot(name: str, glue_dir: str, out: Path) -> dict:
    """``zeroshot-BACKBONE``: the backbone as a sentence encoder with no training — STS-B validation pairs encoded one
    sentence at a time, the Pearson correlation of the cosine of their mean-pooled last hidden states (real tokens)
    with the gold scores: what a backbone keeps of the dense model's sentence embeddings, before any fine-tuning."""
    import csv

    import numpy as np
    import torch
    from transformers import AutoModel, AutoTokenizer

    from sparsecore.adapters.models import minilm_path

    backbone = name[len("zeroshot-"):]
    path = minilm_path() if backbone == "dense" else out / backbone
    if not Path(path).is_dir():
        raise SystemExit(f"{path} is missing: run --run {backbone} first")
    with open(Path(glue_dir) / "stsb" / "validation.tsv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()

    def embed(texts: list[str]) -> np.ndarray:
        parts = []
        with torch.no_grad():
            for i in range(0, len(texts), 64):
                batch = tokenizer(texts[i:i + 64], padding=True, truncation=True, max_length=128, return_tensors="pt")
                mask = batch["attention_mask"].unsqueeze(-1).float()
                parts.append(((model(**batch).last_hidden_state * mask).sum(1) / mask.sum(1)).numpy())
        e = np.concatenate(parts)
        return e / np.linalg.norm(e, axis=1, keepdims=True)

    started = time.time()
    cosine = (embed([r["sentence1"] for r in rows]) * embed([r["sentence2"] for r in rows])).sum(1)
    gold = np.array([float(r["label"]) for r in rows])
    report = Path(path) / "sparsity_report.json"
    sparsity = json.loads(report.read_text())["total"]["sparsity"] if report.is_file() else 0.0
    return {"task": "stsb", "metric": "pearson", "backbone": backbone, "pairs": len(rows),
            "score": float(np.corrcoef(cosine, gold)[0, 1]), "encoder_sparsity": sparsity,
            "wall_time_s": time.time() - started}


def schedule_suffix(epochs: float | None, lr: float | None) -> str:
    """The run-name suffix of a schedule other than the task's own ('' for the task's own)."""
    return f"@e{epochs:g}-lr{lr:g}" if epochs is not None else ""


def fine_tune(name: str, glue_dir: str, out: Path, epochs: float | None = None, lr: float | None = None) -> dict:
    """``dense-TASK``, ``transferS-TASK``, ``transfer-quantS-TASK`` or ``downstreamS-TASK`` (GMP on the task itself,
    from the dense fine-tuned model of the same schedule, no teacher: the downstream side of the comparison).
    ``epochs``/``lr`` replace the task's schedule; the run is then named with :func:`schedule_suffix`."""
    from sparsecore.workflows import train

    kind, task = name.rsplit("-", 1)
    backbone_trained = None
    kind, siamese, _ = kind.partition("-siamese")  # KIND-siamese-TASK: each text of a pair encoded alone
    encoding = "-siamese" if siamese else ""
    metric, task_epochs, task_lr = TASKS[task]
    suffix = schedule_suffix(epochs, lr)
    epochs, lr = (epochs, lr) if epochs is not None else (task_epochs, task_lr)
    recipe_args = f"num_epochs={epochs},init_lr={lr}"
    if kind == "dense":
        start, recipe = "minilm", "dense-finetune"
    elif kind.startswith("downstream"):
        start, recipe_args = str(out / f"dense{encoding}-{task}{suffix}"), None
        recipe = gradual(epochs=epochs, init_lr=lr, final_lr=0.0, params=LINEARS,
                         sparsity=int(kind[len("downstream"):]) / 100, prune_end=epochs * 2 / 3, update_frequency=0.1)
        if not Path(start).is_dir():
            raise SystemExit(f"{start} is missing: run --run dense{encoding}-{task} (with the same --epochs/--lr) "
                             "first")
    else:
        recipe, sparsity = ("transfer-quant", kind[len("transfer-quant"):]) if kind.startswith("transfer-quant") \
            else ("transfer", kind[len("transfer"):])
        start = str(out / f"upstream{sparsity}")
        if not Path(start).is_dir():
            raise SystemExit(f"{start} is missing: run --run upstream{sparsity} first")
        upstream_entry = json.loads(RESULTS.read_text()).get(f"upstream{sparsity}", {}) if RESULTS.exists() else {}
        backbone_trained = upstream_entry.get("date")  # which run of the backbone this transfer started from
    if recipe == "transfer-quant":  # quantize over the last third, observers frozen for the last sixth
        recipe_args += f",quantization_start_epoch={epochs * 2 / 3:g},observer_freeze_epoch={epochs * 5 / 6:g}"
    flags = {**COMMON, "task_name": task, "glue_dir": glue_dir, "output_dir": str(out / (name + suffix)),
             "model_name_or_path": start, "recipe": recipe, "recipe_args": recipe_args,
             **({"pair_encoding": "siamese"} if siamese else {})}
    started = time.time()
    result = train(**flags)
    state = json.loads((out / (name + suffix) / "trainer_state.json").read_text())
    speed = next(e for e in reversed(state["log_history"]) if "train_samples_per_second" in e)
    return {"task": task, "metric": metric, "score": result.metrics[f"eval_{metric}"],
            "metrics": {k: v for k, v in result.metrics.items() if k.startswith("eval_")},
            "encoder_sparsity": result.metrics.get("encoder_sparsity"), "wall_time_s": time.time() - started,
            "train_samples_per_second": speed["train_samples_per_second"],
            "epochs": epochs, "learning_rate": lr, **({"backbone_trained": backbone_trained} if backbone_trained else {}),
            "flags": {k: v for k, v in flags.items() if k not in ("glue_dir", "output_dir")}}


def runs() -> list[str]:
    backbones = ["upstream80", "upstream90", *(f"upstream80-{v}" for v in VARIANTS if v != "obs"), "upstream90-layers",
                 "upstream90-obs"]
    names = [*backbones, "zeroshot-dense", *(f"zeroshot-{b}" for b in backbones)]
    short = [f"transfer80-{v}" for v in VARIANTS if v.startswith("short-")]
    for task in TASKS:
        names += [f"dense-{task}", f"downstream80-{task}", f"transfer80-{task}", f"transfer90-{task}",
                  f"transfer-quant80-{task}",
                  f"transfer80-layers-{task}", f"transfer90-layers-{task}", f"transfer90-obs-{task}",
                  *(f"{k}-{task}" for k in short)]
        if task in PAIR_TASKS:
            names += [f"{kind}-siamese-{task}" for kind in ("dense", "downstream80", "transfer80", "transfer90",
                                                            "transfer90-obs", "transfer-quant80", *short)]
    return names


def plot(data: dict, path: Path) -> bool:
    """Bars per task: dense fine-tuning and each transfer run, on the task's own metric (False: no task run yet,
    nothing drawn)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [("dense", "dense fine-tuning", "#8a8a8a"), ("downstream80", "GMP 80% on the task", "#a05fb3"),
             ("transfer80", "transfer, upstream 80%", "#3b7dd8"),
             ("transfer90", "transfer, upstream 90%", "#1f4f99"),
             ("transfer90-obs", "transfer, upstream 90% (OBS)", "#0b2a5c"),
             ("transfer80-layers", "transfer, upstream 80% (every layer distilled)", "#5fb3a1"),
             ("transfer-quant80", "transfer-quant, 80%", "#d88a3b"),
             ("dense-siamese", "dense fine-tuning, siamese", "#c4c4c4"),
             ("transfer80-siamese", "transfer, upstream 80%, siamese", "#7fb0f0"),
             ("transfer90-siamese", "transfer, upstream 90%, siamese", "#4f7fc9"),
             ("transfer90-obs-siamese", "transfer, upstream 90% (OBS), siamese", "#2d5aa0"),
             ("transfer-quant80-siamese", "transfer-quant, 80%, siamese", "#f0b27a")]
    tasks = [t for t in TASKS if any(f"{k}-{t}" in data for k, _, _ in kinds)]
    if not tasks:
        return False
    kinds = [k for k in kinds if any(f"{k[0]}-{t}" in data for t in tasks)]
    fig, ax = plt.subplots(figsize=(8.5, 4.2))
    width = 0.8 / len(kinds)
    for i, (kind, label, color) in enumerate(kinds):
        xs = [j + (i - (len(kinds) - 1) / 2) * width for j, t in enumerate(tasks) if f"{kind}-{t}" in data]
        ys = [100 * data[f"{kind}-{t}"]["score"] for t in tasks if f"{kind}-{t}" in data]
        if xs:
            bars = ax.bar(xs, ys, width, label=label, color=color)
            ax.bar_label(bars, fmt="%.1f", fontsize=6)
    ax.set_xticks(range(len(tasks)), [f"{t.upper()} ({TASKS[t][0]})" for t in tasks])
    ax.set_xlim(-0.5, len(tasks) - 0.5)
    ax.set_ylabel("validation score × 100")
    ax.set_ylim(0, 100)
    ax.set_title("MiniLM-L6: sparse transfer from upstream backbones vs dense fine-tuning")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", choices=runs())
    parser.add_argument("--table", action="store_true")
    parser.add_argument("--glue_dir", default=os.environ.get("SPARSECORE_GLUE_DIR", "../shared/data/glue"))
    parser.add_argument("--out", default="runs/sparse-transfer")
    parser.add_argument("--epochs", type=float, help="fine-tuning runs: epochs in place of the task's own (with --lr)")
    parser.add_argument("--lr", type=float, help="fine-tuning runs: initial learning rate in place of the task's own")
    args = parser.parse_args(argv)
    if (args.epochs is None) != (args.lr is None) or (args.epochs is not None and
                                                      (not args.run or args.run.startswith(("upstream", "zeroshot")))):
        parser.error("--epochs and --lr go together, with a fine-tuning --run (not an upstream one)")
    out = Path(args.out)
    if args.run:
        entry = upstream(args.run, args.glue_dir, out) if args.run.startswith("upstream") \
            else zero_shot(args.run, args.glue_dir, out) if args.run.startswith("zeroshot") \
            else fine_tune(args.run, args.glue_dir, out, args.epochs, args.lr)
        entry["command"] = " ".join(["python", *sys.argv])
        record(args.run + schedule_suffix(args.epochs, args.lr), entry)
        print(json.dumps(entry, indent=1))
    if args.table:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs" / "hooks"))
        from results_tables import (
            sparse_transfer,
            sparse_transfer_objectives,
            sparse_transfer_upstream,
            sparse_transfer_zero_shot,
        )

        if not RESULTS.is_file():
            raise SystemExit(f"{RESULTS} does not exist yet: run a --run first")
        data = json.loads(RESULTS.read_text())
        print("\n\n".join(table(data) for table in (sparse_transfer_upstream, sparse_transfer_zero_shot, sparse_transfer,
                                                      sparse_transfer_objectives)))
        if plot(data, PICTURE):
            print(f"\nwrote {PICTURE}")


if __name__ == "__main__":
    main()
