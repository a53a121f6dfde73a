"""Panel widths of the fp32 row kernels picked by timing them on this host, once per weight shape, kept on disk.

How wide a K panel of :mod:`.fp32_rows` should be depends on the core's caches as much as on the matrix: on a core
whose L2 feeds L1 fast, a panel twice the L1's width may beat the narrow one that keeps its activations in L1; on
another the narrow one wins. :func:`panel_for` times the candidates (:func:`candidates`) on the real weights and
random activations of each of :data:`TUNE_TOKENS` token counts — one sequence, whose two token blocks a task runs
together, and a batch's worth, one block per task —, in alternated rounds on every thread the engine uses, and keeps
the width whose times, each relative to the fastest at its token count, sum lowest (the rule's own width unless
another beats it by :data:`MARGIN`: timings this close are noise), in a JSON file (:func:`cache_file`) under a key
of the CPU, the thread count, the kernel path and the shape (kind, N, K, stored weights per row in steps of
1/:data:`DENSITY_STEPS` of K), so a later load of any model with that shape on this host reads it instead of timing
again. The products are the same sums whatever the width (each row's partial sums continue from memory panel after
panel); only the rounding order of fp32 additions moves.

``SPARSECORE_TUNE=0`` turns timing off (the rule of :func:`~.fp32_packing.panel_columns` decides, as it does for
Linears too small to time reliably, under :data:`MIN_WORK` stored weights); ``SPARSECORE_CACHE_DIR`` moves the file
(default ``~/.cache/sparsecore``). A file that cannot be read or written is ignored: the timing then runs on
every load.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numba as nb
import numpy as np

from sparsecore.kernels.fp32_packing import TOKENS, l2_bytes, pack_rows, panel_columns, panel_limit, stored_groups
from sparsecore.kernels.fp32_rows import fp32_linear_call
from sparsecore.kernels.isa import cpu_info, cpu_name

TUNE_TOKENS = (2 * TOKENS, 32 * TOKENS)  # one 128-token sequence (a task runs both blocks), 16 (a block a task)
ROUNDS = {2 * TOKENS: 9, 32 * TOKENS: 3}  # alternated timing rounds per token count; each candidate's best counts
MARGIN = 0.03  # how much lower (relative) another width's score must be than the rule's to replace it
MIN_WORK = 50_000  # stored weights below which the rule decides (a call of about 0.1 ms at 128 tokens)
DENSITY_STEPS = 20  # shape key: stored weights per row rounded to multiples of K / DENSITY_STEPS
FILE = "fp32_panels.json"
VERSION = 2  # bump when the kernels change enough that old choices no longer hold


def enabled() -> bool:
    """Whether panel widths are timed (``SPARSECORE_TUNE`` unset, or anything but ``0``/``off``/``false``/``no``)."""
    return os.environ.get("SPARSECORE_TUNE", "1").strip().lower() not in ("0", "off", "false", "no")


def cache_file() -> Path:
    """The JSON file holding this host's choices: ``$SPARSECORE_CACHE_DIR/fp32_panels.json``, default
    ``~/.cache/sparsecore/fp32_panels.json``."""
    root = os.environ.get("SPARSECORE_CACHE_DIR", "").strip()
    return Path(root).expanduser() / FILE if root else Path.home() / ".cache" / "sparsecore" / FILE


def candidates(k: int, weights_per_row: float, kind: str) -> list[int]:
    """Panel widths worth timing for K = ``k``: the rule's own (:func:`~.fp32_packing.panel_columns`) and multiples of 64
    from 64 up to the rule's limit — one token block's activations on a panel fill at most half the L2 — or K itself
    (one panel) where K is within it; without repeats."""
    limit = panel_limit()
    widths = [panel_columns(k, weights_per_row, kind), *(w for w in (64, 128, 192, 256, 384, 512, k) if w <= limit)]
    return sorted({min(w, k) for w in widths})


def shape_key(path: str, kind: str, n: int, k: int, weights_per_row: float, threads: int) -> str:
    """The cache key of one weight shape on this host: CPU, kernel path, threads, kind, N, K, density step."""
    step = round(weights_per_row / k * DENSITY_STEPS)
    return f"v{VERSION}|{host()}|{path}|t{threads}|{kind}|{n}x{k}|d{step}/{DENSITY_STEPS}"


def host() -> str:
    """This CPU as the cache tells hosts apart: model name, family and model numbers (one model name can cover several
    generations), L2 per core."""
    fields = cpu_info()
    return f"{cpu_name()} {fields.get('cpu family', '?')}/{fields.get('model', '?')} L2 {l2_bytes() >> 10} KB"


def _read(file: Path) -> dict:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(file: Path, key: str, value: dict) -> None:
    """Add one choice to the file (re-read first, written whole to a temporary file and renamed: concurrent loads
    lose at most one another's entries, never the file)."""
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        data = _read(file)
        data[key] = value
        fd, tmp = tempfile.mkstemp(prefix=f".{FILE}.", dir=file.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=0, sort_keys=True)
        os.replace(tmp, file)
    except OSError:
        pass


def time_panels(w: np.ndarray, kind: str, path: str, widths: list[int], tokens: int = TUNE_TOKENS[0],
                rounds: int = 5, seed: int = 0) -> dict[int, float]:
    """Best seconds per call of the ``kind`` fp32 Linear of ``w`` (N, K) packed at each panel width, on ``tokens``
    random activations, the candidates alternated round after round (a slow phase of the machine hits each alike)."""
    n, k = w.shape
    rng = np.random.default_rng(seed)
    xb = rng.standard_normal((-(-tokens // TOKENS), k, TOKENS), dtype=np.float32)
    out = np.empty((xb.shape[0], n, TOKENS), np.float32)
    calls = {}
    for width in widths:
        calls[width] = fp32_linear_call(pack_rows(w, kind, panel=width), xb, tokens, path=path, out=out,
                                        blocked_out=True)
        calls[width]()  # compiles (or loads) the kernel, warms the caches
    best = dict.fromkeys(widths, float("inf"))
    for _ in range(rounds):
        for width, call in calls.items():
            start = time.perf_counter()
            call()
            best[width] = min(best[width], time.perf_counter() - start)
    return best


def panel_for(w: np.ndarray, kind: str, path: str) -> int | None:
    """The panel width to pack ``w`` (N, K) float32 with for the ``kind`` kernels on ``path``: this host's cached
    choice for its shape, else the fastest of :func:`candidates` (timed now, then cached); None — the rule of
    :func:`~.fp32_packing.panel_columns` — when timing is off or the Linear is small."""
    width = 4 if kind == "block4" else 1
    stored = int(np.count_nonzero(stored_groups(w, width))) * width
    n, k = w.shape
    if not enabled() or stored < MIN_WORK or k <= 64:
        return None
    weights_per_row = stored / max(n, 1)
    threads = nb.get_num_threads()
    key = shape_key(path, kind, n, k, weights_per_row, threads)
    file = cache_file()
    known = _read(file).get(key)
    if isinstance(known, dict) and isinstance(known.get("panel"), int) and 0 < known["panel"] <= k:
        return known["panel"]
    widths = candidates(k, weights_per_row, kind)
    seconds = {tokens: time_panels(w, kind, path, widths, tokens, ROUNDS.get(tokens, 5)) for tokens in TUNE_TOKENS}
    score = {width: sum(t[width] / min(t.values()) for t in seconds.values()) for width in widths}
    choice = min(score, key=score.get)
    rule = panel_columns(k, weights_per_row, kind)
    if score[choice] > (1 - MARGIN) * score[rule]:
        choice = rule
    _write(file, key, {"panel": choice, "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
                       "ms": {str(tokens): {str(p): round(s * 1e3, 4) for p, s in t.items()}
                              for tokens, t in seconds.items()}})
    return choice
