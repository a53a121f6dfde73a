"""The deployment folder: written whole or not at all."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sparsecore.errors import SparsecoreError

log = logging.getLogger("sparsecore")


def clean_leftovers(target: Path) -> list[str]:
    """Remove what an interrupted run of :func:`atomic_folder` left next to ``target`` (a killed process cannot
    clean up): temporary ``.<name>-*`` siblings; a previous folder parked as ``.<name>-old-*`` is put back first
    when ``target`` itself is missing. Returns what was done, one phrase each."""
    done = []
    for path in sorted(target.parent.glob(f".{target.name}-*")):
        if not path.is_dir() or path.is_symlink():
            continue
        if "-old-" in path.name and not target.exists():
            path.rename(target)
            done.append(f"restored {target.name}/ from {path.name}")
        else:
            shutil.rmtree(path, ignore_errors=True)
            done.append(f"removed {path.name}")
    return done


@contextmanager
def atomic_folder(target: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces ``target``, on error it is removed. Leftovers of
    an interrupted earlier run are cleaned first (and logged)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and not target.is_dir():
        raise SparsecoreError(f"{target.name} exists and is not a folder", str(target), "move or delete that file")
    for what in clean_leftovers(target):
        log.warning("an interrupted earlier export left files behind: %s", what)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    old = target.with_name(f".{target.name}-old-{tmp.name.rsplit('-', 1)[-1]}")
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp made it 0700; publish with the user's usual permissions
        if target.exists():
            target.rename(old)  # keep the previous deployment until the new one is in place
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not target.exists():
            old.rename(target)
        raise
    shutil.rmtree(old, ignore_errors=True)
