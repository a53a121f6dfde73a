"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


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
