"""Latency of exported MiniLM-L6 (dense vs 90% pruned) on ONNX Runtime and DeepSparse, side by side.

    python benchmarks/deploy_latency.py [--iters 30] [--out runs/latency]

Builds both models with our own CLIs (real all-MiniLM-L6-v2 weights; the 90% model is one-shot
magnitude-pruned — accuracy is irrelevant to speed), exports them, then times batch 1 and 32 at
sequence length 128: ORT in this process (2 intra-op threads), DeepSparse in its own environment
(a subprocess, one at a time: DeepSparse pins threads and slows 10× under contention). Prints a
markdown table and writes latency.png. DeepSparse running the pruned model much faster than the
dense one is the evidence that it runs the export sparse-accelerated.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np

from sparsecore.cli.deepsparse_env import DEFAULT, python_of
from sparsecore.workflows import export, train

PRUNE90 = """
modifiers:
  - !GMPruningModifier
    params: ['re:.*encoder\\.layer\\.\\d+\\.(attention\\.self\\.(query|key|value)|attention\\.output\\.dense|intermediate\\.dense|output\\.dense)\\.weight']
    final_sparsity: 0.9
    end_epoch: 1
"""


def build(out: Path) -> dict[str, Path]:
    models = {}
    for name, extra in (("dense", {}), ("pruned90", {"recipe": PRUNE90, "one_shot": True})):
        folder = out / name
        if not (folder / "deployment" / "model.onnx").is_file():
            train(model_name_or_path="minilm", task_name="sst2", do_eval=True, max_eval_samples=8, output_dir=folder,
                  overwrite_output_dir=True, disable_tqdm=True, **extra)
            export(model_path=folder)
        models[name] = folder / "deployment" / "model.onnx"
    return models


def feeds(batch: int, seq: int) -> dict[str, np.ndarray]:
    """Random in-vocabulary token ids, full attention, one segment (timing does not depend on the text)."""
    rng = np.random.default_rng(0)
    return {"input_ids": rng.integers(1000, 30000, (batch, seq)).astype(np.int64),
            "attention_mask": np.ones((batch, seq), np.int64), "token_type_ids": np.zeros((batch, seq), np.int64)}


def median_ms(fn, iters: int, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in ms over ``iters`` runs after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def ort_ms(path: Path, batch: int, seq: int, iters: int) -> float:
    from sparsecore.deploy.ort_session import ort_session

    session = ort_session(path, threads=os.cpu_count() or 2)
    inputs = feeds(batch, seq)
    return median_ms(lambda: session.run(None, inputs), iters, warmup=3)


def deepsparse_ms(python: Path, path: Path, batch: int, seq: int, iters: int) -> float:
    script = Path(__file__).with_name("deepsparse_timing.py")
    proc = subprocess.run([str(python), str(script), str(path), str(batch), str(seq), str(iters)],
                          capture_output=True, text=True, check=True, env=dict(os.environ, NM_DISABLE_ANALYTICS="1"))
    return json.loads(proc.stdout.strip().splitlines()[-1])["median_ms"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--out", type=Path, default=Path("runs/latency"))
    args = ap.parse_args()
    models = build(args.out)
    ds_python = Path(os.environ.get("SPARSECORE_DEEPSPARSE_PYTHON", python_of(DEFAULT)))
    rows = []
    for batch in (1, 32):
        iters = args.iters if batch == 1 else max(5, args.iters // 4)
        for name, path in models.items():
            ort = ort_ms(path, batch, args.seq, iters)
            ds = deepsparse_ms(ds_python, path, batch, args.seq, iters) if ds_python.is_file() else float("nan")
            rows.append({"model": name, "batch": batch, "ort_ms": ort, "deepsparse_ms": ds})
    print(f"MiniLM-L6, seq {args.seq}, {os.cpu_count()} cores, medians of {args.iters} (batch 1) / "
          f"{max(5, args.iters // 4)} (batch 32) runs")
    print("| model | batch | ONNX Runtime ms | DeepSparse ms | ORT / DeepSparse |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {r['batch']} | {r['ort_ms']:.1f} | {r['deepsparse_ms']:.1f} | "
              f"{r['ort_ms'] / r['deepsparse_ms']:.2f} |")
    for batch in (1, 32):
        d, p = (next(r for r in rows if r["model"] == m and r["batch"] == batch) for m in ("dense", "pruned90"))
        print(f"batch {batch}: DeepSparse dense / pruned90 = {d['deepsparse_ms'] / p['deepsparse_ms']:.2f}x, "
              f"ORT dense / pruned90 = {d['ort_ms'] / p['ort_ms']:.2f}x")
    (args.out / "latency.json").write_text(json.dumps(rows, indent=1))
    plot(rows, args.out / "latency.png")


def plot(rows: list[dict], path: Path) -> None:
    """ORT vs DeepSparse bars per model, one panel per batch size (also used by quant_latency.py)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, batch in zip(axes, (1, 32)):
        sel = [r for r in rows if r["batch"] == batch]
        x = np.arange(len(sel))
        ax.bar(x - 0.2, [r["ort_ms"] for r in sel], 0.4, label="ONNX Runtime", color="#888888")
        ax.bar(x + 0.2, [r["deepsparse_ms"] for r in sel], 0.4, label="DeepSparse", color="#3b7dd8")
        ax.set_xticks(x, [r["model"] for r in sel], fontsize=8)
        ax.set_ylabel("median latency (ms)")
        ax.set_title(f"MiniLM-L6, batch {batch}, seq 128")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
