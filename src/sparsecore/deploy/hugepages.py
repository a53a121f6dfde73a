"""Activation buffers backed by transparent huge pages (2 MB) where the OS allows it.

The sparse kernels read rows of Xᵀ in an order set by the weights' column indices, i.e. scattered over
the whole activation (0.4–1.5 MB at 128 tokens): with 4 KB pages nearly every row is another page and
the L1 TLB misses. 2 MB pages keep those rows on a handful of TLB entries
(``benchmarks/test_sparse_kernels.py`` times the kernels on these buffers, as the engine runs them).

Linux only does this for memory advised with ``MADV_HUGEPAGE`` when THP is in ``madvise`` mode (the
default of most distributions); elsewhere the arrays are ordinary memory, and correct either way.
"""

from __future__ import annotations

import math
import mmap

import numpy as np

HUGE = 2 << 20
ALIGN = 4096


def huge_page_arrays(shapes: dict[str, tuple[int, ...]], dtype=np.float32) -> dict[str, np.ndarray]:
    """Uninitialised C-contiguous arrays, one per name, carved from one 2 MB-aligned anonymous mapping."""
    itemsize = np.dtype(dtype).itemsize
    nbytes = {name: int(np.prod(shape, dtype=np.int64)) * itemsize for name, shape in shapes.items()}
    offsets, total = {}, 0
    for name, size in nbytes.items():
        offsets[name] = total
        total += -(-size // ALIGN) * ALIGN
    region = mmap.mmap(-1, total + HUGE)
    buf = np.frombuffer(region, dtype=np.uint8)
    start = (-buf.ctypes.data) % HUGE
    if hasattr(region, "madvise") and hasattr(mmap, "MADV_HUGEPAGE"):
        try:
            region.madvise(mmap.MADV_HUGEPAGE, start, total + HUGE - start)
        except OSError:  # THP disabled in this kernel: ordinary pages
            pass
    return {name: buf[start + offsets[name]:start + offsets[name] + nbytes[name]].view(dtype).reshape(shape)
            for name, shape in shapes.items()}


class Scratch:
    """One growable buffer on huge pages, handed out as typed views (grown to the largest request, kept
    between calls). The Linears of one model share one: they run one at a time, and a buffer per Linear
    would hold dozens of copies of the largest activation."""

    def __init__(self) -> None:
        self._buf = np.empty(0, np.uint8)

    def view(self, shape: tuple[int, ...], dtype) -> np.ndarray:
        """A C-contiguous ``shape`` array of ``dtype`` over the front of the buffer (contents undefined)."""
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        if self._buf.size < nbytes:
            self._buf = huge_page_arrays({"buf": (nbytes,)}, np.uint8)["buf"]
        return self._buf[:nbytes].view(dtype).reshape(shape)
