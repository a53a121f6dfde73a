"""``sparsecore.transformers.masked_language_modeling``: prune a backbone upstream, on unlabeled text.

    python -m sparsecore.transformers.masked_language_modeling --model_name_or_path minilm \
        --train_file corpus.txt [--train_file more.parquet --text_column sentence] --recipe RECIPE \
        [--recipe_args k=v,...] [--objective auto|mlm|distill|mlm+distill] [--distill_layers last|all] \
        --output_dir out/backbone-80

Writes a backbone folder (no task head) to fine-tune with ``--recipe transfer``; see
:mod:`sparsecore.workflows.upstream` for the objectives and what the folder holds. Prints the training metrics
as JSON. Runs under ``torchrun`` like the other training commands; ``--resume_from_checkpoint`` continues a run.
"""

from __future__ import annotations

import json
import logging
import sys

from sparsecore import distributed
from sparsecore.cli.parser import OneLineArgumentParser, user_errors


def main(argv: list[str] | None = None) -> None:
    from sparsecore.workflows.upstream import (
        DISTILL_LAYERS,
        LABEL_NAMES,
        MAX_CLASSES,
        OBJECTIVES,
        PAIRS,
        prune_upstream,
    )

    p = OneLineArgumentParser(prog="sparsecore.transformers.masked_language_modeling", description=__doc__)
    p.add_argument("--model_name_or_path", default="minilm")
    p.add_argument("--train_file", action="append", default=[], help="a text source (repeat for several)")
    p.add_argument("--text_column", action="append", default=None, help="text column(s) of table files (default: "
                   f"every string column except labels: columns named {'/'.join(sorted(LABEL_NAMES))} or holding at "
                   f"most {MAX_CLASSES} distinct values over 10× as many rows)")
    p.add_argument("--pairs", default="rows", choices=PAIRS,
                   help="rows (default): a table row read from exactly two text columns is one sentence pair, as pair "
                        "tasks feed it; none: every cell a text of its own")
    p.add_argument("--recipe", default=None)
    p.add_argument("--recipe_args", default=None)
    p.add_argument("--objective", default="auto", choices=OBJECTIVES)
    p.add_argument("--distill_layers", default="last", choices=DISTILL_LAYERS,
                   help="distill objectives: match the last layer's token states (default) or every layer's")
    p.add_argument("--output_dir", required=True)
    p.add_argument("--max_seq_length", type=int, default=128)
    p.add_argument("--mlm_probability", type=float, default=0.15)
    p.add_argument("--max_train_samples", type=int, default=None)
    p.add_argument("--per_device_train_batch_size", type=int, default=16)
    p.add_argument("--learning_rate", type=float, default=5e-5)
    p.add_argument("--num_train_epochs", type=float, default=None, help="without a recipe (a recipe sets its own)")
    p.add_argument("--logging_steps", type=int, default=50)
    p.add_argument("--save_strategy", default="epoch", choices=["no", "epoch", "steps"])
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--resume_from_checkpoint", default=None)
    p.add_argument("--disable_tqdm", action="store_true")
    args = vars(p.parse_args(argv))
    logging.getLogger("sparsecore").setLevel(logging.INFO)
    if args["num_train_epochs"] is None:
        args.pop("num_train_epochs")
    with user_errors():
        result = prune_upstream(**args)
    if distributed.is_main():
        print(json.dumps({**result.metrics, "objective": result.objective,
                          "encoder_sparsity": result.sparsity.get("total", {}).get("sparsity")}, indent=1))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
