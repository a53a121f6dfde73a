"""Imports point one way, and the runtime stands on its own.

Every ``import`` in src/sparsecore (module level or inside a function) is read with ``ast`` and mapped to the
package-level unit it names (``sparsecore.deploy``, ``sparsecore.session``, …). Each unit has a floor in
:data:`FLOORS`; an import may only point to a lower floor or stay inside its unit. The runtime units
(:data:`RUNTIME`) import only each other — and, when run, neither torch, transformers nor the onnx package.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "sparsecore"

FLOORS = {  # unit → floor; lower floors never import higher ones
    "sparsecore": 0, "errors": 0, "kernels": 0, "losses": 0, "joint_allocation": 0,
    "distributed": 1, "families": 1, "onnx_proto": 1, "file_checks": 1, "selectors": 1, "tasks": 1,
    "folders": 2, "onnx_graph": 2, "pruning": 2, "quant": 2, "report": 2,
    "deploy": 3, "modifiers": 3, "sensitivity": 3,
    "export": 4, "recipe": 4,
    "session": 5,
    "adapters": 6,
    "workflows": 7,
    "cli": 8,
    "transformers": 9, "benchmark": 9, "server": 9, "analyze": 9,
}
RUNTIME = {"deploy", "kernels", "onnx_graph", "onnx_proto", "folders", "file_checks", "families", "errors", "sparsecore"}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "sparsecore"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_units(path: Path) -> set[str]:
    """The sparsecore units ``path`` imports (``from sparsecore import x`` counts as ``x`` when x is a unit)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            if module == "sparsecore":
                found |= {f"sparsecore.{a.name}" if a.name in FLOORS else "sparsecore" for a in node.names}
            else:
                found.add(module)
    return {_unit(m) for m in found if m == "sparsecore" or m.startswith("sparsecore.")} - {_unit(name)}


def _edges():
    for path in sorted(PACKAGE.rglob("*.py")):
        for target in imported_units(path):
            yield path.relative_to(PACKAGE), _unit(_module_name(path)), target


def test_every_unit_has_a_floor():
    units = {_unit(_module_name(p)) for p in PACKAGE.rglob("*.py")}
    assert units == set(FLOORS), f"give {sorted(units - set(FLOORS))} a floor; drop {sorted(set(FLOORS) - units)}"


def test_no_import_points_up():
    upward = [f"{path}: {src} (floor {FLOORS[src]}) → {dst} (floor {FLOORS[dst]})"
              for path, src, dst in _edges() if FLOORS[dst] >= FLOORS[src]]
    assert upward == []


def test_runtime_imports_only_runtime_units():
    leaks = [f"{path}: {src} → {dst}" for path, src, dst in _edges() if src in RUNTIME and dst not in RUNTIME]
    assert leaks == []


def test_the_import_reader_sees_every_form(tmp_path, monkeypatch):
    package = tmp_path / "sparsecore"
    (package / "deploy").mkdir(parents=True)
    module = package / "deploy" / "m.py"
    module.write_text("import sparsecore.session\nfrom sparsecore import recipe, Pipeline\n"
                      "from ..export import x\nfrom . import engines\ndef f():\n    from sparsecore.cli import y\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", package)
    assert imported_units(module) == {"session", "recipe", "sparsecore", "export", "cli"}


_NO_TORCH = """
import sys
sys.modules["torch"] = None          # any import of them raises ImportError
sys.modules["transformers"] = None
sys.modules["onnx"] = None           # the runtime reads ONNX files with sparsecore.onnx_proto
from sparsecore import Pipeline
folder, texts = sys.argv[1], ["a gripping, funny film", "dull and far too long"]
for engine in ("sparsecore", "onnxruntime"):
    out = Pipeline.create(task="text-classification", model_path=folder, engine=engine)(texts)
    print(engine, [p["label"] for p in out])
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers", "onnx") and sys.modules[m] is not None)
print("loaded:", loaded)
"""


def test_the_runtime_runs_with_torch_transformers_and_onnx_blocked(tiny_deployment):
    done = subprocess.run([sys.executable, "-c", _NO_TORCH, str(tiny_deployment)], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines[:2]] == ["sparsecore", "onnxruntime"]
    assert lines[0].split(" ", 1)[1] == lines[1].split(" ", 1)[1]  # both engines give the same labels
    assert lines[2] == "loaded: []"


_BLOCKED_CLI = """
import runpy, sys
sys.modules["torch"] = None
sys.modules["transformers"] = None
sys.modules["onnx"] = None
sys.argv = ["predict", *sys.argv[1:]]
runpy.run_module("sparsecore.cli.predict", run_name="__main__")
"""


def test_the_predict_cli_runs_with_torch_transformers_and_onnx_blocked(tiny_deployment, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("a gripping, funny film\ndull and far too long\n")
    out = tmp_path / "preds.jsonl"
    done = subprocess.run([sys.executable, "-c", _BLOCKED_CLI, "--model_path", str(tiny_deployment), "--input",
                           str(texts), "--output", str(out), "--engine", "sparsecore"], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(out.read_text().splitlines()) == 2
