"""The one place that decides which instruction-set path the integer and the fp32 token-blocked kernels take on
this host.

Paths, best first: ``avx512_vnni`` (``vpdpbusd`` on 512-bit vectors: 16 tokens × 4 u8·s8 products per
instruction, int32 accumulation), ``avx_vnni`` (the same instruction on 256-bit vectors), ``avx2``
(``vpmaddubsw`` on saturation-safe weight pairs, then ``vpmaddwd`` by ones into int32; the 1×4-block interleaved
kernel widens u8 and s8 to int16 for ``vpmaddwd``) and ``generic`` (plain Numba loops,
any CPU). The choice is read once from LLVM's view of the host CPU; ``SPARSECORE_ISA`` forces a path
(for tests and benchmarks), and asking for one the host cannot execute is an error, not a crash.

The fp32 kernels (:mod:`.fp32_rows`) have paths ``avx512`` (512-bit FMAs), ``avx2`` (256-bit FMAs) and ``generic``;
a forced integer path forces the float path of its vector width (:func:`float_path`).
"""

from __future__ import annotations

import functools
import os

PATHS = ("avx512_vnni", "avx_vnni", "avx2", "generic")
# LLVM feature names each path needs (llvmlite.binding.get_host_cpu_features keys)
NEEDS = {"avx512_vnni": ("avx512f", "avx512bw", "avx512vnni"), "avx_vnni": ("avx2", "avxvnni"),
         "avx2": ("avx2",), "generic": ()}


# The fp32 token-blocked kernels' paths (:mod:`.fp32_rows`): 512-bit FMAs, 256-bit FMAs, plain loops.
FLOAT_PATHS = ("avx512", "avx2", "generic")
FLOAT_NEEDS = {"avx512": ("avx512f",), "avx2": ("avx2", "fma"), "generic": ()}
# the float path a forced integer path (SPARSECORE_ISA) implies: the same vector width
_FLOAT_OF = {"avx512_vnni": "avx512", "avx_vnni": "avx2", "avx2": "avx2", "generic": "generic"}

# Compile-time path selection: a kernel takes a marker argument whose *type* names the path, so each path is its
# own cached machine code and a call costs no dispatch. "avx2" and "generic" mean the same host for both kinds.
MARKERS = {"avx512_vnni": "uint8", "avx_vnni": "uint16", "avx2": "uint32", "generic": "uint64", "avx512": "int8"}


@functools.cache
def marker(path: str):
    """The marker value that selects ``path`` in a kernel."""
    import numpy as np

    return np.dtype(MARKERS[path]).type(0)


def marker_path(numba_type) -> str | None:
    """The path a marker argument's Numba type names (None for any other type)."""
    return next((path for path, name in MARKERS.items() if str(numba_type) == name), None)


@functools.cache
def host_features() -> frozenset[str]:
    """LLVM feature flags the host CPU has (empty when LLVM cannot tell)."""
    import llvmlite.binding as llvm

    try:
        features = llvm.get_host_cpu_features()
    except RuntimeError:  # LLVM cannot read this host's features
        return frozenset()
    return frozenset(name for name in features if features[name])


@functools.cache
def supported(path: str) -> bool:
    """True when this host can execute ``path``."""
    return all(f in host_features() for f in NEEDS[path])


def integer_path() -> str:
    """The integer kernels' path on this host: ``SPARSECORE_ISA`` when set, else the best supported one."""
    return _integer_path(os.environ.get("SPARSECORE_ISA", "").strip())


@functools.cache
def _integer_path(forced: str) -> str:
    if forced:
        if forced not in PATHS:
            raise ValueError(f"SPARSECORE_ISA={forced!r} is not one of {', '.join(PATHS)}")
        if not supported(forced):
            raise ValueError(f"SPARSECORE_ISA={forced!r}: this CPU lacks {', '.join(NEEDS[forced])}")
        return forced
    return next(p for p in PATHS if supported(p))


def float_path() -> str:
    """The fp32 kernels' path on this host: the one ``SPARSECORE_ISA`` implies when set (its vector width), else the
    widest supported one."""
    return _float_path(os.environ.get("SPARSECORE_ISA", "").strip())


@functools.cache
def _float_path(forced: str) -> str:
    if forced:
        return _FLOAT_OF[_integer_path(forced)]
    return next(p for p in FLOAT_PATHS if float_supported(p))


@functools.cache
def float_supported(path: str) -> bool:
    """True when this host can execute the fp32 path ``path``."""
    return all(f in host_features() for f in FLOAT_NEEDS[path])


def csr_activations() -> str:
    """What the unstructured int8 Linears (``int8 csr``) multiply on this host's path: ``"float32"`` codes (int8
    weights and uint8 activations held as float32 values: no widening in the inner loop) with 512-bit vectors
    (``avx512_vnni``), ``"uint8"`` bytes widened in registers elsewhere (a quarter of the activation traffic,
    which the 256-bit FMA units can afford). Both give the same bits (exact integer sums)."""
    return "float32" if integer_path() == "avx512_vnni" else "uint8"


@functools.cache
def cpu_info() -> dict[str, str]:
    """The first processor's fields of ``/proc/cpuinfo`` (``model name``, ``cpu family``, ``model``, …); empty where
    that file is missing."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if not line.strip():
                    break
                name, _, value = line.partition(":")
                fields.setdefault(name.strip(), value.strip())
    except OSError:
        pass
    return fields


@functools.cache
def cpu_name() -> str:
    """The host CPU's model name (``/proc/cpuinfo``; LLVM's CPU name where that file is missing)."""
    name = cpu_info().get("model name")
    if name is not None:
        return name
    import llvmlite.binding as llvm

    return llvm.get_host_cpu_name()
