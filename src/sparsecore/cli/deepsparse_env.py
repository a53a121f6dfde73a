"""Build the DeepSparse 1.8 environment (its own venv: it needs numpy<2, onnx<1.15, transformers<4.40).

    python -m sparsecore.cli.deepsparse_env [--path .venv-deepsparse] [--unlocked]

Installs torch==2.13.0 first (otherwise accelerate would pull a multi-GB CUDA torch), then
deepsparse[transformers]==1.8.0 with numpy<2 and pyarrow<20 (pyarrow 26 refuses numpy 1.x), every package at
the version in ``deepsparse_lock.txt`` beside this file (the versions the compatibility tests passed with;
``--unlocked`` resolves the newest instead, which is how ``tools/relock`` moves the lock forward).
Idempotent: an existing environment whose deepsparse imports is kept. Prints the interpreter path.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import venv
from pathlib import Path

REQUIREMENTS = (["torch==2.13.0"], ["deepsparse[transformers]==1.8.0", "numpy<2", "pyarrow<20"])
LOCK = Path(__file__).with_name("deepsparse_lock.txt")
_CHECKOUT = Path(__file__).resolve().parents[3]  # src/sparsecore/cli → the checkout root
# in a checkout (editable install) the env lives at its root; otherwise in the current folder
DEFAULT = (_CHECKOUT if (_CHECKOUT / "pyproject.toml").is_file() else Path.cwd()) / ".venv-deepsparse"


def python_of(path: Path) -> Path:
    return path / "bin" / "python"


def works(path: Path) -> bool:
    py = python_of(path)
    return py.is_file() and subprocess.run([str(py), "-c", "import deepsparse, onnx, transformers"],
                                           capture_output=True).returncode == 0


def build(path: Path, locked: bool = True) -> Path:
    if works(path):
        return python_of(path)
    if path.exists() and any(path.iterdir()) and not (path / "pyvenv.cfg").is_file():
        raise SystemExit(f"error: {path} exists and is not a virtual environment — pass another --path")
    venv.EnvBuilder(with_pip=True, clear=path.exists()).create(path)
    for packages in REQUIREMENTS:
        lock = ["--constraint", str(LOCK)] if locked else []
        done = subprocess.run([str(python_of(path)), "-m", "pip", "install", "--quiet", *lock, *packages])
        if done.returncode:
            raise SystemExit(f"error: pip could not install {' '.join(packages)} into {path} (exit "
                             f"{done.returncode}) — see pip's output above")
    if not works(path):
        raise SystemExit(f"error: the DeepSparse environment at {path} does not import deepsparse — "
                         "see the pip output above")
    return python_of(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", type=Path, default=DEFAULT, help=f"where to build it (default {DEFAULT})")
    parser.add_argument("--unlocked", action="store_true", help=f"resolve the newest versions instead of {LOCK.name}")
    args = parser.parse_args(argv)
    print(build(args.path.resolve(), locked=not args.unlocked))


if __name__ == "__main__":
    sys.exit(main())
