"""Latency/throughput of torch, ONNX Runtime, DeepSparse and sparsecore on pruned BERT models, side by side.

    python benchmarks/engine_bench.py [--models minilm,bert-base] [--sparsities 0,0.8,0.9,0.95]
        [--structures unstructured,block4] [--precisions fp32,int8] [--batches 1,32] [--seq 128] [--iters 20]
        [--first-call] [--rounds R] [--out runs/engine-bench] [--results benchmarks/results/engine_bench.json]

Models: the real all-MiniLM-L6-v2 weights and a BERT-base-shaped model (random init: timing does not
depend on trained values), each one-shot magnitude-pruned by our CLI per (sparsity, structure) and
exported; ``int8`` rows quantize that folder post-training (one-shot QuantizationModifier, 4 calibration
batches) and export the integer form (MatMulInteger). Every engine runs the same export (torch: the
trained folder), each timing in a fresh subprocess that reports JSON (DeepSparse in its own environment)
— engines in one process slow each other down through spinning thread pools — one at a time; a warm-up,
then medians over repeated runs. Writes results.json, results.md (table + ratios against ONNX Runtime on
the dense model and against DeepSparse on the same model) and results.png into --out, prints the markdown,
and copies results.json to --results (benchmarks/results/, where the documentation's engine table is made from).
The sparsecore column also gives the useful GFLOP/s of its encoder Linears (2 × stored non-zero weights ×
tokens over the Linears' profiled time; GOP/s for int8) next to this machine's FMA peak measured in the same
run (benchmarks/peak.py). ``--first-call`` adds what a user waits for the first answer (engine load + first
forward) with Numba's cache cold (a fresh NUMBA_CACHE_DIR: every kernel compiles) and warm. ``--rounds R`` (R > 1)
times DeepSparse and sparsecore in R alternating turns of --iters calls, each engine loaded once in its own serving
process (benchmarks/alternated_timing.py): on a machine whose speed drifts, both engines see the same phases; each
row then also records every round's medians and sparsecore / DeepSparse per round.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from deploy_latency import deepsparse_ms, feeds, median_ms, ort_ms

from sparsecore.cli.deepsparse_env import DEFAULT, python_of
from sparsecore.workflows import export, train

TARGETS = (r"re:.*encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense"
           r"|intermediate\.dense|output\.dense)\.weight")


def recipe(sparsity: float, structure: str) -> str:
    mask = "block4" if structure == "block4" else "unstructured"
    return (f"modifiers:\n  - !GMPruningModifier\n    params: ['{TARGETS}']\n    final_sparsity: {sparsity}\n"
            f"    mask_type: {mask}\n    end_epoch: 1\n")


def base_model(name: str, root: Path) -> str:
    if name == "minilm":
        return "minilm"
    folder = root / "bert-base-random"
    if not (folder / "config.json").is_file():
        from transformers import BertConfig, BertForSequenceClassification

        from sparsecore.adapters.models import minilm_path

        model = BertForSequenceClassification(BertConfig(num_labels=2))  # BERT-base shape, random init
        model.save_pretrained(str(folder))
        for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
            if (minilm_path() / f).is_file():
                shutil.copy2(minilm_path() / f, folder / f)
    return str(folder)


PTQ = "modifiers:\n  - !QuantizationModifier\n    num_calibration_steps: 4\n"


def build(model: str, sparsity: float, structure: str, precision: str, root: Path) -> Path:
    folder = root / f"{model}-{structure}-{int(round(sparsity * 100))}"
    if precision == "int8":
        source, folder = build(model, sparsity, structure, "fp32", root), folder.with_name(folder.name + "-int8")
    if not (folder / "deployment" / "model.onnx").is_file():
        if precision == "int8":
            extra, start = {"recipe": PTQ, "one_shot": True, "max_train_samples": 64}, str(source)
        else:
            extra = {"recipe": recipe(sparsity, structure), "one_shot": True} if sparsity > 0 else {}
            start = base_model(model, root)
        train(model_name_or_path=start, task_name="sst2", do_eval=True, max_eval_samples=8, output_dir=folder,
              overwrite_output_dir=True, disable_tqdm=True, **extra)
        export(model_path=folder)
    return folder


def torch_ms(folder: Path, batch: int, seq: int, iters: int) -> float:
    import torch
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
    inputs = {k: torch.from_numpy(v) for k, v in feeds(batch, seq).items()}
    with torch.inference_mode():
        return median_ms(lambda: model(**inputs), iters)


def linear_nnz(model) -> int:
    """Stored non-zero weights of the encoder Linears (what their useful FLOPs are counted on)."""
    total = 0
    for layer in model.layers:
        for key in ("qkv", "attn_out", "intermediate", "out"):
            w = layer[key].weight
            total += w.nnz if hasattr(w, "nnz") else int(np.count_nonzero(w))
    return total


def sparsecore_ms(folder: Path, batch: int, seq: int, iters: int) -> dict:
    from sparsecore.deploy.sparse_engine import SparsecoreEngine

    engine = SparsecoreEngine(folder / "deployment" / "model.onnx", batch, [seq])
    f = feeds(batch, seq)
    return {"ms": median_ms(lambda: engine(f), iters), **sparsecore_info(engine, f, iters)}


def sparsecore_info(engine, f: dict, iters: int) -> dict:
    """The Linears' formats, their profiled time and useful GFLOP/s over ``iters`` profiled calls (or, for a model
    ONNX Runtime runs, the delegation)."""
    if engine.delegate is not None:  # no sparse Linear: ONNX Runtime runs it
        return {"formats": engine.describe()["linear_formats"], "delegated": "onnxruntime"}
    profile: dict[str, float] = {}
    for _ in range(iters):
        engine(f, profile)
    linear_ms = sum(v for k, v in profile.items() if "Linear" in k) / iters
    batch, seq = f["input_ids"].shape
    gflops = 2 * linear_nnz(engine.model) * batch * seq / (linear_ms * 1e6)
    return {"formats": engine.model.formats(), "linear_ms": linear_ms, "linear_gflops": gflops}


def serve_sparsecore(folder: Path, batch: int, seq: int, iters: int) -> None:
    """Child of an alternated timing: load, warm up, then answer timing requests (alternated_timing.serve)."""
    from alternated_timing import serve

    from sparsecore.deploy.sparse_engine import SparsecoreEngine

    engine = SparsecoreEngine(folder / "deployment" / "model.onnx", batch, [seq])
    f = feeds(batch, seq)
    engine(f)
    serve(lambda: engine(f), info=lambda: sparsecore_info(engine, f, iters))


def alternated(ds_python: Path, folder: Path, batch: int, seq: int, iters: int, rounds: int) -> dict:
    """DeepSparse and sparsecore on the same export, each in its own serving process, timed in ``rounds`` turns
    of ``iters`` calls (alternated_timing): ``deepsparse_ms``, ``sparsecore_ms`` (medians of all calls), each
    round's medians, and sparsecore's formats and Linear throughput."""
    from alternated_timing import Child, alternate, round_ratios

    here = Path(__file__).parent
    children = {}
    try:
        children["deepsparse"] = Child([str(ds_python), str(here / "deepsparse_timing.py"),
                                        str(folder.resolve() / "deployment" / "model.onnx"), str(batch), str(seq), "0",
                                        "--serve"], cwd=here, env=dict(os.environ, NM_DISABLE_ANALYTICS="1"))
        children["sparsecore"] = Child([sys.executable, __file__, "--serve", str(folder.resolve()), str(batch),
                                        str(seq), str(iters)], cwd=here)
        result = alternate(children, rounds, iters)
        info = children["sparsecore"].ask("info")
    finally:
        for child in children.values():
            child.close()
    return {"deepsparse_ms": result["deepsparse"]["ms"], "sparsecore_ms": result["sparsecore"]["ms"],
            "round_ms": {k: v["round_ms"] for k, v in result.items()},
            "round_ratios": round_ratios(result, "sparsecore", "deepsparse"), **info}


def first_call_ms(folder: Path, seq: int) -> float:
    """Engine load + first forward (batch 1), in this fresh process."""
    import time

    start = time.perf_counter()
    from sparsecore.deploy.sparse_engine import SparsecoreEngine

    SparsecoreEngine(folder / "deployment" / "model.onnx", 1, [seq])(feeds(1, seq))
    return (time.perf_counter() - start) * 1e3


def first_calls(folder: Path, seq: int) -> dict:
    """First-call latency with Numba's cache cold (an empty NUMBA_CACHE_DIR) and then warm (the same one)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        return {state: timed_in_subprocess("first-call", folder.resolve(), 1, seq, 1, env)["ms"]
                for state in ("cold", "warm")}


