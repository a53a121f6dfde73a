"""``sparsecore.transformers.text_classification``: sparsify a text classifier with a recipe.

    python -m sparsecore.transformers.text_classification \
        --model_name_or_path minilm --task_name sst2 --glue_dir ../shared/data/glue \
        --recipe minilm-gmp80-demo --distill_teacher out/dense --do_train --do_eval --output_dir out/gmp80

Parse → :func:`sparsecore.workflows.training.run` (the same call as ``sparsecore.workflows.train``)
→ print the metrics as JSON. Notes about the run go to stderr before it starts.
"""

from __future__ import annotations

import json
import logging
import sys

from sparsecore import distributed
from sparsecore.cli.args import parse_training
from sparsecore.cli.parser import user_errors


def main(argv: list[str] | None = None) -> None:
    from sparsecore.workflows.training import run

    logging.getLogger("sparsecore").setLevel(logging.INFO)
    with user_errors():
        result = run(*parse_training(argv), on_note=lambda note: sys.stderr.write(f"note: {note}\n"))
    if distributed.is_main():  # under torchrun, one rank reports
        print(json.dumps(result.metrics, indent=1))


if __name__ == "__main__":
    main()
