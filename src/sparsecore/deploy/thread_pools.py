"""Thread pools of the sparse engine: BLAS held to one thread while Numba's kernels use the cores, and which
threading layer Numba runs."""

from __future__ import annotations

import threading

import numba
import numpy as np


class _SingleBlas:
    """BLAS at one thread while any forward of a sparse model runs, in any thread: the first to enter sets the
    limit, the last to leave restores the original (nested per-call limits would restore it while another
    stream still runs)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._limiter = None
        self._controller = None

    def __enter__(self) -> None:
        with self._lock:
            if self._users == 0:
                from threadpoolctl import ThreadpoolController

                self._controller = self._controller or ThreadpoolController()
                self._limiter = self._controller.limit(limits=1, user_api="blas")
            self._users += 1

    def __exit__(self, *exc) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                self._limiter.restore_original_limits()
                self._limiter = None


SINGLE_BLAS = _SingleBlas()


def threading_layer() -> str:
    """Numba's threading layer (omp, tbb or workqueue), started by one tiny parallel kernel if none ran yet."""
    from sparsecore.kernels.quantize import codes_inplace

    try:
        return numba.threading_layer()
    except ValueError:  # no parallel kernel has run in this process yet
        codes_inplace(np.zeros(1, np.float32), 1.0, 0)
        return numba.threading_layer()
