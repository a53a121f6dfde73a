"""Run inside the DeepSparse 1.8 environment (not collected by pytest: no test_ prefix).

    <deepsparse python> deepsparse_logits.py MODEL_COPY.onnx FEEDS.npz OUT.npz BATCH

Logits from deepsparse.Engine for every row of FEEDS (the graph's inputs, e.g. input_ids/attention_mask
[/token_type_ids], one fixed sequence length, row count a multiple of BATCH).
"""

import sys

import numpy as np
import onnx
from deepsparse import Engine

model, feeds_path, out_path, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
feeds = np.load(feeds_path)
names = [i.name for i in onnx.load(model, load_external_data=False).graph.input]
rows, seq = feeds["input_ids"].shape
engine = Engine(model=model, batch_size=batch, input_shapes=[[batch, seq]] * len(names))
logits = [engine.run([feeds[n][i:i + batch] for n in names])[0] for i in range(0, rows, batch)]
np.savez(out_path, logits=np.concatenate(logits))
