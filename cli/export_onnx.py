"""``sparsecore.transformers.export_onnx``: a trained folder → ``<folder>/deployment/``.

    python -m sparsecore.transformers.export_onnx --model_path out/sst2-gmp80 --task text-classification

Writes model.onnx (dynamic batch and sequence axes), config.json, tokenizer files, recipe.yaml,
validation.json (checker + ONNX Runtime vs PyTorch on real inputs) and, with
--num_export_samples N, sample-inputs/ and sample-outputs/ (.npz). The folder appears whole or not at all.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from sparsecore.cli.parser import OneLineArgumentParser, user_errors
from sparsecore.deploy.pipeline import TASKS
from sparsecore.errors import SparsecoreError


def parse(argv):
    p = OneLineArgumentParser(prog="python -m sparsecore.transformers.export_onnx", description=__doc__)
    p.add_argument("--model_path", required=True, help="folder written by text_classification (config.json + weights)")
    p.add_argument("--task", default="text-classification", help=f"one of {', '.join(TASKS)}")
    p.add_argument("--sequence_length", type=int, default=None,
                   help="tokens per input for validation and samples (default: the max_seq_length the model was "
                        "trained with); the graph itself accepts any length")
    p.add_argument("--onnx_file_name", default="model.onnx")
    p.add_argument("--opset", type=int, default=14, help="ONNX opset (DeepSparse 1.8 reads 11-17; default 14)")
    p.add_argument("--num_export_samples", type=int, default=0, help="sample inputs/outputs to write (.npz)")
    p.add_argument("--quantized_format", default="integer", choices=("integer", "qdq"),
                   help="quantized models only: 'integer' (MatMulInteger + int8 tables: what DeepSparse and ONNX "
                        "Runtime run as int8; default) or 'qdq' (QuantizeLinear/DequantizeLinear around float ops)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    with user_errors():
        report = run(argv)
    keys = ("deployment", "max_abs_diff", "passed", "sparsity_preserved", "label_agreement", "quantized")
    print(json.dumps({k: report[k] for k in keys if k in report}, indent=1))


def _check(args) -> tuple[Path, int]:
    model_dir = Path(args.model_path).expanduser()
    if not (model_dir / "config.json").is_file():
        raise SparsecoreError("not a model folder (no config.json)", f"--model_path {args.model_path}",
                              "pass a folder written by sparsecore.transformers.text_classification")
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
    trained = {}
    if (model_dir / "sparsecore_training.json").is_file():
        try:
            trained = json.loads((model_dir / "sparsecore_training.json").read_text())
        except json.JSONDecodeError as exc:
            raise SparsecoreError(f"invalid JSON: {exc.msg}", str(model_dir / "sparsecore_training.json"),
                                  "re-run training or pass --sequence_length and delete the file") from None
    length = args.sequence_length if args.sequence_length is not None else trained.get("max_seq_length", 128)
    limit = json.loads((model_dir / "config.json").read_text()).get("max_position_embeddings", 512)
    if not 1 <= length <= limit:
        raise SparsecoreError(f"--sequence_length {length} is outside 1..{limit}", "--sequence_length",
                              f"use a length the model supports (at most {limit})")
    return model_dir, length


def run(argv: list[str] | None = None) -> dict:
    from sparsecore.adapters.bert import BERT
    from sparsecore.adapters.export import (
        LogitsOnly,
        copy_if_present,
        load_for_export,
        padded_batches,
        sample_cases,
        write_tokenizer_files,
    )
    from sparsecore.export import (
        DEPLOYMENT,
        QUANTIZED,
        Tolerance,
        atomic_folder,
        export_onnx,
        initializer_sparsity,
        validate_onnx,
    )
    from sparsecore.selectors import ALL_PRUNABLE, resolve_params

    args = parse(sys.argv[1:] if argv is None else argv)
    model_dir, length = _check(args)
    steps = tqdm(total=4, desc="export", unit="step", file=sys.stderr)
    model, tokenizer, _, quant = load_for_export(model_dir)
    pairs = _is_pair_model(model_dir)
    # quantized: every bundled validation sentence (872), so label agreement is measured to 0.1%
    texts = _validation_texts(model_dir, pairs=pairs, limit=None if quant is not None else 64)
    wrapper = LogitsOnly(model).eval()
    cases = sample_cases(tokenizer, texts[:8], lengths=tuple(sorted({min(16, length), length})))
    if quant is not None:  # label agreement needs rows: every bundled sentence, padded per batch
        cases += padded_batches(tokenizer, texts[8:], length, 64)
    steps.update()

    def reference(feeds):
        with torch.no_grad():
            return wrapper(*(torch.from_numpy(feeds[n]) for n in BERT.onnx_inputs)).numpy()

    with atomic_folder(model_dir / DEPLOYMENT) as tmp:
        onnx_path = tmp / args.onnx_file_name
        sample = {n: torch.from_numpy(v) for n, v in cases[0].items()}
        with quant.exporting() if quant is not None else contextlib.nullcontext():
            onnx_model = export_onnx(wrapper, sample, onnx_path, ("logits",),
                                     {**BERT.dynamic_axes, "logits": {0: "batch"}}, opset=args.opset)
        converted = None
        if quant is not None:
            onnx_model, converted = finish_quantized(onnx_path, args.quantized_format)
        steps.update()
        tolerance = QUANTIZED if quant is not None else Tolerance(atol=BERT.export_atol)
        report = validate_onnx(onnx_path, cases, reference, tolerance)
        prunable = resolve_params(model, (ALL_PRUNABLE,), "export")
        report["sparsity_preserved"] = _same_sparsity(prunable, onnx_model, quantized=quant is not None)
        if not report["sparsity_preserved"]:
            raise SparsecoreError("pruned zeros did not survive the export", str(onnx_path), "report this as a bug")
        steps.update()
        copy_if_present(model_dir, tmp, ("config.json", "recipe.yaml"))
        write_tokenizer_files(tokenizer, tmp)
        _write_samples(tmp, tokenizer, texts, length, args.num_export_samples, reference)
        report.update({"opset": args.opset, "ir_version": onnx_model.ir_version, "sequence_length": length,
                       "onnx_file_name": args.onnx_file_name, "initializers": initializer_sparsity(onnx_model)})
        if quant is not None:
            report["quantized"] = {"format": args.quantized_format, "converted": converted}
        (tmp / "validation.json").write_text(json.dumps(report, indent=1))
        (tmp / "sparsecore_deployment.json").write_text(json.dumps({
            "task": "text-classification", "sequence_length": length, "onnx_file_name": args.onnx_file_name,
            "text_pairs": pairs}, indent=1))
        steps.update()
    steps.close()
    report["deployment"] = str(model_dir / DEPLOYMENT)
    agreement = (f", label agreement {report['label_agreement']:.1%} on {report['decisive_rows']} decisive rows "
                 f"({report['label_agreement_all_rows']:.1%} on all {report['rows']})") if quant else ""
    sys.stderr.write(f"validation: ONNX checker passed; ONNX Runtime vs PyTorch{' fake-quant' if quant else ''} "
                     f"max |Δlogit| {report['max_abs_diff']:.2e} ≤ {report['atol']:.2g} over {len(report['cases'])} "
                     f"batches{agreement}\n")
    return report


def _is_pair_model(model_dir: Path) -> bool:
    path = model_dir / "sparsecore_training.json"
    return path.is_file() and len(json.loads(path.read_text()).get("text_columns", [])) == 2


def _validation_texts(model_dir: Path, pairs: bool, limit: int | None) -> list[tuple[str, ...]]:
    """Real sentences: the bundled SST-2 validation rows, the first ``limit`` (pairs: consecutive sentences)."""
    from sparsecore.tasks import load_data, sample_glue_dir

    sentences = [t[0] for t in load_data("sst2", sample_glue_dir()).evals["validation"].texts[:limit]]
    if pairs:
        return [(a, b) for a, b in zip(sentences[::2], sentences[1::2])]
    return [(s,) for s in sentences]


def _same_sparsity(params, onnx_model, quantized: bool) -> bool:
    """Every torch weight has an initializer with the same values, or their transpose.

    Quantized: an int8 initializer of that shape that is 0 wherever the weight is 0 (small non-zero
    weights may round to 0 as well, so the int8 zeros are a superset).
    """
    from onnx import numpy_helper

    inits = [numpy_helper.to_array(i) for i in onnx_model.graph.initializer if len(i.dims) == 2]

    def same(a, w) -> bool:
        if a.shape != w.shape:
            return False
        if quantized:
            return a.dtype == np.int8 and not np.any(a[w == 0])
        return np.array_equal(a, w)

    return all(any(same(a, w) or same(a, w.T) for a in inits) for w in (p.detach().numpy() for _, p in params))


def finish_quantized(path: Path, form: str):
    """Constants → initializers, then (``integer``) QDQ → integer kernels; saved in place."""
    import onnx

    from sparsecore.export.qdq_to_integer import constants_to_initializers, qdq_to_integer

    model = onnx.load(str(path))
    converted = None
    if form == "integer":
        converted = qdq_to_integer(model)
    else:
        constants_to_initializers(model)
    onnx.save(model, str(path))
    return model, converted


def _write_samples(folder: Path, tokenizer, texts, length: int, n: int, reference) -> None:
    if n <= 0:
        return
    from sparsecore.adapters.export import sample_cases

    (folder / "sample-inputs").mkdir()
    (folder / "sample-outputs").mkdir()
    for i, text in enumerate(texts[:n]):
        feeds = sample_cases(tokenizer, [text], lengths=(length,))[0]
        np.savez(folder / "sample-inputs" / f"inp-{i:04d}.npz", **feeds)
        np.savez(folder / "sample-outputs" / f"out-{i:04d}.npz", logits=reference(feeds))


if __name__ == "__main__":
    main()
