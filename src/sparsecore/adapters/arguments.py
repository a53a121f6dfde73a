"""The arguments of the workflows, named exactly like the CLI flags (SparseML seed + HF ``run_glue``).

:func:`sparsecore.transformers.train` / ``oneshot`` take :class:`ModelArguments`, :class:`DataTrainingArguments`
and every ``transformers.TrainingArguments`` field as keyword arguments; ``export`` takes
:class:`ExportArguments`. The CLIs parse the same dataclasses from argv, so a flag and a keyword are one thing.
"""

from __future__ import annotations

import functools
import json
import os
import types
import typing
from dataclasses import MISSING, dataclass, field, fields

import torch
from transformers import TrainingArguments

from sparsecore.deploy.pipeline import TASKS
from sparsecore.errors import SparsecoreError
from sparsecore.tasks import GLUE_TASKS

DEFAULT_MODEL = "minilm"


@dataclass
class ModelArguments:
    model_name_or_path: str = field(default=DEFAULT_MODEL, metadata={
        "help": "Local model folder, the built-in alias 'minilm' (all-MiniLM-L6-v2, bundled), or a hub id "
                "(online only), or a zoo: stub found in the local SparseZoo cache ($SPARSEZOO_MODELS_PATH)."})
    distill_teacher: str = field(default="disable", metadata={
        "help": "Teacher for distillation: a local model folder trained on the task, 'self' (a frozen copy of the "
                "starting model), or 'disable'."})
    pair_encoding: str | None = field(default=None, metadata={
        "choices": ["cross", "siamese"],
        "help": "Text pairs: 'cross' reads a pair as one sequence (default); 'siamese' encodes each text alone and "
                "classifies from the two mean-pooled embeddings (a bi-encoder; the default for a folder saved as one)."})
    tokenizer_name: str | None = field(default=None, metadata={"help": "Tokenizer folder if not the model's."})
    cache_dir: str | None = field(default=None, metadata={
        "help": "Where hub downloads, converted data tables and tokenized features are cached "
                "(default: the datasets cache, $HF_DATASETS_CACHE)."})


@dataclass
class DataTrainingArguments:
    recipe: str | None = field(default=None, metadata={
        "help": "Recipe: a .yaml/.md file, inline YAML, a built-in name (minilm-gmp80-demo, dense-finetune, "
                "bert-pruned90-mnli, ...) or a SparseML zoo: recipe stub that has a built-in equivalent."})
    recipe_args: str | None = field(default=None, metadata={
        "help": "Override recipe variables: JSON object or k=v,k=v."})
    task_name: str | None = field(default=None, metadata={
        "help": f"GLUE task: {', '.join(GLUE_TASKS)}. Without a GLUE folder, sst2 uses the bundled sample."})
    glue_dir: str | None = field(default=None, metadata={
        "help": "Folder laid out like GLUE (<task>/train.tsv, validation.tsv). Default: $SPARSECORE_GLUE_DIR."})
    dataset_name: str | None = field(default=None, metadata={
        "help": "A whole dataset through `datasets`: a folder written by save_to_disk, a folder of data files, or "
                "a hub id (online, or from the cache offline)."})
    dataset_config_name: str | None = field(default=None, metadata={"help": "The configuration of --dataset_name."})
    train_file: str | None = field(default=None, metadata={
        "help": "Training data: csv, tsv, json, jsonl, parquet, arrow, or a folder written by save_to_disk."})
    validation_file: str | None = field(default=None, metadata={"help": "Validation data (formats as --train_file)."})
    test_file: str | None = field(default=None, metadata={"help": "Test data to predict (labels optional)."})
    validation_ratio: float | None = field(default=None, metadata={
        "help": "Hold out this fraction of train as the validation split (stratified by class, fixed seed 42)."})
    eval_on_test: bool = field(default=False, metadata={
        "help": "Evaluate on the (labeled) test split instead of the validation split."})
    overwrite_cache: bool = field(default=False, metadata={
        "help": "Convert and tokenize the data again instead of reading the cache."})
    preprocessing_num_workers: int | None = field(default=None, metadata={
        "help": "Processes that tokenize (default: one)."})
    input_column_names: str | None = field(default=None, metadata={
        "help": "Comma-separated text column(s) of custom files (one or two)."})
    label_column_name: str = field(default="label", metadata={"help": "Label column of custom files."})
    max_seq_length: int = field(default=128, metadata={"help": "Tokens per example after truncation."})
    pad_to_max_length: bool = field(default=True, metadata={
        "help": "Pad every example to max_seq_length; false pads each batch to its longest example (faster on CPU)."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Truncate the training set."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Truncate each evaluation set."})
    max_predict_samples: int | None = field(default=None, metadata={"help": "Truncate the test set."})
    one_shot: bool = field(default=False, metadata={
        "help": "Apply the recipe's final state at once (no training), then evaluate and save."})
    overwrite_output_dir: bool = field(default=False, metadata={
        "help": "Allow writing into a non-empty output_dir."})


