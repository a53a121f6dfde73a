"""``sensitivity``: how much each layer of a trained classifier can be pruned, as a Python call (the CLI's twin).

    from sparsecore.workflows import sensitivity
    run = sensitivity(model_path="out/dense", num_rows=256, target_sparsity=0.8)
    run.result.increase("obs")["bert.encoder.layer.0.attention.self.query.weight"], run.files["recipe"]

Keyword arguments are the flags of ``python -m sparsecore.cli.sensitivity`` (:class:`SensitivityArguments`).
Each encoder Linear of the model's family is pruned alone (magnitude, OBS) at every grid sparsity and the
first ``num_rows`` validation rows are evaluated (loss and the task's metrics). Writes ``sensitivity.json``,
``sensitivity.png`` (heat map: layer × sparsity, loss increase) and, with ``target_sparsity``, ``recipe.yaml``
(non-uniform per-layer sparsities at that overall target, allocated from the magnitude curves — the recipe
is a GMP recipe — or from the OBS curves when only those were measured; with ``search_rounds`` > 0, searched
with all layers pruned together by :mod:`sparsecore.joint_allocation` on ``search_rows`` training rows). The
folder appears whole or not at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sparsecore.adapters.arguments import SensitivityArguments, call_arguments
from sparsecore.errors import SparsecoreError
from sparsecore.export.deployment import atomic_folder
from sparsecore.file_checks import check_writable
from sparsecore.folders import TrainingInfo
from sparsecore.joint_allocation import search
from sparsecore.report import plot_sensitivity
from sparsecore.selectors import resolve_params
from sparsecore.sensitivity import SensitivityResult, analyze, pruned_to
from sparsecore.tasks import compute_metrics, default_glue_dir, load_data, metric_names_for, sample_glue_dir
from sparsecore.workflows.features import tokenize_split

RESULTS, PICTURE, RECIPE = "sensitivity.json", "sensitivity.png", "recipe.yaml"


@dataclass(frozen=True)
class SensitivityRun:
    """What a ``sensitivity`` run produced: its folder, the curves (:class:`SensitivityResult`) and the files."""

    output_dir: Path
    result: SensitivityResult
    files: dict  # name → path


def sensitivity(**flags) -> SensitivityRun:
    """Measure per-layer pruning sensitivity; see the module docstring."""
    return run(call_arguments(SensitivityArguments, "sensitivity", flags, "sparsecore.cli.sensitivity"))


def run(args: SensitivityArguments) -> SensitivityRun:
    """:func:`sensitivity` on parsed arguments (the CLI's entry): check the arguments, load model and data,
    prune each layer alone at every grid sparsity, optionally search a joint allocation, write the folder."""
    from sparsecore.adapters.models import family, load_classifier, load_tokenizer, resolve_model_path
    from sparsecore.adapters.pair_encoder import is_siamese
    from sparsecore.adapters.trainer import make_grad_sampler, padding_collator, seed_everything

    grid = _floats(args.sparsities, "--sparsities")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for name in ("num_rows", "num_grads", "grad_batch_size", "batch_size", "fisher_block_size", "search_rows"):
        if getattr(args, name) < 1:
            raise SparsecoreError(f"--{name} is {getattr(args, name)}", f"--{name}", "use a positive integer")
    if not 0 <= args.allocation_spread <= 1:
        raise SparsecoreError(f"--allocation_spread is {args.allocation_spread}", "--allocation_spread",
                              "use a value in [0, 1], e.g. 0.15")
    if args.target_sparsity is not None and not 0 < args.target_sparsity <= max(grid, default=0):
        raise SparsecoreError(f"--target_sparsity {args.target_sparsity} is outside (0, {max(grid, default=0):g}]",
                              "--target_sparsity", "use a target up to the largest --sparsities value")
    model_path = Path(resolve_model_path(str(args.model_path), "--model_path"))
    out = Path(args.output_dir) if args.output_dir else model_path / "sensitivity"
    if out.exists() and not args.overwrite_output_dir:
        raise SparsecoreError("output folder exists", str(out), "pass --overwrite_output_dir or another --output_dir")
    check_writable(out.parent, f"--output_dir {out}", "pass --output_dir with a folder you can write to")
    info = TrainingInfo.read(model_path)
    task = args.task_name or (info.task_name if info else None)
    if task is None:
        raise SparsecoreError("no task to evaluate on", "--task_name", "pass --task_name (e.g. sst2)")
    folder = args.glue_dir or default_glue_dir() or (sample_glue_dir() if task == "sst2" else None)
    if folder is None:
        raise SparsecoreError(f"no data for task {task!r}", "--glue_dir", "pass --glue_dir or set SPARSECORE_GLUE_DIR")
    data = load_data(task_name=task, glue_dir=folder)
    seed_everything(args.seed)
    tokenizer = load_tokenizer(str(model_path), None)
    model = load_classifier(str(model_path), data.problem_type, data.label_names, None, flag="--model_path")
    length = args.max_seq_length or (info.max_seq_length if info else 128)
    separate = is_siamese(model.config)  # a siamese pair classifier: each text tokenized alone
    if separate and len(data.text_columns) != 2:
        raise SparsecoreError(f"{model_path} is a siamese pair classifier but task {task!r} has one text column",
                              "--task_name", "pass a pair task (the one it was trained on)")
    rows = tokenize_split(data.evals["validation"], tokenizer, length, False, args.num_rows, separate=separate)
    train = tokenize_split(data.train, tokenizer, length, False, max(args.num_grads * args.grad_batch_size, 1),
                           separate=separate)
    collator = padding_collator(tokenizer, separate)
    evaluate = _evaluator(model, rows, collator, args.batch_size, data.problem_type, metric_names_for(task,
                                                                                                  data.problem_type))
    sampler = make_grad_sampler(model, train, collator, args.grad_batch_size, "cpu", args.seed)
    layers = resolve_params(model, family(model).encoder_linears, "sensitivity")
    result = analyze(model, layers, grid, evaluate, methods, lambda n: sampler(n, None, "OBS gradients"),
                     args.num_grads, fisher_block_size=args.fisher_block_size, rows=len(rows))
    allocation = None
    if args.target_sparsity is not None and args.search_rounds > 0:
        order = np.random.default_rng(args.seed).permutation(len(data.train))[:args.search_rows]
        held = tokenize_split(data.train.select(np.sort(order)), tokenizer, length, False)
        search_eval = _evaluator(model, held, collator, args.batch_size, data.problem_type,
                                 metric_names_for(task, data.problem_type))
        allocation = _search(result, model, layers, args, search_eval, evaluate)
    return SensitivityRun(out, result, _write(result, out, args, model_path, allocation))


def _search(result: SensitivityResult, model, layers, args: SensitivityArguments, search_eval, evaluate) -> dict:
    """The joint search from the better of uniform and the curve allocation; records in ``result.search`` the
    history and, on the validation rows, uniform vs the curve allocation vs the searched one."""
    method = "magnitude" if "magnitude" in result.results else "obs"
    target, spread = args.target_sparsity, args.allocation_spread
    uniform = {n: target for n in result.layers}
    curves = result.allocate(target, method, spread=spread)
    params = dict(layers)

    def at(allocation: dict, fn) -> dict:
        with pruned_to(params, allocation):
            return fn()

    starts = {"uniform": uniform, "curves": curves}
    first = {k: at(v, search_eval)["loss"] for k, v in starts.items()}
    start = min(first, key=first.get)
    allocation, history = search(starts[start], dict(zip(result.layers, result.numels)),
                                 lambda a: at(a, search_eval)["loss"], lambda n, s: result.slope(method, n, s),
                                 args.search_rounds, max(0.0, target - spread), min(1.0, target + spread),
                                 groups=_groups(result.layers))
    result.search = {"rows": args.search_rows, "start": start, "start_losses": first, "history": history,
                     "allocation": allocation,
                     "validation": {k: at(v, evaluate) for k, v in (*starts.items(), ("searched", allocation))}}
    return allocation


def _floats(text: str, flag: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SparsecoreError(f"{flag} {text!r} is not a list of numbers", flag, "e.g. 0.5,0.7,0.9") from None


def _evaluator(model, rows, collator, batch_size: int, problem_type: str, metric_names):
    """``evaluate()`` → {"loss", <metrics>} over ``rows`` (mean loss weighted by batch size)."""

    @torch.no_grad()
    def evaluate() -> dict[str, float]:
        logits, labels, loss = [], [], 0.0
        for start in range(0, len(rows), batch_size):
            batch = collator([rows[i] for i in range(start, min(start + batch_size, len(rows)))])
            out = model(**batch)
            loss += float(out.loss) * len(batch["labels"])
            logits.append(out.logits.float().numpy())
            labels.append(batch["labels"].numpy())
        found = compute_metrics(problem_type, metric_names, np.concatenate(logits), np.concatenate(labels))
        return {"loss": loss / len(rows), **{k: float(v) for k, v in found.items()}}

    return evaluate


def _groups(layers: list[str]) -> list[list[str]]:
    """The layers of each encoder block, and each role (the name after the block number) across all blocks."""
    blocks: dict[str, list[str]] = {}
    roles: dict[str, list[str]] = {}
    for name in layers:
        match = re.search(r"\.(\d+)\.(.+)$", name)
        if match:
            blocks.setdefault(match.group(1), []).append(name)
            roles.setdefault(match.group(2), []).append(name)
    return [g for g in (*blocks.values(), *roles.values()) if len(g) > 1]


def _write(result: SensitivityResult, out: Path, args: SensitivityArguments, model_path: Path,
           allocation: dict | None = None) -> dict:
    """Everything into a temporary sibling, renamed into place at the end (no half-written folder)."""
    files = {"results": out / RESULTS, "picture": out / PICTURE}
    if args.target_sparsity is not None:
        files["recipe"] = out / RECIPE
    with atomic_folder(out) as tmp:
        result.to_json(tmp / RESULTS)
        plot_sensitivity(result, tmp / PICTURE, f"Sensitivity — {model_path.name} ({result.rows} rows)")
        if args.target_sparsity is not None:
            method = "magnitude" if "magnitude" in result.results else "obs"  # the recipe prunes by magnitude
            (tmp / RECIPE).write_text(result.recipe(args.target_sparsity, method, spread=args.allocation_spread,
                                                    allocation=allocation))
    return files