def timed_in_subprocess(engine: str, folder: Path, batch: int, seq: int, iters: int, env=None) -> dict:
    """One engine's timing in a fresh interpreter: ``{"ms": ..., ["formats": ...]}``."""
    proc = subprocess.run([sys.executable, __file__, "--one", engine, str(folder), str(batch), str(seq), str(iters)],
                          capture_output=True, text=True, check=True, cwd=Path(__file__).parent, env=env)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def one(engine: str, folder: Path, batch: int, seq: int, iters: int) -> dict:
    if engine == "torch":
        return {"ms": torch_ms(folder, batch, seq, iters)}
    if engine == "onnxruntime":
        return {"ms": ort_ms(folder / "deployment" / "model.onnx", batch, seq, iters)}
    if engine == "first-call":
        return {"ms": first_call_ms(folder, seq)}
    return sparsecore_ms(folder, batch, seq, iters)


def machine() -> dict:
    """The CPU (model name, family and model numbers, the ISA flags the kernels care about, the integer and float
    paths sparsecore takes here), core count and Python version, for a result file."""
    flags, extra = "", {}
    if Path("/proc/cpuinfo").is_file():
        lines = Path("/proc/cpuinfo").read_text().splitlines()

        def field(name: str) -> str:
            return next((ln.split(":", 1)[1].strip() for ln in lines if ln.split(":", 1)[0].strip() == name), "")

        isa = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8")
               if f" {f}" in f" {field('flags')} "]
        flags = f"{field('model name')}; ISA: {', '.join(isa)}"
        extra = {"cpu_family": field("cpu family"), "cpu_model": field("model")}
    try:
        from sparsecore.kernels.isa import float_path, integer_path

        extra |= {"integer_path": integer_path(), "float_path": float_path()}
    except ImportError:  # the DeepSparse environment: no sparsecore
        pass
    return {"cpu": flags or platform.processor(), **extra, "cores": os.cpu_count(), "python": platform.python_version()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="minilm,bert-base")
    ap.add_argument("--sparsities", default="0,0.8,0.9,0.95")
    ap.add_argument("--structures", default="unstructured,block4")
    ap.add_argument("--precisions", default="fp32,int8")
    ap.add_argument("--first-call", action="store_true", help="time engine load + first call, Numba cache cold/warm")
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--engines", default="torch,onnxruntime,deepsparse,sparsecore")
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--iters", type=int, default=20, help="timed runs at batch 1 (batch 32: a quarter, ≥ 3)")
    ap.add_argument("--out", type=Path, default=Path("runs/engine-bench"))
    ap.add_argument("--results", type=Path, default=Path(__file__).parent / "results" / "engine_bench.json",
                    help="where the run's JSON goes for the documentation (one file per machine kind)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="> 1: DeepSparse and sparsecore timed in this many alternating turns of --iters calls, "
                         "each engine in its own serving process (a slow phase of the machine lands on both)")
    ap.add_argument("--one", nargs=5, metavar=("ENGINE", "FOLDER", "BATCH", "SEQ", "ITERS"), help=argparse.SUPPRESS)
    ap.add_argument("--serve", nargs=4, metavar=("FOLDER", "BATCH", "SEQ", "ITERS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:  # child process: time one engine, print JSON
        engine, folder, batch, seq, iters = args.one
        print(json.dumps(one(engine, Path(folder), int(batch), int(seq), int(iters))))
        return
    if args.serve:  # child process of an alternated timing
        folder, batch, seq, iters = args.serve
        serve_sparsecore(Path(folder), int(batch), int(seq), int(iters))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    ds_python = Path(os.environ.get("SPARSECORE_DEEPSPARSE_PYTHON", python_of(DEFAULT)))
    engines = args.engines.split(",")
    configs = []
    for precision in args.precisions.split(","):
        configs += [(m, 0.0, "unstructured", precision) for m in args.models.split(",")]
        configs += [(m, float(s), st, precision) for m in args.models.split(",") for s in args.sparsities.split(",")
                    if float(s) > 0 for st in args.structures.split(",")]
    folders = {c: build(*c, args.out) for c in configs}  # build everything first: timing runs alone
    from peak import fma_peak_gflops

    rows, peak = [], fma_peak_gflops()
    first = {}
    for (model, sparsity, structure, precision), folder in folders.items():
        if args.first_call and sparsity > 0 and precision not in first:
            first[precision] = {"model": model, "sparsity": sparsity, **first_calls(folder, args.seq)}
            print(json.dumps(first[precision]), flush=True)
        onnx_path = folder / "deployment" / "model.onnx"
        for batch in map(int, args.batches.split(",")):
            iters = args.iters if batch == 1 else max(3, args.iters // 4)
            row = {"model": model, "sparsity": sparsity, "structure": structure, "precision": precision,
                   "batch": batch, "seq": args.seq}
            turns = args.rounds > 1 and {"deepsparse", "sparsecore"} <= set(engines) and ds_python.is_file()
            if turns:
                row.update(alternated(ds_python, folder, batch, args.seq, iters, args.rounds))
            for engine in engines:
                if turns and engine in ("deepsparse", "sparsecore"):
                    continue
                if engine == "deepsparse":
                    if ds_python.is_file():
                        row["deepsparse_ms"] = deepsparse_ms(ds_python, onnx_path, batch, args.seq, iters)
                    continue
                result = timed_in_subprocess(engine, folder.resolve(), batch, args.seq, iters)
                row[f"{engine}_ms"] = result.pop("ms")
                row.update(result)
            rows.append(row)
            print(json.dumps(row), flush=True)
    result = {"machine": {**machine(), "fma_peak_gflops": peak}, "rows": rows, "first_call": first}
    (args.out / "results.json").write_text(json.dumps(result, indent=1))
    forced = [f"SPARSECORE_ISA={os.environ['SPARSECORE_ISA']}"] if os.environ.get("SPARSECORE_ISA") else []
    command = " ".join([*forced, "python benchmarks/engine_bench.py", *sys.argv[1:]])
    args.results.write_text(json.dumps({**result, "command": command}, indent=1))
    table = markdown(result, engines)
    (args.out / "results.md").write_text(table)
    print(table)
    plot(rows, engines, args.out / "results.png")


def markdown(result: dict, engines: list[str]) -> str:
    m = result["machine"]
    lines = [f"Machine: {m['cpu']}, {m['cores']} cores; measured fp32 FMA peak {m['fma_peak_gflops']:.0f} GFLOP/s. "
             f"Medians (ms) at seq {result['rows'][0]['seq']}; throughput = batch × 1000 / ms (sequences/s); "
             "Linears G(FL)OP/s = useful (non-zero) work of sparsecore's encoder Linears per second.", "",
             "| model | precision | sparsity | structure | batch | " + " | ".join(f"{e} ms" for e in engines)
             + " | sparsecore seq/s | Linears G(FL)OP/s (% peak) | sparsecore vs ORT-dense | sparsecore / DeepSparse |",
             "|---|---|---:|---|---:|" + "---:|" * (len(engines) + 4)]
    for r in result["rows"]:
        dense = next(d for d in result["rows"] if d["model"] == r["model"] and d["sparsity"] == 0
                     and d["batch"] == r["batch"] and d.get("precision") == r.get("precision"))
        sc = r.get("sparsecore_ms")
        vs_ort = f"{dense['onnxruntime_ms'] / sc:.2f}× faster" if sc and "onnxruntime_ms" in dense else "–"
        vs_ds = f"{sc / r['deepsparse_ms']:.2f}" if sc and r.get("deepsparse_ms") else "–"
        cells = " | ".join(f"{r[e + '_ms']:.1f}" if e + "_ms" in r else "–" for e in engines)
        tput = f"{r['batch'] * 1000 / sc:.0f}" if sc else "–"
        gf = r.get("linear_gflops")
        gflops = f"{gf:.0f} ({gf / m['fma_peak_gflops']:.0%})" if gf else "–"
        lines.append(f"| {r['model']} | {r.get('precision', 'fp32')} | {r['sparsity']:.0%} | "
                     f"{r['structure'] if r['sparsity'] else '–'} | {r['batch']} | {cells} | {tput} | {gflops} | "
                     f"{vs_ort} | {vs_ds} |")
    for precision, f in result.get("first_call", {}).items():
        lines.append(f"\nFirst call ({precision}, {f['model']} {f['sparsity']:.0%}: engine load + first forward, "
                     f"batch 1): {f['cold'] / 1e3:.1f} s with Numba's cache cold, {f['warm'] / 1e3:.2f} s warm.")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], engines: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = sorted({(r["model"], r["batch"]) for r in rows})
    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 3.8), squeeze=False)
    colors = {"torch": "#bbbbbb", "onnxruntime": "#777777", "deepsparse": "#3b7dd8", "sparsecore": "#e07b39"}
    for ax, (model, batch) in zip(axes[0], groups):
        sel = [r for r in rows if r["model"] == model and r["batch"] == batch]
        labels = [("" if r.get("precision", "fp32") == "fp32" else "i8 ") + f"{r['sparsity']:.0%}"
                  + ("" if not r["sparsity"] else " b4" if r["structure"] == "block4" else " u") for r in sel]
        x = np.arange(len(sel))
        width = 0.8 / len(engines)
        for i, e in enumerate(engines):
            ax.bar(x + (i - (len(engines) - 1) / 2) * width, [r.get(e + "_ms", np.nan) for r in sel], width,
                   label=e, color=colors.get(e))
        ax.set_xticks(x, labels, fontsize=7, rotation=45)
        ax.set_ylabel("median latency (ms)")
        ax.set_title(f"{model}, batch {batch}, seq {sel[0]['seq']}")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