@dataclass
class ExportArguments:
    model_path: str = field(metadata={"help": "folder written by text_classification (config.json + weights)"})
    task: str = field(default="text-classification", metadata={"help": f"one of {', '.join(TASKS)}"})
    sequence_length: int | None = field(default=None, metadata={
        "help": "tokens per input for validation and samples (default: the max_seq_length the model was trained "
                "with); the graph itself accepts any length"})
    onnx_file_name: str = field(default="model.onnx", metadata={"help": "file name of the graph in deployment/"})
    opset: int = field(default=14, metadata={"help": "ONNX opset (DeepSparse 1.8 reads 11-17; default 14)"})
    num_export_samples: int = field(default=0, metadata={"help": "sample inputs/outputs to write (.npz)"})
    num_validation_rows: int = field(default=256, metadata={
        "help": "quantized models only: bundled SST-2 validation sentences (16-872) the export runs through ONNX "
                "Runtime and the fake-quant PyTorch model, in lockstep and free-running, before it writes the folder"})
    output_dir: str | None = field(default=None, metadata={
        "help": "the deployment folder to write (default: <model_path>/deployment): use it when the model folder "
                "is read-only; an existing one must be empty or an earlier export, which it replaces"})
    quantized_format: str = field(default="integer", metadata={
        "choices": ["integer", "qdq"],
        "help": "quantized models only: 'integer' (MatMulInteger + int8 tables: what DeepSparse and ONNX Runtime run "
                "as int8; default) or 'qdq' (QuantizeLinear/DequantizeLinear around float ops)"})


@dataclass
class SensitivityArguments:
    model_path: str = field(metadata={"help": "a trained classifier folder (e.g. written by text_classification)"})
    task_name: str | None = field(default=None, metadata={
        "help": "GLUE task of the validation rows (default: the task the folder was trained on)"})
    glue_dir: str | None = field(default=None, metadata={
        "help": "folder of GLUE tasks (default: $SPARSECORE_GLUE_DIR, else the bundled SST-2 sample)"})
    sparsities: str = field(default="0.5,0.7,0.8,0.9,0.95", metadata={"help": "comma-separated sparsity grid"})
    methods: str = field(default="magnitude,obs", metadata={"help": "comma-separated: magnitude, obs"})
    num_rows: int = field(default=256, metadata={"help": "validation rows each measurement evaluates"})
    num_grads: int = field(default=32, metadata={"help": "OBS: gradients (training batches) per Fisher estimate"})
    grad_batch_size: int = field(default=8, metadata={"help": "OBS: rows per gradient"})
    fisher_block_size: int = field(default=50, metadata={"help": "OBS: block size B of the block-diagonal F⁻¹"})
    batch_size: int = field(default=32, metadata={"help": "evaluation batch size"})
    max_seq_length: int | None = field(default=None, metadata={
        "help": "tokens per row (default: the max_seq_length the model was trained with, else 128)"})
    target_sparsity: float | None = field(default=None, metadata={
        "help": "also write recipe.yaml: per-layer sparsities at this overall target (SparseML's final_sparsity map)"})
    allocation_spread: float = field(default=0.15, metadata={
        "help": "with --target_sparsity: each layer's sparsity stays within target ± this"})
    search_rounds: int = field(default=0, metadata={
        "help": "with --target_sparsity: rounds of joint search (sparsity moved between layer pairs, a move kept "
                "when the loss with all layers pruned together drops on --search_rows training rows); 0: curves only"})
    search_rows: int = field(default=512, metadata={"help": "training rows the joint search evaluates"})
    output_dir: str | None = field(default=None, metadata={
        "help": "where to write (default: <model_path>/sensitivity)"})
    overwrite_output_dir: bool = field(default=False, metadata={"help": "replace an existing output_dir"})
    seed: int = field(default=42, metadata={"help": "order of the OBS gradient batches"})


