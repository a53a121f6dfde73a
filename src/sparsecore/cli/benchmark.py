"""Benchmark a deployment on sparsecore, ONNX Runtime or DeepSparse — ``deepsparse.benchmark``'s flags.

    sparsecore.benchmark DEPLOYMENT_OR_ONNX [-b BATCH] [-seq_len N | -shapes "[B,N]"] [-e ENGINE]
        [-s sync|async|elastic] [-nstreams N] [-ncores N] [-pin core|numa|none] [-t SECONDS] [-w SECONDS]
        [--pipeline [--data FILE]] [--compare ENGINE,ENGINE,...] [-x results.json] [-q]

Engine mode (the default) times the engine on fixed inputs: random token ids (seed 0) of the given batch and
sequence length, every token real — the fixed-shape workload ``deepsparse.benchmark`` times. ``--pipeline``
times the whole Pipeline from text instead (tokenization included): sentences from ``--data`` (a text file,
one per line) or the bundled SST-2 validation sentences, ``-b`` per call; our engine then runs each batch's
real tokens only.

``-s sync`` calls back to back from one stream; ``async``/``elastic`` from ``-nstreams`` threads at once
(default ``ncores // 2``), each stream with ``ncores // nstreams`` threads. ``-ncores`` caps the threads of every
engine and, unless ``-pin none``, binds the process to that many cores. ``-e deepsparse`` runs in the project's
DeepSparse environment (``python -m sparsecore.cli.deepsparse_env`` builds it). ``--compare`` runs each named
engine in a fresh process, one after another, on the same inputs and prints their ratios to the first.
``-x`` writes JSON with DeepSparse's keys (``benchmark_result``: items_per_sec, median, mean, std, iterations,
"25.0%" … "99.9%") plus a ``sparsecore`` section (CPU, ISA path, threads, formats, mode).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

from sparsecore.cli.parser import OneLineArgumentParser, user_errors
from sparsecore.deploy.engines import ENGINES, available_cores, bind_to_cores
from sparsecore.errors import SparsecoreError

SCENARIOS = {"sync": "singlestream", "async": "multistream", "elastic": "elastic"}
WHERE = "sparsecore.benchmark"


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="sparsecore.benchmark", description=__doc__)
    p.add_argument("model_path", help="a deployment folder, a trained folder holding deployment/, or a model.onnx")
    p.add_argument("-b", "--batch_size", type=int, default=None, help="items per call (default 1)")
    p.add_argument("-i", "-shapes", "--input_shapes", default="",
                   help='"[B,N]" (or one per input, all equal): batch B, sequence length N')
    p.add_argument("-seq_len", "--sequence_length", type=int, default=None,
                   help="tokens per sequence (default: the deployment's export length)")
    p.add_argument("-e", "--engine", default="sparsecore", choices=ENGINES)
    p.add_argument("-s", "--scenario", default="sync", choices=list(SCENARIOS))
    p.add_argument("-nstreams", "--num_streams", type=int, default=None)
    p.add_argument("-ncores", "--num_cores", type=int, default=None, help="default: every core this process may use")
    p.add_argument("-pin", "--thread_pinning", default="core", choices=["core", "numa", "none"],
                   help="bind the process to --num_cores cores (core, numa) or not (none)")
    p.add_argument("-t", "--time", type=float, default=10.0, help="seconds timed")
    p.add_argument("-w", "--warmup_time", type=float, default=2.0, help="seconds run before timing")
    p.add_argument("--pipeline", action="store_true", help="time the Pipeline from text (tokenization included)")
    p.add_argument("--data", type=Path, default=None, help="--pipeline: a text file, one sentence per line")
    p.add_argument("--compare", default=None, help="engines to run one after another, e.g. sparsecore,onnxruntime")
    p.add_argument("-x", "--export_path", type=Path, default=None, help="write the results as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the summary")
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    with user_errors():
        settings = _settings(args)
        if args.compare:
            results = _compare(args, settings)
            _print_comparison(results)
        else:
            results = [run(args, settings)]
            _print_result(results[0])
        if args.export_path:
            _write_json(args.export_path, results[0] if len(results) == 1 else {"compare": results})


def _settings(args) -> dict:
    """Checked run settings: deployment, batch, sequence length, cores, scenario, streams, per-stream threads."""
    from sparsecore.deploy.model_folder import locate

    deployment = locate(args.model_path)
    batch, seq = args.batch_size, args.sequence_length
    if args.input_shapes:
        shapes = re.findall(r"\[\s*(\d+)\s*,\s*(\d+)\s*\]", args.input_shapes)
        if not shapes or len({s for s in shapes}) != 1 or re.sub(r"\[\s*\d+\s*,\s*\d+\s*\]|[\s,]", "",
                                                                 args.input_shapes):
            raise SparsecoreError(f"cannot read -shapes {args.input_shapes!r}", WHERE,
                                  'give "[BATCH,SEQUENCE]" (one shape, or the same shape once per input)')
        shape_batch, seq_from_shape = (int(v) for v in shapes[0])
        if batch is not None and shape_batch != batch:
            raise SparsecoreError(f"-shapes batch {shape_batch} differs from -b {batch}", WHERE, "give one batch size")
        batch = shape_batch
        if seq is not None and seq != seq_from_shape:
            raise SparsecoreError(f"-shapes length {seq_from_shape} differs from --sequence_length {seq}", WHERE,
                                  "give one sequence length")
        seq = seq_from_shape
    seq = deployment.default_sequence_length if seq is None else seq
    batch = 1 if batch is None else batch
    if batch < 1:
        raise SparsecoreError(f"batch size {batch} is below 1", WHERE, "pass -b 1 or more")
    if not 1 <= seq <= deployment.max_positions:
        raise SparsecoreError(f"sequence length {seq} is outside 1..{deployment.max_positions}", WHERE,
                              f"use a length the model supports (at most {deployment.max_positions})")
    if args.time <= 0 or args.warmup_time < 0:
        raise SparsecoreError("--time must be > 0 and --warmup_time >= 0 seconds", WHERE, "e.g. -t 10 -w 2")
    available = available_cores()
    cores = len(available) if args.num_cores is None else args.num_cores
    if not 1 <= cores <= len(available):
        raise SparsecoreError(f"--num_cores {cores} is outside 1..{len(available)}", WHERE,
                              f"this process may use {len(available)} cores")
    scenario = SCENARIOS[args.scenario]
    if args.num_streams is not None and args.num_streams < 1:
        raise SparsecoreError(f"--num_streams {args.num_streams} is below 1", WHERE, "pass 1 or more")
    streams = 1 if scenario == "singlestream" else (args.num_streams or max(1, cores // 2))
    if args.data is not None and not args.pipeline:
        raise SparsecoreError("--data is read in --pipeline mode only", WHERE, "add --pipeline or drop --data")
    if args.compare:
        names = [n.strip() for n in args.compare.split(",") if n.strip()]
        unknown = [n for n in names if n not in ENGINES]
        if unknown or len(names) < 2:
            raise SparsecoreError(f"--compare {args.compare!r}: " + (f"unknown engine {unknown[0]!r}" if unknown
                                  else "name at least two engines"), WHERE, f"use engines from {', '.join(ENGINES)}")
    return {"deployment": deployment, "batch": batch, "seq": seq, "cores": cores,
            "scenario": scenario, "streams": streams, "threads": max(1, cores // streams)}


def _texts(path: Path | None) -> list[str]:
    if path is None:
        from sparsecore.tasks import load_data, sample_glue_dir

        return [t[0] for t in load_data("sst2", sample_glue_dir()).evals["validation"].texts]
    from sparsecore.cli.predict import read_texts

    return read_texts(path, "text", None)


def run(args, settings: dict) -> dict:
    """One engine's run: DeepSparse's export keys, ``benchmark_result`` and the ``sparsecore`` section."""
    deployment, cores = settings["deployment"], settings["cores"]
    if args.thread_pinning != "none":
        bind_to_cores(cores)
    if args.engine == "deepsparse":
        outcome = _deepsparse(args, settings)
    else:
        outcome = _local(args, settings)
    return {"engine": outcome["engine"], "version": outcome["version"], "orig_model_path": args.model_path,
            "model_path": str(deployment.onnx_path if not args.pipeline else deployment.folder),
            "batch_size": settings["batch"], "input_shapes": [[settings["batch"], settings["seq"]]] * len(
                deployment.input_names), "num_cores": cores, "scenario": args.scenario,
            "scheduler": settings["scenario"], "seconds_to_run": args.time, "num_streams": settings["streams"],
            "benchmark_result": outcome["benchmark_result"],
            "fraction_of_supported_ops": outcome.get("fraction_of_supported_ops"),
            "sparsecore": {"engine_name": args.engine, "mode": "pipeline" if args.pipeline else "engine",
                           "sequence_length": settings["seq"], "threads_per_stream": settings["threads"],
                           **outcome.get("details", {})}}


def _local(args, settings: dict) -> dict:
    """sparsecore or ONNX Runtime, timed in this process."""
    from sparsecore.deploy.stream_timing import run_streams, summarize
    from sparsecore.kernels.isa import cpu_name, integer_path

    deployment, batch, seq, streams = settings["deployment"], settings["batch"], settings["seq"], settings["streams"]
    threads = settings["threads"]
    details = {"cpu": cpu_name(), "integer_path": integer_path()}
    if args.pipeline:
        from sparsecore.deploy import Pipeline

        texts = _texts(args.data)
        if len(texts) < batch:
            raise SparsecoreError(f"{len(texts)} sentences are fewer than one batch of {batch}", WHERE,
                                  "lower -b or give more sentences")
        chunks = [texts[i:i + batch] for i in range(0, len(texts) - batch + 1, batch)]
        pipe = Pipeline.create(model_path=deployment.folder, engine=args.engine, batch_size=batch,
                               sequence_length=seq, num_streams=streams, num_cores=settings["cores"])
        turn, turn_lock = itertools.count(), threading.Lock()

        def call(_stream: int) -> None:
            with turn_lock:
                chunk = chunks[next(turn) % len(chunks)]
            pipe(chunk)
        engine = pipe.engine
    else:
        from sparsecore.deploy.engines import make_engine
        from sparsecore.deploy.model_folder import random_feeds

        feeds = random_feeds(deployment, batch, seq)
        engine = make_engine(args.engine, deployment.onnx_path, batch, [seq], streams, settings["cores"])

        def call(_stream: int) -> None:
            engine(feeds)
    if hasattr(engine, "describe"):
        info = engine.describe()
        details |= {"linear_formats": info["linear_formats"], "delegated": info["delegated"],
                    "padding": info["padding"]}
    _progress(args, f"warming up {args.engine} for {args.warmup_time:g} s")
    run_streams(call, args.warmup_time, streams)
    _progress(args, f"timing {args.engine} for {args.time:g} s ({settings['scenario']}, {streams} stream(s) × "
                    f"{threads} thread(s))")
    spans = run_streams(call, args.time, streams)
    described = (f"sparsecore engine on {details['cpu']} (integer path {details['integer_path']})"
                 if args.engine == "sparsecore" else f"onnxruntime {_ort_version()} CPUExecutionProvider")
    if args.engine == "sparsecore" and details.get("delegated"):
        described = f"sparsecore engine delegating to {details['delegated'].split()[0]} on {details['cpu']}"
    ours = args.engine == "sparsecore" and not details.get("delegated")
    return {"engine": described, "version": _version(),
            "benchmark_result": summarize(spans, batch, settings["scenario"]),
            "fraction_of_supported_ops": (1.0 if ours else 0.0) if args.engine == "sparsecore" else None,
            "details": details}


def _deepsparse(args, settings: dict) -> dict:
    """The same run in the DeepSparse environment (:mod:`sparsecore.deploy.deepsparse_worker`)."""
    from sparsecore.cli.deepsparse_env import DEFAULT, python_of, works

    if not works(DEFAULT):
        raise SparsecoreError("-e deepsparse needs the DeepSparse environment, which is not built here", str(DEFAULT),
                              "run python -m sparsecore.cli.deepsparse_env, or use -e sparsecore / onnxruntime")
    import sparsecore.deploy as deploy_package
    from sparsecore.deploy.model_folder import random_feeds

    worker = Path(deploy_package.__file__).with_name("deepsparse_worker.py")
    deployment = settings["deployment"]
    with tempfile.TemporaryDirectory(prefix="sparsecore-benchmark-") as tmp:
        spec = {"mode": "pipeline" if args.pipeline else "engine", "batch_size": settings["batch"],
                "sequence_length": settings["seq"], "scenario": settings["scenario"], "streams": settings["streams"],
                "seconds": args.time, "warmup": args.warmup_time, "num_cores": settings["cores"]}
        if args.pipeline:
            texts = _texts(args.data)
            Path(tmp, "texts.json").write_text(json.dumps(texts), encoding="utf-8")
            spec |= {"model": str(deployment.folder), "texts": str(Path(tmp, "texts.json"))}
        else:
            np.savez(Path(tmp, "feeds.npz"), **random_feeds(deployment, settings["batch"], settings["seq"]))
            spec |= {"model": str(deployment.onnx_path), "feeds": str(Path(tmp, "feeds.npz"))}
        Path(tmp, "spec.json").write_text(json.dumps(spec), encoding="utf-8")
        _progress(args, f"running DeepSparse in {DEFAULT} (compiling, then {args.warmup_time:g} + {args.time:g} s)")
        done = subprocess.run([str(python_of(DEFAULT)), "-P", str(worker), str(Path(tmp, "spec.json"))],
                              capture_output=True, text=True, env={**os.environ, "NM_DISABLE_ANALYTICS": "1"})
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SparsecoreError(f"DeepSparse failed (exit {done.returncode}): {last}", str(deployment.onnx_path),
                              "check that DeepSparse supports this graph, or use -e sparsecore / onnxruntime")
    return json.loads(lines[-1])


def _compare(args, settings: dict) -> list[dict]:
    """Each engine of ``--compare`` in a fresh process with the same flags; their results in order."""
    results = []
    argv = [args.model_path, "-b", str(settings["batch"]), "-seq_len", str(settings["seq"]), "-s", args.scenario,
            "-nstreams", str(settings["streams"]), "-ncores", str(settings["cores"]), "-pin", args.thread_pinning,
            "-t", str(args.time), "-w", str(args.warmup_time)]
    argv += (["--pipeline"] if args.pipeline else []) + (["--data", str(args.data)] if args.data else [])
    with tempfile.TemporaryDirectory(prefix="sparsecore-compare-") as tmp:
        for name in [n.strip() for n in args.compare.split(",") if n.strip()]:
            out = Path(tmp, f"{name}.json")
            _progress(args, f"--compare: {name}")
            done = subprocess.run([sys.executable, "-m", "sparsecore.benchmark", *argv, "-e", name, "-x", str(out),
                                   "-q"], capture_output=True, text=True)
            if done.returncode:
                last = (done.stderr.strip().splitlines() or ["no output"])[-1]
                raise SparsecoreError(f"the {name} run failed: {last.removeprefix('error: ')}", WHERE,
                                      f"run it alone: sparsecore.benchmark {args.model_path} -e {name}")
            results.append(json.loads(out.read_text()))
    return results


def _print_result(r: dict) -> None:
    b = r["benchmark_result"]
    print(f"Original Model Path: {r['orig_model_path']}")
    print(f"Batch Size: {r['batch_size']}")
    print(f"Sequence Length: {r['sparsecore']['sequence_length']}")
    print(f"Mode: {r['sparsecore']['mode']}")
    print(f"Scenario: {r['scenario']}")
    print(f"Engine: {r['engine']}")
    print(f"Streams × threads: {r['num_streams']} × {r['sparsecore']['threads_per_stream']}")
    print(f"Throughput (items/sec): {b['items_per_sec']:.4f}")
    print(f"Latency Mean (ms/batch): {b['mean']:.4f}")
    print(f"Latency Median (ms/batch): {b['median']:.4f}")
    print(f"Latency Std (ms/batch): {b['std']:.4f}")
    print("Latency percentiles (ms/batch): " + ", ".join(f"p{k[:-1].removesuffix('.0')} {b[k]:.4f}"
                                                         for k in ("50.0%", "90.0%", "95.0%", "99.0%", "99.9%")))
    print(f"Iterations: {int(b['iterations'])}")


def _print_comparison(results: list[dict]) -> None:
    first = results[0]["benchmark_result"]
    print(f"Model: {results[0]['orig_model_path']} · batch {results[0]['batch_size']} · sequence length "
          f"{results[0]['sparsecore']['sequence_length']} · {results[0]['sparsecore']['mode']} mode · "
          f"{results[0]['scenario']} · {results[0]['num_cores']} cores")
    print(f"{'engine':<14}{'items/s':>12}{'median ms':>12}{'p99 ms':>12}{'items/s ÷ first':>18}")
    for r in results:
        b = r["benchmark_result"]
        print(f"{r['sparsecore']['engine_name']:<14}{b['items_per_sec']:>12.2f}{b['median']:>12.3f}{b['99.0%']:>12.3f}"
              f"{b['items_per_sec'] / first['items_per_sec']:>18.2f}")


def _write_json(path: Path, data: dict) -> None:
    from sparsecore.file_checks import check_writable

    check_writable(path, f"-x {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=2), encoding="utf-8")
    partial.replace(path)


def _progress(args, message: str) -> None:
    if not args.quiet:
        sys.stderr.write(message + "\n")


def _version() -> str:
    from importlib.metadata import version

    return version("sparsecore")


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


if __name__ == "__main__":
    main()
