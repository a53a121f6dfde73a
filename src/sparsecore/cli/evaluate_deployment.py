"""Evaluate an exported model on a GLUE validation split — metrics computed from the ONNX model.

    python -m sparsecore.cli.evaluate_deployment --model_path out/sst2-gmp80/deployment --task_name sst2 \
        --glue_dir ../shared/data/glue

Prints and writes ``eval_onnx_results.json`` into the deployment folder: the same metrics as training's
``eval_results.json``, so you can see that the export lost nothing.
"""

from __future__ import annotations

import json
import sys
import time

from sparsecore.cli.parser import OneLineArgumentParser, user_errors
from sparsecore.deploy import Pipeline
from sparsecore.deploy.engines import ENGINES
from sparsecore.errors import SparsecoreError
from sparsecore.file_checks import check_writable
from sparsecore.tasks import compute_metrics, default_glue_dir, get_task, load_data, metric_names_for, sample_glue_dir

RESULTS = "eval_onnx_results.json"


def evaluate(model_path, task_name: str, glue_dir=None, engine="onnxruntime", batch_size=32,
             sequence_length=None, max_eval_samples=None) -> dict:
    spec = get_task(task_name)
    folder = glue_dir or default_glue_dir() or (sample_glue_dir() if task_name == "sst2" else None)
    if folder is None:
        raise SparsecoreError(f"no data for task {task_name!r}", "--glue_dir", "pass --glue_dir or set SPARSECORE_GLUE_DIR")
    data = load_data(task_name=spec.name, glue_dir=folder)
    sys.stderr.write("".join(f"note: {note}\n" for note in data.notes))
    if max_eval_samples is not None and max_eval_samples < 1:
        raise SparsecoreError(f"--max_eval_samples is {max_eval_samples}", "--max_eval_samples", "use a positive integer")
    pipe = Pipeline.create(model_path=model_path, engine=engine, batch_size=batch_size, sequence_length=sequence_length)
    check_writable(pipe.deployment.folder / RESULTS, str(pipe.deployment.folder),
                   f"make the deployment folder writable ({RESULTS} is written there)")
    trained = [pipe.deployment.id2label[i] for i in sorted(pipe.deployment.id2label)]
    if pipe.deployment.problem_type != data.problem_type or (data.label_names and trained != data.label_names):
        raise SparsecoreError(f"the model's labels {trained} ({pipe.deployment.problem_type}) do not match task "
                              f"{spec.name}'s {data.label_names} ({data.problem_type})", str(model_path),
                              "evaluate on the task the model was trained for")
    metrics, started = {}, time.time()
    for name, split in data.evals.items():
        split = split.head(max_eval_samples)
        n = len(split)
        texts = [t[0] if len(t) == 1 else list(t) for t in split.texts]
        logits = pipe.logits(texts)
        prefix = "eval" if name == "validation" else f"eval_{name}"
        found = compute_metrics(data.problem_type, metric_names_for(spec.name, data.problem_type), logits,
                                split.labels)
        metrics.update({f"{prefix}_{k}": v for k, v in found.items()} | {f"{prefix}_samples": n})
    metrics["eval_runtime_s"] = time.time() - started
    (pipe.deployment.folder / RESULTS).write_text(json.dumps(metrics, indent=1))
    return metrics


def main(argv: list[str] | None = None) -> None:
    p = OneLineArgumentParser(prog="python -m sparsecore.cli.evaluate_deployment", description=__doc__)
    p.add_argument("--model_path", required=True)
    p.add_argument("--task_name", required=True)
    p.add_argument("--glue_dir", default=None)
    p.add_argument("--engine", default="onnxruntime", choices=ENGINES)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--sequence_length", type=int, default=None)
    p.add_argument("--max_eval_samples", type=int, default=None)
    args = p.parse_args(argv)
    with user_errors():
        metrics = evaluate(args.model_path, args.task_name, args.glue_dir, args.engine, args.batch_size,
                           args.sequence_length, args.max_eval_samples)
    print(json.dumps(metrics, indent=1))


if __name__ == "__main__":
    main()
