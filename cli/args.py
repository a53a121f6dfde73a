"""Flags of ``sparsecore.transformers.text_classification`` (SparseML seed + HF run_glue).

Model / data flags are ours; every ``transformers.TrainingArguments`` flag is
accepted as well. Parse errors are one line (``error: ...``) and exit code 2.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser, TrainingArguments

from sparsecore.cli.parser import OneLineErrors
from sparsecore.errors import SparsecoreError
from sparsecore.tasks import GLUE_TASKS

DEFAULT_MODEL = "minilm"


@dataclass
class ModelArguments:
    model_name_or_path: str = field(default=DEFAULT_MODEL, metadata={
        "help": "Local model folder, the built-in alias 'minilm' (all-MiniLM-L6-v2, bundled), or a hub id "
                "(online only). zoo: stubs fail: SparseZoo is gone."})
    distill_teacher: str = field(default="disable", metadata={
        "help": "Teacher for distillation: a local model folder trained on the task, 'self' (a frozen copy of the "
                "starting model), or 'disable'."})
    tokenizer_name: str | None = field(default=None, metadata={"help": "Tokenizer folder if not the model's."})
    cache_dir: str | None = field(default=None, metadata={"help": "Where hub downloads are cached."})


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
    train_file: str | None = field(default=None, metadata={"help": "Training data: csv, tsv, json or jsonl."})
    validation_file: str | None = field(default=None, metadata={"help": "Validation data: csv, tsv, json or jsonl."})
    test_file: str | None = field(default=None, metadata={"help": "Test data to predict (labels optional)."})
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


class OneLineParser(OneLineErrors, HfArgumentParser):
    """HF's dataclass parser with one-line errors."""


def parse(argv: list[str] | None = None) -> tuple[ModelArguments, DataTrainingArguments, TrainingArguments, set[str]]:
    """Parse flags; also return the set of flags the user typed (to spot recipe conflicts)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = OneLineParser((ModelArguments, DataTrainingArguments, TrainingArguments), allow_abbrev=False,
                           prog="python -m sparsecore.transformers.text_classification",
                           description="Sparsify (prune, distil) a BERT-family text classifier with a recipe.")
    if not any(a == "--output_dir" or a.startswith("--output_dir=") for a in argv):
        argv += ["--output_dir", "out/text_classification"]
    try:
        model_args, data_args, training_args, rest = parser.parse_args_into_dataclasses(
            args=argv, return_remaining_strings=True)
    except ValueError as exc:  # TrainingArguments.__post_init__ rejects some combinations
        raise SparsecoreError(str(exc).splitlines()[0], "flags", "fix the flag values (see --help)") from None
    if rest:
        raise SparsecoreError(f"unrecognized arguments: {' '.join(rest)}", "command line",
                              "run with --help to see the flags")
    given = {a[2:].split("=", 1)[0] for a in argv if a.startswith("--")}
    return model_args, data_args, training_args, given
