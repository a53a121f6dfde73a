"""argv → the workflow arguments (:mod:`sparsecore.adapters.arguments`), with one-line parse errors."""

from __future__ import annotations

import sys

from transformers import HfArgumentParser, TrainingArguments

from sparsecore.adapters.arguments import (
    DEFAULT_OUTPUT_DIR,
    DataTrainingArguments,
    ExportArguments,
    ModelArguments,
    cpu_ranks,
)
from sparsecore.cli.parser import OneLineErrors
from sparsecore.errors import SparsecoreError


class OneLineParser(OneLineErrors, HfArgumentParser):
    """HF's dataclass parser with one-line errors."""


def parse_training(argv: list[str] | None = None) -> tuple[ModelArguments, DataTrainingArguments, TrainingArguments,
                                                           set[str]]:
    """Parse flags; also return the set of flags the user typed (to spot recipe conflicts)."""
    argv = renamed_flags(sys.argv[1:] if argv is None else list(argv))
    parser = OneLineParser((ModelArguments, DataTrainingArguments, TrainingArguments), allow_abbrev=False,
                           prog="python -m sparsecore.transformers.text_classification",
                           description="Sparsify (prune, distil) a BERT-family text classifier with a recipe.")
    if not any(a == "--output_dir" or a.startswith("--output_dir=") for a in argv):
        argv += ["--output_dir", DEFAULT_OUTPUT_DIR]
    if cpu_ranks() and not any(a == "--use_cpu" or a.startswith("--use_cpu=") for a in argv):
        argv += ["--use_cpu", "true"]  # torchrun on CPU: DDP over gloo
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


TRUE, FALSE = ("true", "1", "yes", "t", "y"), ("false", "0", "no", "f", "n")  # transformers' string_to_bool


def renamed_flags(argv: list[str]) -> list[str]:
    """SparseML-era TrainingArguments flags that transformers 5 renamed → today's names.

    ``--group_by_length [true|false]`` (transformers 4) is ``--train_sampling_strategy group_by_length``."""
    out, i = [], 0
    while i < len(argv):
        flag, _, value = argv[i].partition("=")
        if flag != "--group_by_length":
            out.append(argv[i])
            i += 1
            continue
        if not value and i + 1 < len(argv) and argv[i + 1].lower() in TRUE + FALSE:
            value, i = argv[i + 1], i + 1
        i += 1
        word = (value or "true").lower()  # the bare flag means true
        if word not in TRUE + FALSE:
            raise SparsecoreError(f"--group_by_length takes true or false, not {value!r}", "command line",
                                  "write --group_by_length or --group_by_length false")
        if any(a.split("=", 1)[0] == "--train_sampling_strategy" for a in argv):
            raise SparsecoreError("--group_by_length and --train_sampling_strategy both given", "command line",
                                  "keep one: --group_by_length is the old name of "
                                  "--train_sampling_strategy group_by_length")
        if word in TRUE:
            out += ["--train_sampling_strategy", "group_by_length"]
    return out


def parse_export(argv: list[str] | None = None, description: str = "") -> ExportArguments:
    return parse_one(ExportArguments, "sparsecore.transformers.export_onnx", argv, description)


def parse_one(cls: type, module: str, argv: list[str] | None = None, description: str = ""):
    """argv → one flags dataclass (the parser is generated from its fields)."""
    parser = OneLineParser(cls, allow_abbrev=False, prog=f"python -m {module}", description=description)
    (args,) = parser.parse_args_into_dataclasses(args=sys.argv[1:] if argv is None else list(argv))
    return args
