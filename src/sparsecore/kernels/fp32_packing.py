"""Packed weights of the sparse fp32 Linears (:mod:`.fp32_rows`): runs of stored entries per row and K panel, in
the order the kernels read them, and the panel width rule.

A :class:`RowsF32` holds, per (row, panel), a run of entries — ``csr`` (one weight per entry, a run padded to an even
count with a zero weight on its last column) or ``block4`` (1×4 blocks along K: an entry holds the weights of columns
4c … 4c+3) — columns ascending. Runs are stored group by group of :data:`GROUP` rows, within a group panel by panel,
within a panel row by row (empty runs left out): the order :func:`~.fp32_rows.fp32_linear_t` reads them, so the
weights stream front to back. Panel widths (:func:`panel_columns`) keep one token block's activations on a panel in L1
where a row still has enough weights on it. Tested in tests/kernels/test_fp32_rows.py.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

TOKENS = 64  # tokens per block of the activation layout, every path
KINDS = ("csr", "block4")  # packed weight formats
MAX_COLUMNS = 2**16  # entry columns (block columns for block4) are uint16
GROUP = 256  # rows a panelled Linear carries partial sums for at once (64 KB of them), and packs together: a group's
# runs on one panel lie back to back, so the weights stream in the order the kernel reads them


@dataclass(frozen=True)
class RowsF32:
    """fp32 weights for the token-blocked kernels: ``index (S,) uint16`` entry columns (block columns for block4),
    ``values`` ``(S,)`` (csr) or ``(S, 4)`` (block4) float32, ``shape (N, K)``, K in ``panels`` panels of ``panel``
    input columns. Entries are stored in runs — one per (row, panel), columns ascending — ordered group by group of
    ``group`` rows, within a group panel by panel, within a panel row by row (or longest first: ``pack_rows``'
    ``longest_first``), empty runs left out; with one panel, row by row, empty runs kept. Run s is
    ``index[segments[s] : segments[s + 1]]``, of row ``group · g + run_row[s]`` (``run_row`` uint16: the row within
    its group g); group g's runs on panel p are ``group_runs[g · panels + p] : group_runs[g · panels + p + 1]``.
    ``indptr (N+1,) int64`` counts each row's entries (padding included): cumulative, so with one panel it is also
    where each row's entries start."""

    indptr: np.ndarray
    index: np.ndarray
    values: np.ndarray
    shape: tuple[int, int]
    segments: np.ndarray
    run_row: np.ndarray
    group_runs: np.ndarray
    panel: int
    group: int
    tasks: dict = field(default_factory=dict, repr=False, compare=False)  # (blocks, threads, align) → row bounds, "ones"

    @property
    def kind(self) -> str:
        return "block4" if self.values.ndim == 2 else "csr"

    @property
    def nnz(self) -> int:
        """Stored non-zero weights (padding and zeros inside blocks not counted)."""
        return int(np.count_nonzero(self.values))

    @property
    def panels(self) -> int:
        groups = -(-self.shape[0] // self.group)
        return (self.group_runs.size - 1) // groups if groups else 1

    def run(self, r: int, p: int) -> tuple[int, int]:
        """Where row ``r``'s entries on panel ``p`` lie: ``(start, stop)`` in ``index`` and ``values`` (an empty range
        when the row has none there)."""
        g, offset = divmod(r, self.group)
        s0, s1 = self.group_runs[g * self.panels + p], self.group_runs[g * self.panels + p + 1]
        hits = np.flatnonzero(self.run_row[s0:s1] == offset)
        if not hits.size:
            return int(self.segments[s1]), int(self.segments[s1])
        s = s0 + int(hits[0])
        return int(self.segments[s]), int(self.segments[s + 1])


@functools.cache
def l2_bytes() -> int:
    """This CPU's L2 cache per core (sysfs, read once), 512 KB where it cannot be read."""
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    for entry in sorted(base.glob("index*")) if base.is_dir() else []:
        try:
            if (entry / "level").read_text().strip() == "2" and (entry / "type").read_text().strip() != "Instruction":
                size = (entry / "size").read_text().strip().upper()
                return int(size[:-1]) * {"K": 1 << 10, "M": 1 << 20}[size[-1]] if size[-1] in "KM" else int(size)
        except (OSError, ValueError):
            break
    return 512 << 10


PANEL_WEIGHTS = {"csr": 24, "block4": 48}  # stored weights a row should have on each panel, on average
L1_COLUMNS = 128  # the narrowest panel: one token block's activations on it, 32 KB, in L1


def panel_limit(l2: int | None = None) -> int:
    """The widest panel (a multiple of 64 columns, at least :data:`L1_COLUMNS`) whose activations of one token block
    fill at most half of an L2 of ``l2`` bytes (default :func:`l2_bytes`)."""
    return max(L1_COLUMNS, (l2_bytes() if l2 is None else l2) // 2 // (TOKENS * 4) // 64 * 64)


def panel_columns(k: int, weights: float, kind: str = "csr", l2: int | None = None) -> int:
    """Input columns per panel for K = ``k`` and ``weights`` stored weights per row on average: wide enough that a row
    has about :data:`PANEL_WEIGHTS` of them on each panel (short runs cost more per weight than the activations they
    keep in L1), at least :data:`L1_COLUMNS`, and never so wide that one token block's activations on it (columns ·
    TB floats) fill more than half the L2 (``l2`` bytes, default :func:`l2_bytes`). K is cut into equal panels (a
    multiple of 64 columns); ``k`` itself means one panel."""
    limit = panel_limit(l2)
    wanted = min(max(PANEL_WEIGHTS[kind] * k / max(weights, 1.0), L1_COLUMNS), limit)
    if k <= wanted:
        return k
    per = -(-k // -(-k // int(wanted)))  # K over the fewest panels of at most ``wanted`` columns
    return -(-per // 64) * 64


def pack_rows(w: np.ndarray, kind: str = "csr", panel: int | None = None, group: int | None = None,
              longest_first: bool = False) -> RowsF32:
    """``kind`` format of a dense (N, K) float32 matrix (entries equal to 0 dropped; a block4 block is stored when
    any of its four weights is non-zero, K % 4 == 0); ``panel``: input columns per panel (a multiple of 4; default
    :func:`panel_columns`); ``group``: rows whose runs are stored panel by panel together (default :data:`GROUP`; 1:
    each row's runs together); ``longest_first``: a (group, panel)'s runs longest first instead of in row order. csr
    runs are padded to an even count with a zero weight on the run's last stored column (the avx512 path takes
    pairs)."""
    w = np.asarray(w)
    if w.dtype != np.float32 or w.ndim != 2:
        raise ValueError(f"weights must be a 2-D float32 array, got {w.dtype} with shape {w.shape}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    n, k = w.shape
    width = 4 if kind == "block4" else 1
    if k % width:
        raise ValueError(f"block4 needs K divisible by 4, got K = {k}")
    if k // width > MAX_COLUMNS:
        raise ValueError(f"K = {k} has more than {MAX_COLUMNS} {'block ' if width == 4 else ''}columns (uint16)")
    if panel is not None and (panel <= 0 or panel % 4):
        raise ValueError(f"panel must be a positive multiple of 4, got {panel}")
    group = GROUP if group is None else group
    if not 1 <= group <= MAX_COLUMNS:
        raise ValueError(f"group must be 1 to {MAX_COLUMNS} rows, got {group}")
    groups = k // width
    flat = np.flatnonzero(stored_groups(w, width))  # row-major, columns sorted (2-D np.nonzero is several times slower)
    rows, cols = np.divmod(flat, groups)
    values = w.reshape(n * groups, width)[flat]
    if panel is None:  # every non-zero of w is in a stored group
        panel = panel_columns(k, np.count_nonzero(values) / max(n, 1), kind)
    per_panel = max(1, min(panel, k) // width)  # entry columns per panel (panel ≥ K: one panel)
    panels = max(1, -(-groups // per_panel))
    segment = rows * panels + cols // per_panel  # each entry's (row, panel), non-decreasing
    counts = np.bincount(segment, minlength=n * panels)
    odd = counts % 2 if kind == "csr" else np.zeros(n * panels, np.int64)
    run_rows, run_panels, group_runs = run_order((counts + odd).reshape(n, panels), group, longest_first)
    sizes = (counts + odd)[run_rows * panels + run_panels]
    segments = np.zeros(sizes.size + 1, np.int64)
    np.cumsum(sizes, out=segments[1:])
    run_of = np.zeros(n * panels, np.int64)  # (row, panel) → run (empty runs left out: never read)
    run_of[run_rows * panels + run_panels] = np.arange(sizes.size)
    begins = segments[run_of]  # where each stored (row, panel) run starts
    entered = np.cumsum(counts) - counts  # each (row, panel)'s first entry in ``flat``
    dest = begins[segment] + np.arange(rows.size) - entered[segment]
    index = np.empty(segments[-1], np.uint16)
    packed = np.zeros((segments[-1], width), np.float32)
    index[dest], packed[dest] = cols, values
    pads = (begins + counts)[odd == 1]  # an odd run's last slot: a zero weight on its last column
    index[pads] = index[pads - 1]
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum((counts + odd).reshape(n, panels).sum(axis=1), out=indptr[1:])
    return RowsF32(indptr, index, np.ascontiguousarray(packed.reshape(-1) if kind == "csr" else packed), (n, k),
                   segments, (run_rows % group).astype(np.uint16), group_runs, per_panel * width, group)


def run_order(sizes: np.ndarray, group: int, longest_first: bool = False) -> tuple[np.ndarray, np.ndarray,
                                                                                   np.ndarray]:
    """The stored runs of :class:`RowsF32` for ``sizes (N, panels)`` entries per (row, panel): ``(rows, panels,
    group_runs)`` — each run's row and panel, in storage order (group by group of ``group`` rows, panel by panel, row
    by row — or the longest run first, equal lengths row by row, with ``longest_first`` —, empty runs left out; one
    panel: every row in order) — and where each (group, panel)'s runs start."""
    n, panels = sizes.shape
    groups = -(-n // group)
    if panels == 1:
        rows, at = np.arange(n, dtype=np.int64), np.zeros(n, np.int64)
    else:
        rows, at = np.nonzero(sizes)
        length = -sizes[rows, at] if longest_first else np.zeros(rows.size, np.int64)
        order = np.lexsort((rows, length, at, rows // group))  # the last key sorts first
        rows, at = rows[order], at[order]
    keys = rows // group * panels + at  # (group, panel) of each run, non-decreasing
    return rows, at, np.searchsorted(keys, np.arange(groups * panels + 1)).astype(np.int64)


def stored_groups(w: np.ndarray, width: int) -> np.ndarray:
    """``(N, K / width)`` bool: which groups of ``width`` consecutive weights along K hold a non-zero (0.0 and -0.0
    are zero)."""
    nonzero = np.ascontiguousarray(w != 0)
    if width == 1:
        return nonzero
    return nonzero.reshape(w.shape[0], -1, width).view(np.uint32).reshape(w.shape[0], -1) != 0 if width == 4 else \
        nonzero.reshape(w.shape[0], -1, width).any(axis=2)
