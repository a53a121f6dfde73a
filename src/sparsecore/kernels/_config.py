"""Numba options, in one place for every kernel."""

# cache: compiled kernels are stored next to the source (first call compiles, later processes load).
# Numba keys a cache entry on its own file only: after editing an inlined helper in another module
# (vecmath.py), delete kernels/__pycache__/*.nbi/*.nbc or callers keep the old code.
# nogil: callers may run kernels from threads; fastmath stays off (exact comparisons matter here).
NJIT = {"cache": True, "nogil": True, "fastmath": False}
NJIT_PARALLEL = {**NJIT, "parallel": True}
# Dense-arithmetic kernels (matmuls, GELU, softmax) may fuse a*b+c into one FMA ("contract" only: no
# reassociation, no NaN/Inf assumptions). It rounds once instead of twice; their tests bound errors, not bits.
# error_model "numpy": x / 0 gives inf like numpy instead of raising; the per-division zero check of the
# default ("python") model stops LLVM from vectorising any loop that divides.
NJIT_FMA = {**NJIT, "fastmath": {"contract"}, "error_model": "numpy"}
NJIT_FMA_PARALLEL = {**NJIT_FMA, "parallel": True}
