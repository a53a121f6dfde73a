"""Run inside the DeepSparse 1.8 environment (not collected by pytest: no test_ prefix).

    <deepsparse python> deepsparse_predict.py DEPLOYMENT_COPY TEXTS.json OUT.json

Labels from DeepSparse's *own* transformers Pipeline and from sparsecore.Pipeline(engine="deepsparse").
"""

import json
import sys

from deepsparse import Pipeline as DeepSparsePipeline

folder, texts_path, out_path = sys.argv[1:4]
texts = json.load(open(texts_path))
theirs = DeepSparsePipeline.create(task="text-classification", model_path=folder, batch_size=1, sequence_length=128)
their_labels = [theirs(sequences=[t]).labels[0] for t in texts]

from sparsecore import Pipeline  # noqa: E402  (PYTHONPATH=<checkout>/src: the runtime runs on numpy 1.x too)

ours = Pipeline.create(task="text-classification", model_path=folder, engine="deepsparse", batch_size=16,
                       sequence_length=128)
our_labels = [r["label"] for r in ours(texts)]
json.dump({"deepsparse_pipeline": their_labels, "sparsecore_deepsparse": our_labels}, open(out_path, "w"))
