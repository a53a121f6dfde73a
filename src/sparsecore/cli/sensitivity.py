"""``python -m sparsecore.cli.sensitivity``: how much each layer of a trained classifier can be pruned.

    python -m sparsecore.cli.sensitivity --model_path out/dense --num_rows 256 --target_sparsity 0.8

Prunes each encoder Linear alone (magnitude and OBS) over a sparsity grid, evaluates validation rows, and
writes <output_dir>/sensitivity.json, sensitivity.png (heat map) and, with --target_sparsity, recipe.yaml:
non-uniform per-layer sparsities at that overall target, as SparseML's final_sparsity map. Parse →
:func:`sparsecore.workflows.sensitivity.run` (the same call as ``sparsecore.workflows.sensitivity``).
"""

from __future__ import annotations

import json
import sys

from sparsecore.adapters.arguments import SensitivityArguments
from sparsecore.cli.args import parse_one
from sparsecore.cli.parser import user_errors


def main(argv: list[str] | None = None) -> None:
    from sparsecore.workflows.sensitivity import run

    with user_errors():
        done = run(parse_one(SensitivityArguments, "sparsecore.cli.sensitivity", argv, __doc__))
    result = done.result
    worst = {m: max(result.layers, key=lambda n: result.increase(m)[n][-1]) for m in result.results}
    sys.stderr.write("".join(f"{m}: most sensitive at {result.sparsities[-1]:g}: {n}\n" for m, n in worst.items()))
    print(json.dumps({k: str(v) for k, v in done.files.items()}, indent=1))


if __name__ == "__main__":
    main()
