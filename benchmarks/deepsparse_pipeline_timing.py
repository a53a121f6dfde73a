"""Runs inside the DeepSparse environment (called by pipeline_throughput.py): DeepSparse's own text-classification
Pipeline over a list of sentences, ``BATCH`` at a time.

    <deepsparse python> deepsparse_pipeline_timing.py DEPLOYMENT TEXTS.json BATCH '[LENGTHS]' REPEATS

Prints one JSON line {"sentences_per_s": median over REPEATS passes after a warm-up pass, "labels": [...]}.
A partial last batch is padded with copies of its last sentence (a fixed-batch engine needs full batches);
the padding's labels are dropped and its time counted.
"""

import json
import shutil
import sys
import tempfile
from pathlib import Path

from deepsparse import Pipeline
from sentence_passes import timed_passes

folder, texts_path, batch, lengths, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4]), \
    int(sys.argv[5])
texts = json.loads(Path(texts_path).read_text())
with tempfile.TemporaryDirectory() as tmp:
    private = Path(tmp) / "deployment"  # DeepSparse rewrites the input shapes of the file it loads: use a copy
    shutil.copytree(folder, private)
    pipe = Pipeline.create(task="text-classification", model_path=str(private), batch_size=batch,
                           sequence_length=lengths if len(lengths) > 1 else lengths[0])

    def run(chunk):  # a fixed-batch engine: pad the last chunk with copies of its last sentence
        return pipe(sequences=chunk + [chunk[-1]] * (batch - len(chunk))).labels[:len(chunk)]

    speed, labels = timed_passes(run, texts, batch, repeats)
print(json.dumps({"sentences_per_s": speed, "labels": labels}))
