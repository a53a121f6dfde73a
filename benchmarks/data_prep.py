"""Data preparation at scale: the list-based reader sparsecore had before `datasets` vs the Arrow path, side by side.

    python benchmarks/data_prep.py                     # 2,000,000 rows (SST-2 rows repeated with variations)
    python benchmarks/data_prep.py --rows 100000       # a quicker look

Each measurement runs in a fresh Python process that first loads MiniLM and its tokenizer (the "model"
baseline), then prepares the training data for training: read the CSV, encode labels, tokenize to features.

  lists     what ``load_data`` + ``tokenize_split`` did before: every row in Python lists, one tokenizer call,
            a list of feature dicts (``sparsecore.tasks.read_table`` is that reader, still used by predict)
  arrow     the current path, cold cache: CSV → memory-mapped Arrow table → ``Dataset.map`` features on disk
  arrow ×2  the same with ``preprocessing_num_workers=2``
  warm      the current path again with the cache filled by the run before

Reported: wall time, rows/s, peak resident memory above the model baseline (``ru_maxrss``) and, with 2
workers, the largest worker's own peak (a forked worker shares the parent's pages, so it is an upper bound).
Goals (issue 16): arrow's memory growth ≤ 500 MB at 2M rows; warm ≥ 10× faster than arrow; arrow no slower
than lists. Needs ``../shared/data/glue/sst2`` (or ``--glue_dir``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

VARIATIONS = ("", " indeed", " , really", " !", " , i think", " overall", " ( truly )", " , again")


def make_csv(src: Path, out: Path, rows: int, seed: int = 0) -> None:
    """``rows`` training rows: SST-2 sentences in a shuffled order, each with a short phrase appended or a word
    dropped, so no two consecutive copies are the same text."""
    with open(src, newline="", encoding="utf-8") as f:
        base = list(csv.reader(f, delimiter="\t"))[1:]
    rng = np.random.default_rng(seed)
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["sentence", "label"])
        for start in range(0, rows, len(base)):
            order = rng.permutation(len(base))[: rows - start]
            kinds = rng.integers(0, len(VARIATIONS) + 1, size=len(order))
            for i, k in zip(order, kinds):
                text, label = base[i]
                if k == len(VARIATIONS):  # drop one word
                    words = text.split()
                    if len(words) > 1:
                        del words[int(rng.integers(len(words)))]
                    text = " ".join(words)
                else:
                    text = text.rstrip() + VARIATIONS[k]
                w.writerow([text, label])


CHILD = r"""
import json, resource, sys, time
from sparsecore.adapters.models import load_classifier, load_tokenizer, minilm_path
mode, path, cache = sys.argv[1], sys.argv[2], sys.argv[3]
tokenizer = load_tokenizer(str(minilm_path()))
model = load_classifier(str(minilm_path()), "single_label_classification", ["negative", "positive"])
import numpy as np, datasets
from sparsecore.tasks import load_data, read_table
from sparsecore.workflows.features import tokenize_split
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
if mode == "lists":
    table = read_table(path)
    texts, labels = table["sentence"], np.array([int(v) for v in table["label"]])
    enc = tokenizer(texts, truncation=True, max_length=128)
    feats = [{**{k: v[i] for k, v in enc.items()}, "labels": int(labels[i])} for i in range(len(texts))]
    n = len(feats)
else:
    data = load_data(task_name="sst2", train_file=path, validation_file=sys.argv[4], cache_dir=cache)
    feats = tokenize_split(data.train, tokenizer, 128, False, cache_dir=cache,
                           num_proc=2 if mode == "arrow2" else None)
    n = len(feats)
    sum(len(x) for x in feats.select(range(0, n, max(n // 1000, 1)))["input_ids"])  # read features back
elapsed = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the largest tokenizing worker, if any
print(json.dumps({"rows": n, "seconds": elapsed, "model_rss_mb": base / 1024, "growth_mb": (peak - base) / 1024,
                  "worker_peak_mb": worker / 1024}))
"""


def measure(mode: str, path: Path, cache: Path, validation: Path) -> dict:
    env = dict(os.environ, TOKENIZERS_PARALLELISM="true")
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(path), str(cache), str(validation)],
                         capture_output=True, text=True, env=env)
    if out.returncode:
        raise SystemExit(f"{mode} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--glue_dir", default=os.environ.get("SPARSECORE_GLUE_DIR", "../shared/data/glue"))
    parser.add_argument("--work", default=None, help="scratch folder (default: a temporary one, removed after)")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    sst2 = Path(args.glue_dir) / "sst2"
    work = Path(args.work or tempfile.mkdtemp(prefix="data-prep-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        path = work / f"train-{args.rows}.csv"
        if not path.exists():
            make_csv(sst2 / "train.tsv", path, args.rows)
        print(f"{path}: {args.rows:,} rows, {path.stat().st_size / 2**20:.0f} MiB", flush=True)
        results = {}
        for label, mode, cache in (("lists (before)", "lists", "unused"), ("arrow, cold cache", "arrow", "c1"),
                                   ("arrow, cold, 2 workers", "arrow2", "c2"), ("arrow, warm cache", "arrow", "c1")):
            results[label] = measure(mode, path, work / cache, sst2 / "validation.tsv")
            print(label, results[label], flush=True)
        print(table(results, args.rows))
        if args.json:
            Path(args.json).write_text(json.dumps({"rows": args.rows, "results": results}, indent=1))
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


def table(results: dict, rows: int) -> str:
    cold = results["arrow, cold cache"]["seconds"]
    lines = [f"| {rows:,} rows | prepare (s) | rows/s | peak RSS growth over the model (MB) | "
             "largest worker's peak RSS (MB) | vs arrow cold |", "|---|---:|---:|---:|---:|---:|"]
    for label, r in results.items():
        worker = f"{r['worker_peak_mb']:.0f}" if r.get("worker_peak_mb") else "–"
        lines.append(f"| {label} | {r['seconds']:.1f} | {r['rows'] / r['seconds']:,.0f} | {r['growth_mb']:.0f} | "
                     f"{worker} | {cold / r['seconds']:.2f}× |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
