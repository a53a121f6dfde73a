"""``sparsecore.transformers.export_onnx``: a trained folder → ``<folder>/deployment/`` (or ``--output_dir``).

    python -m sparsecore.transformers.export_onnx --model_path out/sst2-gmp80 --task text-classification
    python -m sparsecore.transformers.export_onnx --model_path /models/read-only --output_dir exports/gmp80

Writes model.onnx (dynamic batch and sequence axes), config.json, tokenizer files, recipe.yaml,
validation.json (checker + ONNX Runtime vs PyTorch on real inputs) and, with
--num_export_samples N, sample-inputs/ and sample-outputs/ (.npz). The folder appears whole or not at all.
Parse → :func:`sparsecore.workflows.exporting.run` (the same call as ``sparsecore.workflows.export``).
"""

from __future__ import annotations

import json
import sys

from sparsecore.cli.args import parse_export
from sparsecore.cli.parser import user_errors

PRINTED = ("deployment", "max_abs_diff", "passed", "sparsity_preserved", "label_agreement", "quantized")


def main(argv: list[str] | None = None) -> None:
    from sparsecore.workflows.exporting import run, summary

    with user_errors():
        result = run(parse_export(argv, description=__doc__))
    sys.stderr.write(summary(result) + "\n")
    print(json.dumps({k: result.report[k] for k in PRINTED if k in result.report}, indent=1))


if __name__ == "__main__":
    main()
