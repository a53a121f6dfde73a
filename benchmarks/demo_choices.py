"""The demo's pruning stage under other choices, each from the same dense demo model, side by side.

    python benchmarks/demo_choices.py --dense out/demo/dense --run gmp80_lr2e-4,obs80   # named choices
    python benchmarks/demo_choices.py --dense out/demo/dense --run obs80 --seeds 1,2    # more seeds of one
    python benchmarks/demo_choices.py --table                                           # print a summary

``--dense`` is the dense model of a ``sparsecore-demo`` run with the same training rows (its teacher and
start; trained here first, with the first seed, when the folder is missing). Every choice is one of the demo's
built-in recipes (``minilm-gmp80-demo``, ``minilm-obs80-demo``) with its variables set, trained on the
bundled SST-2 sample with the demo's flags (``sparsecore.cli.demo.common_flags``: batches of 16 grouped by length)
and is evaluated on all 872 validation sentences. Results accumulate in
``benchmarks/results/demo_choices.json`` (one entry per choice and seed) with their wall time (the pruning
stage alone; the demo adds the dense stage, ~45 s, and the engine timing, ~25 s). ``--seeds`` varies the
pruning stage's data order and gradient draws from the same dense model: on 2,000 sentences those alone move
a result by about a point, so the table gives each choice's mean and every seed's result.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from sparsecore.cli.demo import common_flags

RESULTS = Path(__file__).with_name("results") / "demo_choices.json"
RECIPES = {"gmp": "minilm-gmp80-demo", "obs": "minilm-obs80-demo"}  # built-ins; a choice sets their variables
DEFAULTS = dict(method="gmp", sparsity=0.8, epochs=2, end=1.5, freq=0.25, lr="1.0e-4", hardness=0.5, temp=2.0,
                grads=32, batch=16, block=50, teacher=True)
CHOICES = {  # name → what differs from DEFAULTS (GMP 80%, 2 epochs, pruning 0–1.5 every 0.25, teacher)
    "gmp80": {},
    "gmp80_lr2e-4": dict(lr="2.0e-4"),
    "gmp80_bs8": dict(batch=8),
    "gmp70": dict(sparsity=0.7),
    "obs80": dict(method="obs"),
    "obs80_lr2e-4": dict(method="obs", lr="2.0e-4"),
    "obs70": dict(method="obs", sparsity=0.7),
    "obs80_hard1": dict(method="obs", hardness=1.0),
    "obs80_f05": dict(method="obs", freq=0.5),
    "obs80_f05_b20": dict(method="obs", freq=0.5, block=20),
    "obs80_b20": dict(method="obs", block=20),
    "obs80_b20_g16": dict(method="obs", block=20, grads=16),
    "obs80_hard1_b20_g16": dict(method="obs", block=20, grads=16, hardness=1.0),
    "obs80_hard1_t5.5_b20_g16": dict(method="obs", block=20, grads=16, hardness=1.0, temp=5.5),  # oBERT's KD
    "obs80_hard025_b20_g16": dict(method="obs", block=20, grads=16, hardness=0.25),
    "obs80_hard0_b20_g16": dict(method="obs", block=20, grads=16, hardness=0.0),  # labels only (the teacher still runs)
    # no distillation at all: hardness 0 and no teacher forward pass (the time buys half an epoch more)
    "obs80_noKD_b20_g16": dict(method="obs", block=20, grads=16, hardness=0.0, teacher=False),
    "obs80_noKD_e2.5_b20_g16": dict(method="obs", block=20, grads=16, hardness=0.0, teacher=False, epochs=2.5,
                                    end=1.875, freq=0.3125),
    "obs80_end1_b20_g16": dict(method="obs", block=20, grads=16, end=1.0),
    "obs80_f0125_b20_g8": dict(method="obs", block=20, grads=8, freq=0.125),  # 12 updates, same gradient count
    "obs80_lr2e-4_b20_g16": dict(method="obs", block=20, grads=16, lr="2.0e-4"),
}


def recipe_args(choice: dict) -> str:
    """The built-in recipe's variables for ``choice`` (what differs from DEFAULTS), as ``k=v,k=v``."""
    c = {**DEFAULTS, **choice}
    args = dict(num_epochs=c["epochs"], pruning_start_epoch=0, pruning_end_epoch=c["end"],
                pruning_update_frequency=c["freq"], init_lr=c["lr"], final_sparsity=c["sparsity"],
                distill_hardness=c["hardness"], distill_temperature=c["temp"])
    if c["method"] == "obs":
        args.update(num_grads=c["grads"], fisher_block_size=c["block"])
    return ",".join(f"{k}={v}" for k, v in args.items())


