"""``export``: a trained folder → ``<folder>/deployment/`` or ``output_dir``, as a Python call (the CLI's twin).

    from sparsecore.workflows import export
    result = export(model_path="out/gmp80", num_export_samples=4)
    result.deployment, result.onnx_path, result.report["max_abs_diff"]

Keyword arguments are the flags of ``python -m sparsecore.transformers.export_onnx`` (:class:`ExportArguments`).
Writes model.onnx (dynamic batch and sequence axes), config.json, tokenizer files, recipe.yaml,
validation.json (ONNX checker + ONNX Runtime vs PyTorch on real inputs), ``sparsecore_deployment.json``
(:class:`~sparsecore.folders.DeploymentInfo`) and, with ``num_export_samples=N``, sample-inputs/ and
sample-outputs/ (.npz). The folder appears whole or not at all; a failed validation is an error.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from sparsecore.adapters.arguments import ExportArguments, export_arguments
from sparsecore.deploy.pipeline import TASKS
from sparsecore.errors import SparsecoreError
from sparsecore.file_checks import (
    check_tokenizer_files,
    check_vocabulary,
    check_weights,
    check_writable,
    is_disk_full,
    read_json_object,
    write_refused,
)
from sparsecore.folders import DEPLOYMENT, DeploymentInfo, TrainingInfo

VALIDATION_ROWS = 872  # bundled SST-2 validation sentences: the most --num_validation_rows can take


@dataclass(frozen=True)
class ExportResult:
    """What an ``export`` produced: the deployment folder, its ONNX file and the validation report."""

    deployment: Path  # the deployment folder
    onnx_path: Path
    report: dict  # validation.json: checker, max |Δlogit|, label agreement (quantized), initializer sparsity, ...

    @property
    def quantized(self) -> bool:
        """True when the export is of a quantized model (the report has a ``"quantized"`` entry)."""
        return "quantized" in self.report


def export(**flags) -> ExportResult:
    """Export, validate and write the deployment folder. See the module docstring."""
    return run(export_arguments(flags))


def run(args: ExportArguments) -> ExportResult:
    """:func:`export` on parsed arguments (the CLI's entry); a full disk or a folder that cannot be written is one
    error, the old deployment kept."""
    try:
        return _run(args)
    except Exception as exc:
        target, where = _target(args)
        if is_disk_full(exc):  # atomic_folder already removed the partial temporary folder
            raise SparsecoreError(f"no space left on the disk of {target.parent}", where,
                                  "free some space; the previous deployment (if any) is unchanged") from None
        refused = None if isinstance(exc, SparsecoreError) else write_refused(exc)
        if refused is not None and _writes_target(refused.filename, target):
            raise SparsecoreError(f"{target.parent} is not writable ({refused.strerror})", where,
                                  _elsewhere(args)) from None
        raise


def _target(args: ExportArguments) -> tuple[Path, str]:
    """(the deployment folder to write, the flag that names it)."""
    if args.output_dir:
        return Path(args.output_dir).expanduser(), f"--output_dir {args.output_dir}"
    return Path(args.model_path).expanduser() / DEPLOYMENT, f"--model_path {args.model_path}"


def _elsewhere(args: ExportArguments) -> str:
    if args.output_dir:
        return "choose an --output_dir you can write to; nothing was written"
    return (f"export elsewhere with --output_dir DIR (a new folder you can write to); the existing {DEPLOYMENT}/ "
            "is unchanged")


def _writes_target(filename, target: Path) -> bool:
    """``filename`` (of a refused write) is what writing ``target`` touches: the folder, a folder above it, or its
    temporary and parked siblings ``.<name>-*`` (see ``atomic_folder``) and what they hold."""
    if not filename:
        return False
    path, target = Path(os.path.abspath(os.fsdecode(filename))), Path(os.path.abspath(target))
    if path == target or path in target.parents:
        return True
    return any(p.parent == target.parent and (p.name == target.name or p.name.startswith(f".{target.name}-"))
               for p in (path, *path.parents))


def _check_target(args: ExportArguments, model_dir: Path) -> Path:
    """The deployment folder to write, after checking that it can be written and replaced."""
    target, where = _target(args)
    if args.output_dir:
        out, model = target.resolve(), model_dir.resolve()
        if out == model or out in model.parents:
            raise SparsecoreError("--output_dir holds the model folder (the export replaces the whole folder)",
                                  where, f"choose a new folder outside {model_dir}")
        if target.is_dir() and any(target.iterdir()) and not (target / DeploymentInfo.FILE).is_file():
            raise SparsecoreError("--output_dir exists and is not an earlier export (the export replaces the "
                                  "whole folder)", where, "choose a new or empty folder, or an earlier export's")
    check_writable(target.parent, where, _elsewhere(args))
    return target


def _check(args: ExportArguments) -> tuple[Path, Path, int, TrainingInfo | None]:
    model_dir = Path(args.model_path).expanduser()
    if not (model_dir / "config.json").is_file():
        raise SparsecoreError("not a model folder (no config.json)", f"--model_path {args.model_path}",
                              "pass a folder written by sparsecore.transformers.text_classification")
    check_weights(model_dir, f"--model_path {args.model_path}")
    check_tokenizer_files(model_dir, f"--model_path {args.model_path}")
    if args.task not in TASKS:
        raise SparsecoreError(f"unknown task {args.task!r}", "--task", f"use one of: {', '.join(TASKS)}")
    if not args.onnx_file_name.endswith(".onnx") or "/" in args.onnx_file_name:
        raise SparsecoreError(f"--onnx_file_name {args.onnx_file_name!r} is not a file name ending in .onnx",
                              "--onnx_file_name", "e.g. model.onnx")
    if not 11 <= args.opset <= 17:
        raise SparsecoreError(f"--opset {args.opset} is outside 11-17", "--opset", "use 14 (DeepSparse reads 11-17)")
    if args.num_export_samples < 0:
        raise SparsecoreError(f"--num_export_samples is {args.num_export_samples}", "--num_export_samples",
                              "use 0 or more")
    if not 16 <= args.num_validation_rows <= VALIDATION_ROWS:
        raise SparsecoreError(f"--num_validation_rows is {args.num_validation_rows}", "--num_validation_rows",
                              f"use 16 to {VALIDATION_ROWS} (the bundled SST-2 validation sentences)")
    trained = TrainingInfo.read(model_dir)
    length = args.sequence_length
    if length is None:
        length = trained.max_seq_length if trained is not None else 128
    config = read_json_object(model_dir / "config.json", f"--model_path {args.model_path}", "re-save the model")
    limit = config.get("max_position_embeddings", 512)
    if not 1 <= length <= limit:
        raise SparsecoreError(f"--sequence_length {length} is outside 1..{limit}", "--sequence_length",
                              f"use a length the model supports (at most {limit})")
    return model_dir, _check_target(args, model_dir), length, trained


def _run(args: ExportArguments) -> ExportResult:
    from sparsecore.adapters.export import (
        LogitsOnly,
        copy_if_present,
        load_for_export,
        padded_batches,
        sample_cases,
        write_tokenizer_files,
    )
    from sparsecore.adapters.models import family
    from sparsecore.adapters.pair_encoder import is_siamese
    from sparsecore.deploy.model_folder import SIAMESE_INPUTS
    from sparsecore.export import (
        QUANTIZED,
        Tolerance,
        atomic_folder,
        export_onnx,
        initializer_sparsity,
        sparsity_preserved,
        validate_onnx,
    )
    from sparsecore.export.qdq_to_integer import finish_quantized
    from sparsecore.quant.lockstep import in_lockstep
    from sparsecore.selectors import ALL_PRUNABLE, resolve_params

    model_dir, target, length, trained = _check(args)
    steps = tqdm(total=4, desc="export", unit="step", file=sys.stderr)
    model, tokenizer, _, quant = load_for_export(model_dir)
    check_vocabulary(len(tokenizer), getattr(model.config, "vocab_size", None), f"--model_path {args.model_path}")
    siamese = is_siamese(model.config)  # each text of a pair its own inputs (sparsecore.adapters.pair_encoder)
    pairs = siamese or (trained is not None and trained.text_pairs)
    # quantized: --num_validation_rows sentences (256: millions of activation codes checked in lockstep, the
    # free-running label agreement measured to 0.4%), padded per batch of 64
    texts = _validation_texts(pairs=pairs, limit=args.num_validation_rows if quant is not None else 64)
    declared = family(model)
    names = SIAMESE_INPUTS if siamese else declared.onnx_inputs
    axes = {n: {0: "batch", 1: "sequence_b" if n.endswith("_b") else "sequence"} for n in names}
    wrapper = LogitsOnly(model, names).eval()
    cases = sample_cases(tokenizer, texts[:8], tuple(sorted({min(16, length), length})), names)
    if quant is not None:  # label agreement needs rows: every bundled sentence, padded per batch
        cases += padded_batches(tokenizer, texts[8:], length, 64, names)
    steps.update()

    def reference(feeds):
        with torch.no_grad():
            return wrapper(*(torch.from_numpy(feeds[n]) for n in names)).numpy()


    with atomic_folder(target) as tmp:
        onnx_path = tmp / args.onnx_file_name
        sample = {n: torch.from_numpy(v) for n, v in cases[0].items()}
        with quant.exporting() if quant is not None else contextlib.nullcontext():
            onnx_model = export_onnx(wrapper, sample, onnx_path, ("logits",), {**axes, "logits": {0: "batch"}},
                                     opset=args.opset)
        converted = None
        if quant is not None:
            onnx_model, converted = finish_quantized(onnx_path, args.quantized_format)
        steps.update()
        tolerance = QUANTIZED if quant is not None else Tolerance(atol=declared.export_atol)
        lockstep = in_lockstep(reference) if quant is not None else None
        report = validate_onnx(onnx_path, cases, reference, tolerance, lockstep)
        weights = [p.detach().numpy() for _, p in resolve_params(model, (ALL_PRUNABLE,), "export")]
        report["sparsity_preserved"] = sparsity_preserved(weights, onnx_model, quantized=quant is not None)
        if not report["sparsity_preserved"]:
            raise SparsecoreError("pruned zeros did not survive the export", str(onnx_path), "report this as a bug")
        steps.update()
        copy_if_present(model_dir, tmp, ("config.json", "recipe.yaml"))
        write_tokenizer_files(tokenizer, tmp)
        _write_samples(tmp, tokenizer, texts, length, args.num_export_samples, reference, names)
        report.update({"opset": args.opset, "ir_version": onnx_model.ir_version, "sequence_length": length,
                       "onnx_file_name": args.onnx_file_name, "initializers": initializer_sparsity(onnx_model)})
        if quant is not None:
            report["quantized"] = {"format": args.quantized_format, "converted": converted}
        (tmp / "validation.json").write_text(json.dumps(report, indent=1))
        DeploymentInfo(sequence_length=length, onnx_file_name=args.onnx_file_name, text_pairs=pairs,
                       pair_encoding="siamese" if siamese else "cross").write(tmp)
        steps.update()
    steps.close()
    report["deployment"] = str(target)
    return ExportResult(target, target / args.onnx_file_name, report)


def summary(result: ExportResult) -> str:
    """One line on what the validation measured (the CLI prints it)."""
    r = result.report
    if not result.quantized:
        return (f"validation: ONNX checker passed; ONNX Runtime vs PyTorch max |Δlogit| {r['max_abs_diff']:.2e} ≤ "
                f"{r['atol']:.2g} over {len(r['cases'])} batches")
    step, free = r["lockstep"], r["free_running"]
    return (f"validation: ONNX checker passed; ONNX Runtime vs PyTorch fake-quant in lockstep: all "
            f"{step['codes_checked']:,} activation codes are roundings of the model's values (worst "
            f"{step['worst_code_distance']:.1e} step past ½), max |Δlogit| {r['max_abs_diff']:.2e} ≤ {r['atol']:.2g} "
            f"over {len(r['cases'])} batches; free-running: median |Δlogit| {free['median_abs_diff']:.1e}, label "
            f"agreement {free['label_agreement']:.1%} on {free['decisive_rows']} decisive rows "
            f"({free['label_agreement_all_rows']:.1%} on all {free['rows']})")


def _validation_texts(pairs: bool, limit: int | None) -> list[tuple[str, ...]]:
    """Real sentences: the bundled SST-2 validation rows, the first ``limit`` (pairs: consecutive sentences)."""
    from sparsecore.tasks import load_data, sample_glue_dir

    sentences = [t[0] for t in load_data("sst2", sample_glue_dir()).evals["validation"].head(limit).texts]
    if pairs:
        return [(a, b) for a, b in zip(sentences[::2], sentences[1::2])]
    return [(s,) for s in sentences]


def _write_samples(folder: Path, tokenizer, texts, length: int, n: int, reference, names) -> None:
    if n <= 0:
        return
    from sparsecore.adapters.export import sample_cases

    (folder / "sample-inputs").mkdir()
    (folder / "sample-outputs").mkdir()
    for i, text in enumerate(texts[:n]):
        feeds = sample_cases(tokenizer, [text], (length,), names)[0]
        np.savez(folder / "sample-inputs" / f"inp-{i:04d}.npz", **feeds)
        np.savez(folder / "sample-outputs" / f"out-{i:04d}.npz", logits=reference(feeds))
