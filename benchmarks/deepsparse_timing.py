"""Runs inside the DeepSparse environment (called by deploy_latency.py): median latency of deepsparse.Engine.

    <deepsparse python> deepsparse_timing.py MODEL.onnx BATCH SEQ ITERATIONS [--serve]
Prints one JSON line {"median_ms": ..., "p90_ms": ...}; with ``--serve``, after the warm-up it answers timing
requests on stdin instead (alternated_timing.serve: engines timed in turns).
"""

import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from alternated_timing import serve
from deepsparse import Engine

path, batch, seq, iters = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
with tempfile.TemporaryDirectory() as tmp:
    private = Path(tmp) / "model.onnx"  # DeepSparse rewrites input shapes in place: use a copy
    shutil.copyfile(path, private)
    engine = Engine(model=str(private), batch_size=batch, input_shapes=[[batch, seq]] * 3)
    rng = np.random.default_rng(0)
    feeds = [rng.integers(1000, 30000, (batch, seq)).astype(np.int64), np.ones((batch, seq), np.int64),
             np.zeros((batch, seq), np.int64)]
    for _ in range(3):
        engine.run(feeds)
    if "--serve" in sys.argv[5:]:
        serve(lambda: engine.run(feeds))
        sys.exit(0)
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        engine.run(feeds)
        times.append((time.perf_counter() - t) * 1e3)
print(json.dumps({"median_ms": statistics.median(times), "p90_ms": sorted(times)[int(0.9 * (len(times) - 1))]}))
