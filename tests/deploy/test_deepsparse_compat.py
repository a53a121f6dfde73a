"""Our export in the real DeepSparse 1.8 (its own environment, a subprocess).

The environment is built by `python -m sparsecore.cli.deepsparse_env` (CI does it); set
SPARSECORE_DEEPSPARSE_PYTHON to use another interpreter.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
from deepsparse_run import ROOT, deepsparse_python

from sparsecore import Pipeline
from sparsecore.tasks import load_data, sample_glue_dir


def test_deepsparse_loads_our_export_and_agrees_on_all_sst2_validation_rows(pruned_minilm, tmp_path, torch_logits):
    py = deepsparse_python()
    split = load_data("sst2", sample_glue_dir()).evals["validation"]
    texts = [t[0] for t in split.texts]
    assert len(texts) == 872
    copy = tmp_path / "deployment"  # DeepSparse rewrites input shapes of the file it loads: give it a copy
    shutil.copytree(pruned_minilm / "deployment", copy)
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), NM_DISABLE_ANALYTICS="1")
    proc = subprocess.run([str(py), str(Path(__file__).with_name("deepsparse_predict.py")), str(copy),
                           str(tmp_path / "texts.json"), str(tmp_path / "out.json")],
                          capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads((tmp_path / "out.json").read_text())


    names = json.loads((pruned_minilm / "config.json").read_text())["id2label"]
    torch_labels = [names[str(i)] for i in torch_logits(pruned_minilm, texts).argmax(1)]
    ort_labels = [r["label"] for r in Pipeline.create(model_path=pruned_minilm, batch_size=32)(texts)]
    labels = {"pytorch": torch_labels, "onnxruntime": ort_labels, **got}
    agreement = {f"{a} vs {b}": float(np.mean([x == y for x, y in zip(labels[a], labels[b])]))
                 for a in labels for b in labels if a < b}
    print(json.dumps(agreement, indent=1))
    assert all(len(v) == 872 for v in labels.values())
    assert min(agreement.values()) >= 0.995, agreement
    assert len(set(torch_labels)) == 2  # a trained classifier, not a constant one
