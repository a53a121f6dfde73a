"""What the whole-model A/B benchmarks share (``fp32_panels.py``, ``int8_block4_layout.py``): engines built from one
export and timed in alternation in one process — this VM's speed drifts by more than the differences within minutes,
so only interleaved timings compare — their command line, and their results file."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def feeds(batch: int, seq: int) -> dict:
    """Random token ids (fixed seed), every token real, for a batch of ``seq``-token sequences."""
    rng = np.random.default_rng(0)
    return {"input_ids": rng.integers(1000, 30000, (batch, seq)), "attention_mask": np.ones((batch, seq), np.int64),
            "token_type_ids": np.zeros((batch, seq), np.int64)}


def onnx_of(folder: Path) -> Path:
    """The model.onnx of a trained folder (its deployment/) or of a deployment folder."""
    path = folder / "deployment" / "model.onnx"
    return path if path.is_file() else folder / "model.onnx"


def alternate(engines: dict, batch: int, seq: int, rounds: int) -> tuple[dict, dict]:
    """``(logits, best seconds)`` per engine name: one call each for the logits, then ``rounds`` rounds of one call
    per engine in turn, the best of each kept."""
    inputs = feeds(batch, seq)
    logits = {name: engine(inputs) for name, engine in engines.items()}
    best = {name: float("inf") for name in engines}
    for _ in range(rounds):
        for name, engine in engines.items():
            start = time.perf_counter()
            engine(inputs)
            best[name] = min(best[name], time.perf_counter() - start)
    return logits, best


def parser(doc: str) -> argparse.ArgumentParser:
    """The shared flags: folders, ``--batches``, ``--seq``, ``--rounds``, ``--results``."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", type=Path, nargs="+", help="trained folders with deployment/, or deployment folders")
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=5, help="alternations; batch 1 runs ten times as many")
    ap.add_argument("--results", type=Path, help="write the rows and the machine as JSON here")
    return ap


def runs(args) -> list[tuple[Path, int, int]]:
    """``(folder, batch, rounds)`` for every folder and batch of the command line."""
    return [(folder, batch, args.rounds * (10 if batch == 1 else 1))
            for folder in args.folders for batch in (int(b) for b in args.batches.split(","))]


def write_results(path: Path | None, rows: list[dict]) -> None:
    """The rows, the machine they ran on and the command line as JSON at ``path`` (nothing when None)."""
    if path is None:
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from engine_bench import machine

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine(), "rows": rows, "command": " ".join(sys.argv)}, indent=1) + "\n")
