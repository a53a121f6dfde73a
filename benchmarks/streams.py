"""Streams on one machine: 1 stream × all cores against N streams × (cores / N), on our engine and ONNX Runtime.

    python benchmarks/streams.py DEPLOYMENT [--batches 1,16] [--streams 2] [--time 8]
        [--results benchmarks/results/streams.json]

Each cell is one ``sparsecore.benchmark`` run in its own process (engine mode: random tokens at the deployment's
sequence length, every token real), ``-s sync`` for one stream and ``-s async -nstreams N`` for N; items/s and
median latency per call. Writes the JSON the documentation's streams table is made from and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def run(deployment: str, engine: str, batch: int, streams: int, seconds: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        scenario = ["-s", "sync"] if streams == 1 else ["-s", "async", "-nstreams", str(streams)]
        subprocess.run([sys.executable, "-m", "sparsecore.benchmark", deployment, "-e", engine, "-b", str(batch),
                        *scenario, "-t", str(seconds), "-w", "2", "-q", "-x", str(out)], check=True,
                       capture_output=True)
        return json.loads(out.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("deployment")
    ap.add_argument("--batches", default="1,16")
    ap.add_argument("--streams", type=int, default=2)
    ap.add_argument("--time", type=float, default=8.0)
    ap.add_argument("--results", type=Path, default=Path(__file__).parent / "results" / "streams.json")
    args = ap.parse_args()
    rows = []
    for batch in (int(b) for b in args.batches.split(",")):
        for engine in ("sparsecore", "onnxruntime"):
            for streams in (1, args.streams):
                r = run(args.deployment, engine, batch, streams, args.time)
                b = r["benchmark_result"]
                rows.append({"engine": engine, "batch": batch, "streams": streams,
                             "threads_per_stream": r["sparsecore"]["threads_per_stream"],
                             "items_per_sec": b["items_per_sec"], "median_ms": b["median"], "p99_ms": b["99.0%"],
                             "sequence_length": r["sparsecore"]["sequence_length"], "cpu": r["sparsecore"]["cpu"]})
                print(json.dumps(rows[-1]))
    data = {"deployment": args.deployment, "cores": len(os.sched_getaffinity(0)), "rows": rows,
            "command": "python benchmarks/streams.py " + " ".join(sys.argv[1:])}
    args.results.write_text(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
