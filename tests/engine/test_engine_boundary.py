"""The engine never imports Hugging Face transformers; recipes never reach Python eval."""

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "sparsecore"
FRONT_ENDS = {"adapters", "cli"}  # the only package code that imports transformers


def engine_files():
    for path in PACKAGE.rglob("*.py"):
        if FRONT_ENDS.isdisjoint(path.relative_to(PACKAGE).parts[:-1]):
            yield path


def test_no_transformers_import_in_engine_sources():
    pattern = re.compile(r"^\s*(import transformers|from transformers\b)", re.M)
    offenders = [str(p.relative_to(ROOT)) for p in engine_files() if pattern.search(p.read_text())]
    assert offenders == []


def test_importing_the_engine_loads_no_transformers():
    code = ("import sys, sparsecore, sparsecore.session, sparsecore.recipe, sparsecore.modifiers, "
            "sparsecore.pruning.apply, sparsecore.tasks, sparsecore.report, sparsecore.losses, sparsecore.kernels; "
            "print('transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _forbidden_calls(tree):
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id in ("eval", "exec"):
            yield f.id
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
            name = f"{f.value.id}.{f.attr}"
            if name in ("pickle.load", "pickle.loads", "yaml.unsafe_load"):
                yield name
            if name == "torch.load" and not any(k.arg == "weights_only" and getattr(k.value, "value", None) is True
                                                for k in node.keywords):
                yield "torch.load without weights_only=True"


def test_no_python_eval_or_pickle_in_package():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        offenders += [f"{path.name}: {c}" for c in _forbidden_calls(ast.parse(path.read_text()))]
    assert offenders == []


def test_the_forbidden_call_check_works():
    tree = ast.parse("eval('1')\nimport pickle\npickle.load(f)\ntorch.load(p)\ntorch.load(p, weights_only=True)")
    assert list(_forbidden_calls(tree)) == ["eval", "pickle.load", "torch.load without weights_only=True"]
