"""The lock of tested versions (constraints.txt, deepsparse_lock.txt) is complete, exact and agrees with pyproject.

CI and both README commands install with ``-c constraints.txt``, so the environment this suite runs in is the
locked one; ``tools/relock`` runs the suite on the newest versions before it rewrites the lock, with
``SPARSECORE_RELOCK=1`` (the installed-equals-locked check is skipped there, the others still hold).
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "constraints.txt"
DEEPSPARSE_LOCK = ROOT / "src" / "sparsecore" / "cli" / "deepsparse_lock.txt"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def read_lock(path: Path) -> dict[str, str]:
    """name → exact version; every line that is not a comment must be ``name==version``."""
    pins = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][A-Za-z0-9.!+-]*)", line.strip())
        assert match, f"{path.name}: not an exact pin: {line!r}"
        pins[canonicalize_name(match[1])] = match[2]
    return pins


def required_closure(root: str, extras: tuple[str, ...]) -> set[str]:
    """Every distribution ``root[extras]`` needs on this interpreter (markers evaluated), found by metadata."""
    seen, todo = set(), [(root, extras)]
    while todo:
        name, wanted = todo.pop()
        for text in metadata.requires(name) or []:
            req = Requirement(text)
            if req.marker and not any(req.marker.evaluate({"extra": e}) for e in ("", *wanted)):
                continue
            key = canonicalize_name(req.name)
            if key == canonicalize_name(root):
                todo.append((name, tuple(req.extras)))
            elif key not in seen:
                seen.add(key)
                todo.append((req.name, tuple(req.extras)))
    return seen


@pytest.mark.parametrize("path", [LOCK, DEEPSPARSE_LOCK], ids=["main", "deepsparse"])
def test_lock_pins_every_line_exactly_and_torch_to_the_cpu_build(path):
    pins = read_lock(path)
    assert pins["torch"] == "2.13.0"  # the on-disk CPU build; a local tag (+cpu) would not resolve elsewhere


def test_lock_covers_everything_the_dev_install_needs():
    missing = sorted(required_closure("sparsecore", ("dev",)) - set(read_lock(LOCK)))
    assert missing == [], f"not in constraints.txt: {missing} — run tools/relock"


def test_pyproject_ranges_admit_the_locked_versions():
    pins = read_lock(LOCK)
    project = PYPROJECT["project"]
    texts = project["dependencies"] + [r for group in project["optional-dependencies"].values() for r in group]
    outside = []
    for req in map(Requirement, texts):
        key = canonicalize_name(req.name)
        if key != "sparsecore" and not req.specifier.contains(pins[key], prereleases=True):
            outside.append(f"{req} (locked {pins[key]})")
    assert outside == []


def test_build_backend_pin_is_the_locked_one():
    (backend,) = PYPROJECT["build-system"]["requires"]
    req = Requirement(backend)
    assert str(req.specifier) == f"=={read_lock(LOCK)['setuptools']}"


def test_the_lock_reader_refuses_a_range(tmp_path):
    (tmp_path / "c.txt").write_text("# header\nnumpy==2.4.6\ntorch>=2\n")
    with pytest.raises(AssertionError, match="not an exact pin: 'torch>=2'"):
        read_lock(tmp_path / "c.txt")


@pytest.mark.skipif(os.environ.get("SPARSECORE_RELOCK") == "1", reason="tools/relock runs on the newest versions")
def test_this_environment_is_the_locked_one():
    pins = read_lock(LOCK)
    drift = []
    for name in sorted(required_closure("sparsecore", ("dev",))):
        installed = metadata.version(name).split("+")[0]
        if installed != pins[name]:
            drift.append(f"{name} {installed} (lock {pins[name]})")
    assert drift == [], f"installed versions differ from constraints.txt: {drift} — install with -c constraints.txt"
