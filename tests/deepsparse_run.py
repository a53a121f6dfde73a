"""Run code in the DeepSparse 1.8 environment (a subprocess), for the tests that compare against it.

The environment is built by `python -m sparsecore.cli.deepsparse_env` (CI does it); set
SPARSECORE_DEEPSPARSE_PYTHON to use another interpreter. Tests skip with that reason when it is absent.
"""

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from sparsecore.cli.deepsparse_env import DEFAULT, python_of

ROOT = Path(__file__).resolve().parents[1]


def deepsparse_python() -> Path:
    path = Path(os.environ.get("SPARSECORE_DEEPSPARSE_PYTHON", python_of(DEFAULT)))
    if not path.is_file():
        pytest.skip(f"DeepSparse environment not found at {path}: build it with "
                    "`python -m sparsecore.cli.deepsparse_env` (or set SPARSECORE_DEEPSPARSE_PYTHON)")
    return path


def deepsparse_engine_logits(onnx_file: Path, feeds: dict, workdir: Path, batch: int) -> np.ndarray:
    """Logits of ``deepsparse.Engine`` (its own environment) on a private copy of ``onnx_file``."""
    py = deepsparse_python()
    np.savez(workdir / "feeds.npz", **feeds)
    copy = workdir / "model.onnx"  # DeepSparse rewrites the input shapes of the file it loads
    shutil.copyfile(onnx_file, copy)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), NM_DISABLE_ANALYTICS="1")
    proc = subprocess.run([str(py), str(Path(__file__).parent / "deploy" / "deepsparse_logits.py"), str(copy),
                           str(workdir / "feeds.npz"), str(workdir / "out.npz"), str(batch)],
                          capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return np.load(workdir / "out.npz")["logits"]
