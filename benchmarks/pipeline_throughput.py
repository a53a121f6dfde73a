"""Real-text throughput: the 872 SST-2 validation sentences through each engine's Pipeline, tokenization included.

    python benchmarks/pipeline_throughput.py [--glue_dir ../shared/data/glue] [--models minilm]
        [--sparsity 0.8] [--structure unstructured] [--precisions fp32,int8] [--batch 32] [--seq 128]
        [--repeats 3] [--root runs/engine-bench] [--results benchmarks/results/pipeline_throughput.json]

Rows per model (one-shot magnitude-pruned and exported as in ``engine_bench.py``, int8 by post-training
quantization of that folder): ``sparsecore.Pipeline`` on our engine and on ONNX Runtime, and DeepSparse's own
``deepsparse.Pipeline`` (in its environment) at its fixed ``--seq`` and with length buckets (16, 32, 64, 128 —
its best setting for short text). Every Pipeline takes the sentences ``--batch`` at a time, as a server
would; each runs in a fresh process: load, one warm-up pass over the data, then the median of ``--repeats``
timed passes (sentences/s). Labels are compared with ONNX Runtime's on the same export (agreement column).
Writes the JSON to --results (the documentation's table is made from it) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from engine_bench import build, machine
from sentence_passes import timed_passes

from sparsecore.cli.deepsparse_env import DEFAULT, python_of

BUCKETS = [16, 32, 64, 128]
ENGINES = ("sparsecore", "onnxruntime", "deepsparse-pipeline", "deepsparse-pipeline-buckets")


def sentences(glue_dir: Path) -> list[str]:
    from sparsecore.tasks import load_data

    return [t[0] for t in load_data("sst2", glue_dir).evals["validation"].texts]


def ours(engine: str, folder: Path, texts: list[str], batch: int, seq: int, repeats: int) -> dict:
    from sparsecore import Pipeline

    pipe = Pipeline.create(model_path=folder, engine=engine, batch_size=batch, sequence_length=seq)
    speed, labels = timed_passes(lambda chunk: [r["label"] for r in pipe(chunk)], texts, batch, repeats)
    return {"sentences_per_s": speed, "labels": labels}


def theirs(python: Path, folder: Path, texts: list[str], batch: int, seq: int, repeats: int, buckets: bool) -> dict:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ds-pipeline-") as tmp:
        data = Path(tmp) / "texts.json"
        data.write_text(json.dumps(texts))
        lengths = json.dumps(BUCKETS if buckets else [seq])
        proc = subprocess.run([str(python), str(Path(__file__).with_name("deepsparse_pipeline_timing.py")),
                               str(folder / "deployment"), str(data), str(batch), lengths, str(repeats)],
                              capture_output=True, text=True, check=False, env=dict(os.environ, NM_DISABLE_ANALYTICS="1"))
    if proc.returncode:
        raise RuntimeError(f"DeepSparse pipeline run failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def in_subprocess(engine: str, folder: Path, args) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--one", engine, str(folder), "--glue_dir", str(args.glue_dir.resolve()),
                           "--batch", str(args.batch), "--seq", str(args.seq), "--repeats", str(args.repeats)],
                          capture_output=True, text=True, check=False, cwd=Path(__file__).parent)
    if proc.returncode:
        raise RuntimeError(f"{engine} run failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    from sparsecore.tasks import default_glue_dir

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--glue_dir", type=Path, default=default_glue_dir() or Path(__file__).resolve().parents[2]
                    / "shared" / "data" / "glue")
    ap.add_argument("--models", default="minilm")
    ap.add_argument("--sparsity", type=float, default=0.8)
    ap.add_argument("--structure", default="unstructured", choices=["unstructured", "block4"])
    ap.add_argument("--precisions", default="fp32,int8")
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--root", type=Path, default=Path("runs/engine-bench"))
    ap.add_argument("--results", type=Path, default=Path(__file__).parent / "results" / "pipeline_throughput.json")
    ap.add_argument("--one", nargs=2, metavar=("ENGINE", "FOLDER"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if not (args.glue_dir / "sst2").is_dir():
        sys.exit(f"error: no sst2 folder under {args.glue_dir}; pass --glue_dir (a folder laid out like "
                 "shared/data/glue) or set SPARSECORE_GLUE_DIR")
    texts = sentences(args.glue_dir)
    if args.one:
        engine, folder = args.one
        print(json.dumps(ours(engine, Path(folder), texts, args.batch, args.seq, args.repeats)))
        return
    ds_python = Path(os.environ.get("SPARSECORE_DEEPSPARSE_PYTHON", python_of(DEFAULT)))
    engines = args.engines.split(",")
    rows = []
    for model in args.models.split(","):
        for precision in args.precisions.split(","):
            folder = build(model, args.sparsity, args.structure, precision, args.root.resolve())
            row = {"model": model, "precision": precision, "sparsity": args.sparsity, "structure": args.structure}
            for engine in engines:
                if engine.startswith("deepsparse"):
                    if not ds_python.is_file():
                        continue
                    result = theirs(ds_python, folder, texts, args.batch, args.seq, args.repeats,
                                    engine.endswith("buckets"))
                else:
                    result = in_subprocess(engine, folder, args)
                row[engine] = result
                print(f"{model} {precision} {engine}: {result['sentences_per_s']:.1f} sentences/s", flush=True)
            reference = row.get("onnxruntime", {}).get("labels")
            for engine in engines:
                if engine in row:
                    labels = row[engine].pop("labels")
                    if reference:
                        row[engine]["agreement_with_onnxruntime"] = sum(
                            a == b for a, b in zip(labels, reference)) / len(reference)
            rows.append(row)
    command = "python benchmarks/pipeline_throughput.py " + " ".join(sys.argv[1:])
    data = {"machine": machine(), "sentences": len(texts), "batch": args.batch, "seq": args.seq,
            "buckets": BUCKETS, "repeats": args.repeats, "command": command.strip(), "rows": rows}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(data, indent=1))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs" / "hooks"))
    from results_tables import pipeline_throughput

    print(pipeline_throughput(data))


if __name__ == "__main__":
    main()
