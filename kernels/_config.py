"""Numba options, in one place for every kernel."""

# cache: compiled kernels are stored next to the source (first call compiles, later processes load);
# nogil: callers may run kernels from threads; fastmath stays off (exact comparisons matter here).
NJIT = {"cache": True, "nogil": True, "fastmath": False}
NJIT_PARALLEL = {**NJIT, "parallel": True}