def run(name: str, dense: Path, out: Path, max_train: int, seed: int) -> dict:
    from sparsecore.workflows import train

    flags = common_flags(max_train, seed)
    if not (dense / "model.safetensors").exists():
        train(model_name_or_path="minilm", recipe="dense-finetune", recipe_args="num_epochs=1,init_lr=1e-4",
              output_dir=dense, **flags)
    choice = {**DEFAULTS, **CHOICES[name]}
    flags["per_device_train_batch_size"] = choice["batch"]
    started = time.time()
    teacher = dense if choice["teacher"] else "disable"
    result = train(model_name_or_path=dense, distill_teacher=teacher, recipe=RECIPES[choice["method"]],
                   recipe_args=recipe_args(CHOICES[name]), output_dir=out / name, disable_tqdm=True, **flags)
    dense_acc = json.loads((dense / "eval_results.json").read_text())["eval_accuracy"]
    return {"accuracy": result.metrics["eval_accuracy"], "dense_accuracy": dense_acc,
            "encoder_sparsity": result.metrics["encoder_sparsity"], "wall_time_s": time.time() - started,
            "choice": choice, "max_train_samples": max_train, "seed": seed,
            "command": "python " + " ".join(sys.argv)}


def table() -> str:
    """One row per choice: mean accuracy over its seeds, each seed's result, mean wall time."""
    by_choice: dict[str, list[dict]] = {}
    for key, r in json.loads(RESULTS.read_text()).items():
        by_choice.setdefault(key.split("@")[0], []).append(r)
    lines = ["| choice | what differs from the default | sparsity | accuracy (mean) | vs dense | seeds: accuracy "
             "| pruning stage |", "|---|---|---|---|---|---|---|"]
    for name, runs in by_choice.items():
        differs = ", ".join(f"{k} {v}" for k, v in CHOICES.get(name, {}).items()) or "the default (GMP)"
        mean = sum(r["accuracy"] for r in runs) / len(runs)
        dense = runs[0]["dense_accuracy"]
        seeds = ", ".join(f"{r['seed']}: {100 * r['accuracy']:.2f}" for r in sorted(runs, key=lambda r: r["seed"]))
        wall = sum(r["wall_time_s"] for r in runs) / len(runs)
        lines.append(f"| {name} | {differs} | {100 * runs[0]['encoder_sparsity']:.1f}% | {100 * mean:.2f}% | "
                     f"{100 * (mean - dense):+.2f} pts | {seeds} | {wall:.0f} s |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help=f"comma-separated choices: {', '.join(CHOICES)}")
    parser.add_argument("--dense", default="out/demo/dense", help="the demo's dense model (trained if missing)")
    parser.add_argument("--out", default="runs/demo-choices", help="where each choice's model goes")
    parser.add_argument("--max_train_samples", type=int, default=2000)
    parser.add_argument("--seeds", default="42", help="comma-separated seeds; each choice runs once per seed")
    parser.add_argument("--table", action="store_true")
    args = parser.parse_args()
    if args.table:
        print(table())
        return
    names = (args.run or "").split(",")
    unknown = [n for n in names if n not in CHOICES]
    if unknown:
        parser.error(f"unknown choice {unknown[0]!r}: use {', '.join(CHOICES)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    for name, seed in ((n, s) for n in names for s in seeds):
        entry = run(name, Path(args.dense), Path(args.out) / f"seed{seed}", args.max_train_samples, seed)
        rows = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        rows[f"{name}@{seed}"] = entry
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(rows, indent=1))
        print(name, seed, {k: entry[k] for k in ("accuracy", "encoder_sparsity", "wall_time_s")}, flush=True)


if __name__ == "__main__":
    main()
