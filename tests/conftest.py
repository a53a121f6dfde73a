"""Shared test fixtures."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# Converted tables and tokenized features go to a cache of this test session (datasets reads the variable when
# imported, so it is set before any test imports it), never to the user's ~/.cache; and nothing reaches the hub.
_DATA_CACHE = tempfile.mkdtemp(prefix="sparsecore-test-cache-")
atexit.register(shutil.rmtree, _DATA_CACHE, ignore_errors=True)
os.environ["HF_DATASETS_CACHE"] = _DATA_CACHE
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# fp32 panel widths come from the rule, not from timing on a busy test machine (tests/kernels/test_panel_tuning.py
# turns timing on where it is the subject), and nothing is written to the user's ~/.cache/sparsecore
os.environ["SPARSECORE_TUNE"] = "0"
os.environ["SPARSECORE_CACHE_DIR"] = _DATA_CACHE


@pytest.fixture(scope="session")
def glue_dir() -> Path:
    """The full GLUE data: $SPARSECORE_GLUE_DIR, else <repo>/../shared/data/glue, else skip."""
    env = os.environ.get("SPARSECORE_GLUE_DIR", "").strip()
    if env:
        return Path(env)
    local = REPO_ROOT.parent / "shared" / "data" / "glue"
    if local.is_dir():
        return local
    pytest.skip("full GLUE data not found: set SPARSECORE_GLUE_DIR to a folder laid out like shared/data/glue")


def built_once(tmp_path_factory, name: str, build) -> Path:
    """``build(folder)`` run once per test run, whatever the number of xdist workers: the first worker to ask builds
    ``<shared temp>/<name>/model`` under a file lock, the others wait for it and use the same folder (a session
    fixture would build it once per worker). Tests treat the folder as read-only (they copy it to change it)."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name
    folder, done = root / "model", root / "built"
    with FileLock(str(root) + ".lock"):
        if not done.exists():
            shutil.rmtree(root, ignore_errors=True)  # a build that failed half-way is started again
            root.mkdir(parents=True)
            build(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def pruned_minilm(tmp_path_factory):
    """A real MiniLM, 80% GMP-pruned while fine-tuned on 400 bundled SST-2 rows (about 20 s), exported; built once
    for all workers."""
    return built_once(tmp_path_factory, "pruned-minilm", _prune_minilm)


def _prune_minilm(out: Path) -> None:
    from sparsecore.workflows import export, train

    train(model_name_or_path="minilm", task_name="sst2", recipe="minilm-gmp80-demo",
          recipe_args="num_epochs=1,pruning_start_epoch=0,pruning_end_epoch=0.7,init_lr=1e-4", max_train_samples=400,
          max_eval_samples=8, per_device_train_batch_size=16, pad_to_max_length=False, max_seq_length=128,
          save_strategy="no", logging_strategy="no", disable_tqdm=True, do_train=True, output_dir=out)
    export(model_path=out, num_export_samples=2)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A random-init 2-layer BERT classifier with MiniLM's tokenizer, saved as safetensors (seconds to train)."""
    from tiny_models import save_tiny_bert

    return save_tiny_bert(tmp_path_factory.mktemp("tiny") / "bert")


@pytest.fixture(scope="session")
def tiny_deployment(tiny_model, tmp_path_factory):
    """The tiny model pruned to 50% one-shot and exported: its deployment folder."""
    from tiny_models import export_half_pruned

    return export_half_pruned(tiny_model, tmp_path_factory.mktemp("dep") / "m")
