"""The documentation: the MkDocs site builds with --strict, and the README stays a short front page."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The README opens with these two commands, in this order: the main job, then the test suite (what .ci/run runs).
MAIN_JOB = "python3 -m venv .venv && .venv/bin/pip install -c constraints.txt -e . && .venv/bin/sparsecore-demo"
TEST_SUITE = ('python3 -m venv .venv && .venv/bin/pip install -c constraints.txt -e ".[dev]" && '
              ".venv/bin/python -m sparsecore.cli.deepsparse_env && .venv/bin/python -m pytest -q")
README_MAX_BYTES = 12_288


def test_mkdocs_build_strict_passes(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})  # no Material banner in the log
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"


def test_readme_is_short_and_opens_with_the_two_commands():
    """At most 12 KB, and its first two code blocks are the main job and the test suite, in that order."""
    raw = (ROOT / "README.md").read_bytes()
    assert len(raw) <= README_MAX_BYTES, f"README.md has {len(raw):,} bytes; move text to docs/"
    blocks = [b.split("\n", 1)[1] for b in raw.decode("utf-8").split("```")[1::2]]  # code block bodies
    assert [b.strip() for b in blocks[:2]] == [MAIN_JOB, TEST_SUITE]


def test_ci_runs_exactly_the_readme_test_command():
    lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[-1] == TEST_SUITE
