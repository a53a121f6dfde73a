"""Numba options, in one place for every kernel, and the guard that keeps the in-tree kernel cache consistent."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

# cache: compiled kernels are stored next to the source (first call compiles, later processes load).
# Numba keys a cache entry on its own file only: a kernel that inlines code or constants from another module
# (vecmath.py's erf, an intrinsic's tile width) would keep the old machine code after that module changes —
# drop_stale_cache() below empties the cache whenever any kernel source changed.
# nogil: callers may run kernels from threads; fastmath stays off (exact comparisons matter here).
NJIT = {"cache": True, "nogil": True, "fastmath": False}
NJIT_PARALLEL = {**NJIT, "parallel": True}
# Dense-arithmetic kernels (matmuls, GELU, softmax) may fuse a*b+c into one FMA ("contract" only: no
# reassociation, no NaN/Inf assumptions). It rounds once instead of twice; their tests bound errors, not bits.
# error_model "numpy": x / 0 gives inf like numpy instead of raising; the per-division zero check of the
# default ("python") model stops LLVM from vectorising any loop that divides.
NJIT_FMA = {**NJIT, "fastmath": {"contract"}, "error_model": "numpy"}
NJIT_FMA_PARALLEL = {**NJIT_FMA, "parallel": True}

STAMP = "numba-sources.sha256"  # beside the cached kernels: the digest of the sources they were compiled from


def drop_stale_cache(folder: Path) -> bool:
    """Delete the Numba cache files (``*.nbi``, ``*.nbc``) in ``folder/__pycache__`` when the ``*.py`` sources of
    ``folder`` are not the ones that cache was compiled from (a SHA-256 of them kept in :data:`STAMP`), then record
    the current digest. True when files were dropped. A folder that cannot be written (a read-only install, where
    Numba caches in its user-wide folder and the sources do not change) is left alone."""
    cache = folder / "__pycache__"
    digest = hashlib.sha256(b"".join(p.name.encode() + p.read_bytes() for p in sorted(folder.glob("*.py"))))
    stamp = cache / STAMP
    try:
        if stamp.read_text(encoding="ascii") == digest.hexdigest():
            return False
    except OSError:
        pass
    try:
        stale = [*cache.glob("*.nbi"), *cache.glob("*.nbc")]
        for path in stale:
            path.unlink(missing_ok=True)
        cache.mkdir(exist_ok=True)
        partial = cache / f"{STAMP}.{os.getpid()}"
        partial.write_text(digest.hexdigest(), encoding="ascii")
        os.replace(partial, stamp)
    except OSError:
        return False
    return bool(stale)


drop_stale_cache(Path(__file__).parent)
