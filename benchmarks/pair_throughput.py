"""Real-pair throughput of a siamese deployment: a task's validation pairs through ``sparsecore.Pipeline`` on each
engine, tokenization included.

    python benchmarks/pair_throughput.py FOLDER [--task TASK] [--glue_dir ../shared/data/glue] [--batch 32]
        [--repeats 3] [--sequence_length 16,32,64,128] [--engines sparsecore,onnxruntime,deepsparse] [--results benchmarks/results/pair_throughput.json]

FOLDER is a siamese trained folder holding ``deployment/`` (``export_onnx`` of a ``--pair_encoding siamese`` run).
Every engine runs in a fresh process — ``deepsparse`` in the DeepSparse 1.8 environment (``python -m
sparsecore.cli.deepsparse_env``) with this checkout's runtime on its path — and takes the pairs ``--batch`` at a
time, as a server would: load, one warm-up pass, then the median of ``--repeats`` timed passes (pairs/s). Labels
(classification) or scores (regression) are compared with ONNX Runtime's. Writes the JSON to --results and prints
a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from sentence_passes import timed_passes

ROOT = Path(__file__).resolve().parents[1]
ENGINES = ("sparsecore", "onnxruntime", "deepsparse")


def one(engine: str, folder: Path, pairs: list[list[str]], batch: int, repeats: int, lengths: list[int] | None) -> dict:
    """This process's run of ``engine`` (the child side): pairs/s and each pair's label or score."""
    from sparsecore import Pipeline

    pipe = Pipeline.create(model_path=folder, engine=engine, batch_size=batch, sequence_length=lengths)
    key = "score" if pipe.deployment.problem_type == "regression" else "label"
    speed, outputs = timed_passes(lambda chunk: [r[key] for r in pipe(chunk)], pairs, batch, repeats)
    return {"pairs_per_s": speed, "outputs": outputs}


def in_subprocess(python: Path, engine: str, folder: Path, pairs_file: Path, args) -> dict:
    env = dict(os.environ, NM_DISABLE_ANALYTICS="1", PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.run([str(python), __file__, str(folder), "--one", engine, str(pairs_file), "--batch",
                           str(args.batch), "--repeats", str(args.repeats),
                           *(["--sequence_length", args.sequence_length] if args.sequence_length else [])],
                          capture_output=True, text=True, check=False, cwd=Path(__file__).parent, env=env)
    if proc.returncode:
        raise RuntimeError(f"{engine} run failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table(data: dict) -> str:
    lines = ["| engine | pairs/s | throughput / DeepSparse's | agreement with ONNX Runtime |", "|---|---:|---:|---:|"]
    ds = data["engines"].get("deepsparse", {}).get("pairs_per_s")
    for engine, r in data["engines"].items():
        ratio = f"{r['pairs_per_s'] / ds:.2f}×" if ds else "–"
        lines.append(f"| {engine} | {r['pairs_per_s']:.1f} | {ratio} | {r.get('agreement_with_onnxruntime', '–')} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--task", help="the GLUE pair task of the validation pairs (default: the folder's own task)")
    ap.add_argument("--glue_dir", type=Path, default=Path(os.environ.get("SPARSECORE_GLUE_DIR", ROOT.parent / "shared"
                                                                        / "data" / "glue")))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--sequence_length", help="comma-separated bucket lengths, e.g. 16,32,64,128 (default: the "
                                              "deployment's length; DeepSparse compiles one engine per bucket)")
    ap.add_argument("--results", type=Path, default=Path(__file__).parent / "results" / "pair_throughput.json")
    ap.add_argument("--one", nargs=2, metavar=("ENGINE", "PAIRS_JSON"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    folder = args.folder.resolve()
    if args.one:
        engine, pairs_file = args.one
        lengths = [int(n) for n in args.sequence_length.split(",")] if args.sequence_length else None
        print(json.dumps(one(engine, folder, json.loads(Path(pairs_file).read_text()), args.batch, args.repeats,
                             lengths)))
        return
    from engine_bench import machine

    from sparsecore.cli.deepsparse_env import DEFAULT, python_of
    from sparsecore.tasks import load_data

    if not (folder / "deployment" / "sparsecore_deployment.json").is_file():
        sys.exit(f"error: {folder} holds no deployment/: run python -m sparsecore.transformers.export_onnx "
                 f"--model_path {folder}")
    training = json.loads((folder / "sparsecore_training.json").read_text())
    if training.get("pair_encoding") != "siamese":
        sys.exit(f"error: {folder} is not a siamese pair classifier (sparsecore_training.json)")
    args.task = args.task or training["task_name"]
    if not (args.glue_dir / args.task).is_dir():
        sys.exit(f"error: no {args.task} folder under {args.glue_dir}; pass --glue_dir or set SPARSECORE_GLUE_DIR")
    pairs = [list(t) for t in load_data(args.task, args.glue_dir).evals["validation"].texts]
    ds_python = Path(os.environ.get("SPARSECORE_DEEPSPARSE_PYTHON", python_of(DEFAULT)))
    results = {}
    with tempfile.TemporaryDirectory(prefix="pairs-") as tmp:
        pairs_file = Path(tmp) / "pairs.json"
        pairs_file.write_text(json.dumps(pairs))
        for engine in args.engines.split(","):
            python = ds_python if engine == "deepsparse" else Path(sys.executable)
            if not python.is_file():
                print(f"{engine}: skipped ({python} not found)", flush=True)
                continue
            results[engine] = in_subprocess(python, engine, folder, pairs_file, args)
            print(f"{engine}: {results[engine]['pairs_per_s']:.1f} pairs/s", flush=True)
    reference = results.get("onnxruntime", {}).get("outputs")
    for r in results.values():
        outputs = r.pop("outputs")
        if reference:
            same = [a == b if isinstance(a, str) else abs(a - b) < 1e-3 for a, b in zip(outputs, reference)]
            r["agreement_with_onnxruntime"] = round(sum(same) / len(same), 4)
    data = {"machine": machine(), "folder": str(args.folder), "task": args.task, "pairs": len(pairs),
            "batch": args.batch, "repeats": args.repeats, "sequence_length": args.sequence_length or "deployment's",
            "pair_encoding": training.get("pair_encoding"),
            "command": "python benchmarks/pair_throughput.py " + " ".join(sys.argv[1:]), "engines": results}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(data, indent=1))
    print(table(data))


if __name__ == "__main__":
    main()
