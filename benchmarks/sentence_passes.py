"""Timed passes over a list of sentences (standard library only: also imported inside the DeepSparse environment)."""

from __future__ import annotations

import statistics
import time


def timed_passes(run, texts: list[str], batch: int, repeats: int) -> tuple[float, list[str]]:
    """Median sentences/s over ``repeats`` passes after one warm-up pass, and the labels of the last pass.
    ``run(chunk)`` returns the labels of up to ``batch`` sentences."""
    def one_pass() -> list[str]:
        labels = []
        for i in range(0, len(texts), batch):
            labels += run(texts[i:i + batch])
        return labels

    one_pass()
    speeds = []
    for _ in range(repeats):
        start = time.perf_counter()
        labels = one_pass()
        speeds.append(len(texts) / (time.perf_counter() - start))
    return statistics.median(speeds), labels