DEFAULT_OUTPUT_DIR = "out/text_classification"


def cpu_ranks() -> bool:
    """Launched by torchrun (``WORLD_SIZE`` > 1) on a machine without CUDA. The Trainer runs DDP on CPU (gloo)
    only with ``use_cpu``; without it every rank would train alone on all the data, so it becomes the default."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()


def training_arguments(call: str, flags: dict) -> tuple[ModelArguments, DataTrainingArguments, TrainingArguments]:
    """Keyword arguments of ``train``/``oneshot`` → the three argument dataclasses (type-checked, one-line errors)."""
    flags = {"output_dir": DEFAULT_OUTPUT_DIR, **flags}
    if isinstance(flags.get("recipe_args"), dict):  # the CLI's JSON form, as a dict
        flags["recipe_args"] = json.dumps(flags["recipe_args"])
    groups = (ModelArguments, DataTrainingArguments, TrainingArguments)
    names = [{f.name: f for f in fields(cls) if f.init} for cls in groups]
    unknown = sorted(set(flags) - set().union(*names))
    if unknown:
        raise SparsecoreError(f"unknown argument {unknown[0]!r}", f"{call}()",
                              "use the CLI's flag names (python -m sparsecore.transformers.text_classification --help)")
    model, data, rest = ({k: _typed(call, cls, k, v) for k, v in flags.items() if k in fs}
                         for cls, fs in zip(groups, names))
    if cpu_ranks():
        rest.setdefault("use_cpu", True)
    try:
        return ModelArguments(**model), DataTrainingArguments(**data), TrainingArguments(**rest)
    except (ValueError, TypeError) as exc:  # TrainingArguments.__post_init__ rejects some combinations
        raise SparsecoreError(str(exc).splitlines()[0], f"{call}()", "fix the argument values") from None


def export_arguments(flags: dict) -> ExportArguments:
    values = call_arguments(ExportArguments, "export", flags, "sparsecore.transformers.export_onnx")
    choices = ("integer", "qdq")
    if values.quantized_format not in choices:
        raise SparsecoreError(f"quantized_format={values.quantized_format!r}", "export()",
                              f"use one of: {', '.join(choices)}")
    return values


def call_arguments(cls: type, call: str, flags: dict, cli: str):
    """Keyword arguments of a Python call → ``cls`` (a flags dataclass): unknown, missing and mistyped
    arguments are one-line errors naming the CLI whose flags they mirror."""
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(flags) - set(known))
    if unknown:
        raise SparsecoreError(f"unknown argument {unknown[0]!r}", f"{call}()",
                              f"use the CLI's flag names (python -m {cli} --help)")
    missing = [n for n, f in known.items() if f.default is MISSING and n not in flags]
    if missing:
        raise SparsecoreError(f"{call}() needs {missing[0]}=", f"{call}()", f"pass the trained folder as {missing[0]}=")
    return cls(**{k: _typed(call, cls, k, v) for k, v in flags.items()})


def _typed(call: str, cls: type, name: str, value):
    """``value`` if it has the field's declared type (ints for floats; paths for str), else a one-line error.

    Fields whose type is not a plain int/float/bool/str (optionally ``| None``) pass through unchecked:
    ``TrainingArguments`` validates those itself."""
    allowed = _simple_types(cls, name)
    if allowed is None or (value is None and type(None) in allowed):
        return value
    for kind in allowed:
        if kind is bool and isinstance(value, bool):
            return value
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if kind is str and isinstance(value, (str, os.PathLike)):
            return str(value)
    names = " or ".join("None" if k is type(None) else k.__name__ for k in allowed)
    raise SparsecoreError(f"{name}={value!r} is not {names}", f"{call}()", f"pass {name} as {names}")


def _simple_types(cls: type, name: str) -> tuple | None:
    """The types a field of ``cls`` allows when they are all plain (int/float/bool/str/None), else None."""
    hint = _hints(cls).get(name)
    if hint is None:
        return None
    allowed = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    return allowed if set(allowed) <= {int, float, bool, str, type(None)} else None


@functools.cache
def _hints(cls) -> dict:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # a field annotation this Python cannot resolve: leave that class unchecked
        return {}
