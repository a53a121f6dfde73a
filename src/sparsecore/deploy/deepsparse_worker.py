"""``sparsecore.benchmark -e deepsparse`` inside the DeepSparse 1.8 environment (numpy < 2: no sparsecore import).

    <deepsparse python> -P deepsparse_worker.py SPEC.json

SPEC: ``{"mode": "engine" | "pipeline", "model": ONNX file (engine) or deployment folder (pipeline),
"batch_size", "sequence_length", "feeds": NPZ of the inputs (engine: the graph's inputs, one batch),
"texts": JSON list of sentences (pipeline), "scenario" (singlestream | multistream | elastic), "streams",
"seconds", "warmup", "num_cores"}``.
Prints one JSON object: ``benchmark_result`` (:func:`stream_timing.summarize`), ``engine``, ``version``,
``fraction_of_supported_ops``. DeepSparse rewrites the input shapes of the file it compiles, so it gets a copy.
"""

import importlib.util
import itertools
import json
import shutil
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np


def _timing():
    spec = importlib.util.spec_from_file_location("_sparsecore_stream_timing",
                                                  Path(__file__).with_name("stream_timing.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    import deepsparse

    spec = json.loads(Path(sys.argv[1]).read_text())
    timing = _timing()
    batch, seq, cores = spec["batch_size"], spec["sequence_length"], spec["num_cores"]
    scheduler = {"singlestream": "single_stream", "multistream": "multi_stream"}.get(spec["scenario"], spec["scenario"])
    with tempfile.TemporaryDirectory(prefix="sparsecore-deepsparse-") as tmp:
        if spec["mode"] == "engine":
            private = Path(tmp) / "model.onnx"
            shutil.copyfile(spec["model"], private)
            feeds = np.load(spec["feeds"])
            inputs = [feeds[name] for name in feeds.files]
            engine = deepsparse.Engine(model=str(private), batch_size=batch, num_cores=cores,
                                       num_streams=spec["streams"], scheduler=scheduler,
                                       input_shapes=[[batch, seq]] * len(inputs))

            def call(_stream):
                engine.run(inputs)
            described, fraction = str(engine), getattr(engine, "fraction_of_supported_ops", None)
        else:
            private = Path(tmp) / "deployment"
            shutil.copytree(spec["model"], private)
            texts = json.loads(Path(spec["texts"]).read_text())
            chunks = itertools.cycle([texts[i:i + batch] for i in range(0, len(texts) - batch + 1, batch)])
            pipe = deepsparse.Pipeline.create(task="text-classification", model_path=str(private), batch_size=batch,
                                              sequence_length=seq, num_cores=cores, num_streams=spec["streams"],
                                              scheduler=scheduler)
            lock = threading.Lock()

            def call(_stream):
                with lock:
                    chunk = next(chunks)
                pipe(sequences=chunk)
            described, fraction = f"deepsparse.Pipeline({pipe.engine})", None
        timing.run_streams(call, spec["warmup"], spec["streams"])
        spans = timing.run_streams(call, spec["seconds"], spec["streams"])
    print(json.dumps({"benchmark_result": timing.summarize(spans, batch, spec["scenario"]), "engine": described,
                      "version": deepsparse.__version__, "fraction_of_supported_ops": fraction}))


if __name__ == "__main__":
    main()
