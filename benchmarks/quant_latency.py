"""Latency and size of fp32 vs int8 exports of the same pruned model, ONNX Runtime and DeepSparse side by side.

    python benchmarks/quant_latency.py --model fp32-pruned80=runs/sst2-accuracy/gmp80 \
        --model int8-pruned80=runs/qat/pruned80-qat [--model int8-dense=...] [--iters 30]

Each --model is NAME=TRAINED_FOLDER; folders without deployment/ are exported first (quantized folders
in the integer form). Times batch 1 and 32 at sequence length 128 — ORT in this process, DeepSparse in
its own environment, one at a time — and reports file size raw and gzip-compressed (pruned zeros
compress: the compressed size is what sparsity saves on disk). Ratios are against the first model.
Writes quant_latency.json and quant_latency.png into --out.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
from pathlib import Path

from deploy_latency import deepsparse_ms, ort_ms, plot

from sparsecore.cli.deepsparse_env import DEFAULT, python_of
from sparsecore.workflows import export


def sizes_mb(path: Path) -> tuple[float, float]:
    raw = path.read_bytes()
    return len(raw) / 1e6, len(gzip.compress(raw, compresslevel=6)) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", required=True, help="NAME=TRAINED_FOLDER (repeat)")
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--out", type=Path, default=Path("runs/quant-latency"))
    args = ap.parse_args()
    models = {}
    for spec in args.model:
        name, _, folder = spec.partition("=")
        onnx_path = Path(folder) / "deployment" / "model.onnx"
        if not onnx_path.is_file():
            export(model_path=folder)
        models[name] = onnx_path
    ds_python = Path(os.environ.get("SPARSECORE_DEEPSPARSE_PYTHON", python_of(DEFAULT)))
    rows = []
    for batch in (1, 32):
        iters = args.iters if batch == 1 else max(5, args.iters // 4)
        for name, path in models.items():
            raw, packed = sizes_mb(path)
            ds = deepsparse_ms(ds_python, path, batch, args.seq, iters) if ds_python.is_file() else float("nan")
            rows.append({"model": name, "batch": batch, "size_mb": raw, "gzip_mb": packed,
                         "ort_ms": ort_ms(path, batch, args.seq, iters), "deepsparse_ms": ds})
    print(f"seq {args.seq}, {os.cpu_count()} cores, medians of {args.iters} (batch 1) / "
          f"{max(5, args.iters // 4)} (batch 32) runs; ratios vs {next(iter(models))}")
    print("| model | size MB (gzip) | batch | ORT ms | DeepSparse ms | ORT speed-up | DeepSparse speed-up |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        base = next(b for b in rows if b["batch"] == r["batch"])
        print(f"| {r['model']} | {r['size_mb']:.1f} ({r['gzip_mb']:.1f}) | {r['batch']} | {r['ort_ms']:.1f} | "
              f"{r['deepsparse_ms']:.1f} | {base['ort_ms'] / r['ort_ms']:.2f}× | "
              f"{base['deepsparse_ms'] / r['deepsparse_ms']:.2f}× |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "quant_latency.json").write_text(json.dumps(rows, indent=1))
    plot(rows, args.out / "quant_latency.png")



if __name__ == "__main__":
    main()
