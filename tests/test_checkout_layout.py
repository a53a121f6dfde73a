"""Running Python from the checkout root shadows nothing: every importable name lives under src/.

A folder with ``__init__.py`` (or a ``.py`` file) in the checkout root is importable whenever the root is on
``sys.path`` (``python -m …``, ``python -c …``, ``python -m pytest``) and wins over an installed
distribution of the same name — a top-level ``kernels/`` hid the ``kernels`` distribution that transformers
imports. These tests run the commands users type, from the root, in subprocesses.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*argv: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def _root_import_names(root: Path = ROOT) -> set[str]:
    """Names Python could import from ``root``: packages, modules and namespace folders."""
    names = set()
    for entry in root.iterdir():
        if entry.name.startswith("."):
            continue
        if entry.is_dir() and entry.name.isidentifier():
            names.add(entry.name)
        elif entry.suffix == ".py" and entry.stem.isidentifier():
            names.add(entry.stem)
    return names


def test_no_regular_package_or_module_in_the_checkout_root():
    offenders = sorted(p.name for p in ROOT.iterdir()
                       if (p.is_dir() and (p / "__init__.py").exists()) or p.suffix in (".py", ".so"))
    assert offenders == [], f"move {offenders} under src/sparsecore/ (they shadow installed names)"


def test_no_root_folder_shares_a_name_with_an_installed_distribution():
    installed = set(importlib.metadata.packages_distributions())  # top-level import name → distributions
    clashes = sorted(_root_import_names() & installed)
    assert clashes == [], f"{clashes} in the checkout root share an import name with installed distributions"


def test_the_check_sees_a_shadowing_folder(tmp_path):
    """The name check is not vacuous: a root folder named like an installed distribution is caught."""
    (tmp_path / "kernels").mkdir()
    (tmp_path / "numpy.py").touch()
    assert {"kernels", "numpy"} <= _root_import_names(tmp_path) & set(importlib.metadata.packages_distributions())


def test_transformers_trainer_imports_from_the_checkout_root():
    done = _run("-c", "from transformers import Trainer; import kernels; print(kernels.__file__)")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "site-packages" in done.stdout, done.stdout  # the distribution, not a folder of the checkout


def test_sparseml_named_module_help_from_the_checkout_root():
    done = _run("-m", "sparsecore.transformers.text_classification", "--help")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--recipe" in done.stdout and "--distill_teacher" in done.stdout


@pytest.mark.parametrize("module", ["sparsecore.transformers.export_onnx", "sparsecore.cli.deepsparse_env"])
def test_other_entry_modules_answer_help_from_the_checkout_root(module):
    done = _run("-m", module, "--help")
    assert done.returncode == 0, done.stderr[-2000:]


def test_one_training_step_through_python_m_from_the_checkout_root(tiny_model, tmp_path):
    """A real (tiny) model loads through transformers — which imports the ``kernels`` distribution — and trains."""
    out = tmp_path / "run"
    done = _run("-m", "sparsecore.transformers.text_classification", "--model_name_or_path", str(tiny_model),
                "--task_name", "sst2", "--do_train", "--max_steps", "1", "--max_train_samples", "8",
                "--per_device_train_batch_size", "4", "--max_seq_length", "32", "--output_dir", str(out),
                "--save_strategy", "no", "--report_to", "none", "--disable_tqdm", "true")
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / "model.safetensors").is_file() and (out / "sparsecore_training.json").is_file()
