"""Timed calls from one or several streams, summarised with DeepSparse's benchmark keys.

Standard library and numpy only, no sparsecore import: the DeepSparse worker
(:mod:`sparsecore.deploy.deepsparse_worker`) loads this file by path inside the DeepSparse environment, so both
engines are timed by the same loop.

``sync``: one stream calls back to back. ``async`` (and DeepSparse's ``elastic``): ``streams`` threads call at
once, each back to back. Throughput counts every call that finished within the timed window over the wall time
from the first start to the last end, as ``deepsparse.benchmark`` does (the loop's own overhead included).
"""

from __future__ import annotations

import threading
import time

import numpy as np

PERCENTILES = (25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9)


def run_streams(call, seconds: float, streams: int = 1, stream_setup=None) -> list[tuple[float, float]]:
    """``(start, end)`` of every ``call(stream)`` made by ``streams`` threads (the caller's thread when 1) until
    ``seconds`` have passed; ``stream_setup(stream)`` runs first in each thread (e.g. its thread count). An
    exception in any stream is raised here after all streams stop."""
    spans: list[tuple[float, float]] = []
    lock = threading.Lock()
    errors: list[BaseException] = []
    stop = time.perf_counter() + seconds

    def stream(index: int) -> None:
        try:
            if stream_setup is not None:
                stream_setup(index)
            mine = []
            while time.perf_counter() < stop and not errors:
                start = time.perf_counter()
                call(index)
                mine.append((start, time.perf_counter()))
            with lock:
                spans.extend(mine)
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    if streams == 1:
        stream(0)
    else:
        threads = [threading.Thread(target=stream, args=(i,), daemon=True) for i in range(streams)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
    return spans


def summarize(spans: list[tuple[float, float]], items_per_call: int, scenario: str) -> dict:
    """DeepSparse's ``benchmark_result`` keys: scenario, items_per_sec, seconds_ran, iterations, median, mean,
    std (ms per call) and the percentiles ``"25.0%"`` … ``"99.9%"``."""
    if not spans:
        raise ValueError("no call finished within the timed window: run longer (--time)")
    ms = np.array([(end - start) * 1e3 for start, end in spans])
    wall = max(end for _, end in spans) - min(start for start, _ in spans)
    result = {"scenario": scenario, "items_per_sec": items_per_call * len(spans) / wall, "seconds_ran": wall,
              "iterations": len(spans), "median": float(np.median(ms)), "mean": float(ms.mean()),
              "std": float(ms.std())}
    result.update({f"{p:2.1f}%": float(v) for p, v in zip(PERCENTILES, np.percentile(ms, PERCENTILES))})
    return result
