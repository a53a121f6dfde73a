"""Sparse int8 Linears on the integer units: the parallel driver of the 1×4-block (:mod:`.int8_block4`) and the
unstructured (:mod:`.int8_quads`) row kernels.

``Y (N, T) = W (N, K) int8 · X (K, T) uint8``, exact int32, with X in the layout the weight kind reads on the path
(:func:`activation_shape`): quads, and 1×4-block Linears below a path's :data:`TOKEN_BLOCKED_BELOW`, read the
token-blocked ``(blocks, K, TB)`` layout (:func:`token_blocked`: the one a LayerNorm, the attention or a previous
Linear can write); other 1×4-block Linears the interleaved one of :func:`~.int8_block4.interleave4`.
Work is split into (token block, row range) tasks, row ranges balanced by stored
entries (the dense rows of an OBS-pruned matrix do not all land on one thread); a thread's consecutive tasks
share a token block, whose slab stays in its cache while the rows stream by. Many blocks (batches): one row
range per block; few (one short input): rows are split until every thread has work. The Linear's epilogue —
``(Σ + bias) · scale`` per output row, then exact GELU — runs on each row's block while it is in L1, at the
vector width of the path (:mod:`.epilogue`); it writes fp32 rows, fp32 or uint8 codes token-blocked, or — four rows
at a time, row ranges in fours — uint8 codes interleaved by four rows: a next 1×4-block Linear's input.
Tested against int64 sums in tests/kernels/test_int8_block4.py and test_int8_quads.py.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba import config
from numba.extending import overload

from sparsecore.kernels import int8_block4, int8_quads
from sparsecore.kernels._config import NJIT_FMA_PARALLEL
from sparsecore.kernels.bound import bound
from sparsecore.kernels.epilogue import row_epilogue, rows_epilogue4
from sparsecore.kernels.int8_block4 import Block4Int8, block4_row
from sparsecore.kernels.int8_quads import Quads, blocks_row, quads_row
from sparsecore.kernels.isa import integer_path, marker, supported
from sparsecore.kernels.quantize import _params
from sparsecore.kernels.row_kernels import task_rows


def _row_kernel(index_ndim: int, xb_ndim: int):
    """Quads (2-D ``index``), 1×4 blocks on the token-blocked layout (3-D activations) or interleaved (4-D)."""
    return quads_row if index_ndim == 2 else blocks_row if xb_ndim == 3 else block4_row


def _row(marker, index, values, values4, j0, j1, xb, b, out):
    """One row's products for token block ``b`` by the kernel :func:`_row_kernel` picks, at compile time."""


@overload(_row, inline="always")
def _row_impl(marker, index, values, values4, j0, j1, xb, b, out):
    kernel = _row_kernel(index.ndim, xb.ndim)
    return lambda marker, index, values, values4, j0, j1, xb, b, out: kernel(
        marker, index, values, values4, j0, j1, xb, b, out)


if config.DISABLE_JIT:  # coverage runs: no overloads outside compiled code

    def _row(marker, index, values, values4, j0, j1, xb, b, out):
        _row_kernel(index.ndim, xb.ndim)(marker, index, values, values4, j0, j1, xb, b, out)


@nb.njit(**NJIT_FMA_PARALLEL)
def _products(marker, indptr, index, values, values4, xb, bounds, scratch, out):
    """Exact int32 ``out (N, T)``; task = (token block, row range from ``bounds``)."""
    tb = scratch.shape[1]
    chunks = bounds.size - 1
    for task in nb.prange(xb.shape[0] * chunks):
        b, c = task // chunks, task % chunks
        acc = scratch[task]
        width = min(tb, out.shape[1] - b * tb)
        for r in range(bounds[c], bounds[c + 1]):
            _row(marker, index, values, values4, indptr[r], indptr[r + 1], xb, b, acc)
            out[r, b * tb:b * tb + width] = acc[:width]


def _destination(out, r, b, tb):
    """Row ``r``'s results for token block ``b``: ``out[r, block's tokens]`` of a (N, T) output, or the block row
    ``out[b, r]`` of a token-blocked (blocks, N, tb) one."""


@overload(_destination, inline="always")
def _destination_impl(out, r, b, tb):
    if out.ndim == 3:
        return lambda out, r, b, tb: out[b, r]
    return lambda out, r, b, tb: out[r, b * tb:min(out.shape[1], (b + 1) * tb)]


if config.DISABLE_JIT:

    def _destination(out, r, b, tb):
        return out[b, r] if out.ndim == 3 else out[r, b * tb:min(out.shape[1], (b + 1) * tb)]


EPILOGUE_ROWS = 32  # rows a task sums before their epilogues (a multiple of 4): each loop then runs back to back —
# an epilogue after every row's products cost 14–30% more than the two loops apart (AVX2, MiniLM/BERT shapes, 90–95%)


@nb.njit(**NJIT_FMA_PARALLEL)
def _linear(marker, indptr, index, values, values4, xb, bounds, bias, scale, gelu, qscale, zero, scratch, out):
    """``out = (Σ + bias) · scale`` (then GELU) per row, ``out`` (N, T) float32 or token-blocked (blocks, N, TB) float32,
    or uint8 codes of those values for ``qscale``, ``zero``; tasks as in :func:`_products`, each running its rows in
    groups of ``scratch.shape[1]`` (``scratch (tasks, rows, TB)``): the group's products, then its epilogues."""
    tb = scratch.shape[2]
    group = scratch.shape[1]
    chunks = bounds.size - 1
    for task in nb.prange(xb.shape[0] * chunks):
        b, c = task // chunks, task % chunks
        accs = scratch[task]
        for r0 in range(bounds[c], bounds[c + 1], group):
            r1 = min(r0 + group, bounds[c + 1])
            for r in range(r0, r1):
                _row(marker, index, values, values4, indptr[r], indptr[r + 1], xb, b, accs[r - r0])
            for r in range(r0, r1):
                row_epilogue(marker, accs[r - r0], bias[r], scale[r], gelu, _destination(out, r, b, tb), qscale, zero)


@nb.njit(**NJIT_FMA_PARALLEL)
def _linear4(marker, indptr, index, values, values4, xb, bounds, bias, scale, gelu, qscale, zero, scratch, out):
    """:func:`_linear` writing uint8 codes interleaved by four output rows, ``out (blocks, N/4, TB, 4)``: the epilogue
    runs four rows at a time (``bounds`` and ``scratch.shape[1]`` multiples of 4)."""
    group = scratch.shape[1]
    chunks = bounds.size - 1
    for task in nb.prange(xb.shape[0] * chunks):
        b, c = task // chunks, task % chunks
        accs = scratch[task]
        for r0 in range(bounds[c], bounds[c + 1], group):
            r1 = min(r0 + group, bounds[c + 1])
            for r in range(r0, r1):
                _row(marker, index, values, values4, indptr[r], indptr[r + 1], xb, b, accs[r - r0])
            for r in range(r0, r1, 4):
                rows_epilogue4(marker, accs[r - r0:r - r0 + 4], bias, scale, r, gelu, out[b, r // 4], qscale, zero)


def _kind(weight):
    if isinstance(weight, Block4Int8):
        return weight.index, weight.values, weight.blocks4, "1×4-block"
    if isinstance(weight, Quads):
        return weight.columns, weight.values, weight.weights4, "quad"
    raise TypeError(f"weight must be a Block4Int8 or Quads, got {type(weight).__name__}")


# path → stored weights per input column below which a 1×4-block Linear reads the token-blocked layout, which the
# LayerNorm, the attention and the previous Linear write its uint8 codes into; at or above it (and on paths not
# listed) the interleaved one, read without unpacks, whose input the Linear quantizes itself. Empty: every 1×4-block
# Linear reads the interleaved layout (benchmarks/int8_block4_layout.py times a threshold against both).
TOKEN_BLOCKED_BELOW: dict[str, float] = {}


def token_blocked(weight: Block4Int8 | Quads, path: str) -> bool:
    """``weight``'s Linear on ``path`` prefers the token-blocked ``(blocks, K, TB)`` layout to the interleaved one:
    quads always; 1×4 blocks with K a multiple of 4 and fewer than :data:`TOKEN_BLOCKED_BELOW` stored weights per
    input column."""
    _kind(weight)
    if isinstance(weight, Quads):
        return True
    below, k = TOKEN_BLOCKED_BELOW.get(path), weight.shape[1]
    return below is not None and k % 4 == 0 and weight.nnz < below * k  # nnz counted only where a threshold is set


def tokens_per_block(weight: Block4Int8 | Quads, path: str, blocked: bool | None = None) -> int:
    """Tokens per block of ``weight``'s activation layout on ``path``: token-blocked (``blocked``; None: the layout
    :func:`token_blocked` prefers) or interleaved."""
    blocked = token_blocked(weight, path) if blocked is None else blocked
    return (int8_quads.TOKENS if blocked else int8_block4.TOKENS)[path]


def activation_shape(weight: Block4Int8 | Quads, t_total: int, path: str,
                     blocked: bool | None = None) -> tuple[int, ...]:
    """Shape of the uint8 activations for ``t_total`` tokens: token-blocked ``(blocks, K, TB)``
    (:func:`~.int8_quads.token_blocks`; 1×4 blocks need K a multiple of 4 there) or, for 1×4 blocks, interleaved
    ``(blocks, ceil(K/4), TB, 4)`` (:func:`~.int8_block4.interleave4`). ``blocked`` None: the layout
    :func:`token_blocked` prefers on ``path``; the kernels read either."""
    blocked = token_blocked(weight, path) if blocked is None else blocked
    if not blocked and isinstance(weight, Quads):
        raise ValueError("quads read the token-blocked layout only")
    tb = tokens_per_block(weight, path, blocked)
    k = weight.shape[1]
    blocks = -(-t_total // tb)
    if not blocked:
        return blocks, -(-k // 4), tb, 4
    if isinstance(weight, Block4Int8) and k % 4:
        raise ValueError(f"1×4-block weights with K = {k} (not a multiple of 4) read the interleaved layout only; "
                         "or pack them as quads (sparsecore.kernels.int8_quads.pack_quads)")
    return blocks, k, tb


def activations(weight: Block4Int8 | Quads, xq: np.ndarray, path: str, blocked: bool | None = None) -> np.ndarray:
    """``(K, T)`` uint8 activations in ``weight``'s layout on ``path`` (:func:`activation_shape`)."""
    shape = activation_shape(weight, xq.shape[1], path, blocked)
    if len(shape) == 3:
        return int8_quads.token_blocks(xq, shape[2])
    return int8_block4.interleave4(xq, shape[2])


def _prepare(weight, xb: np.ndarray, t_total: int, path: str | None, rows_together: int = 1, group: int = 0):
    """(kernel arrays, marker, bounds, scratch) after checking the path runs here and ``xb`` fits ``weight`` in the
    layout its dimensions name (3: token-blocked, 4: interleaved); ``rows_together``: rows per step of a task (its
    row ranges multiples of it); the scratch holds one block per task, or ``group`` blocks per task. What does not
    depend on ``xb`` is kept in the weight's ``tasks`` dict per (layout, token blocks, path, threads, rows per step)."""
    path = integer_path() if path is None else path
    blocked = xb.ndim != 4
    tokens = int8_quads.TOKENS if blocked else int8_block4.TOKENS
    key = ("call", blocked, -(-t_total // tokens.get(path, 1)), path, nb.get_num_threads(), rows_together)
    call = weight.tasks.get(key)
    if call is None:
        index, values, values4, name = _kind(weight)
        if path not in tokens or not supported(path):
            runs = ", ".join(p for p in tokens if supported(p))
            raise ValueError(f"path {path!r} cannot run the {name} int8 kernels on this CPU (they run: {runs})")
        shape = activation_shape(weight, t_total, path, blocked)
        if path == "avx2" and isinstance(weight, Block4Int8) and not weight.pair_safe:
            raise ValueError("1×4-block weights on the avx2 kernels must be packed with "
                             "pack_block4_int8(codes, pair_safe=True): vpmaddubsw saturates other weight pairs")
        bounds = task_rows(weight, shape[0], key[4], rows_together)
        call = weight.tasks[key] = ((weight.indptr, index, values, values4), marker(path), bounds, shape,
                                    (shape[0] * (bounds.size - 1), tokens[path]))
    arrays, mark, bounds, shape, scratch_shape = call
    if xb.dtype != np.uint8 or xb.shape != shape or not xb.flags.c_contiguous:
        layout = "token-blocked" if blocked else "interleaved"
        raise ValueError(f"activations must be C-contiguous {shape} uint8 (the {_kind(weight)[3]} kernels' {layout} "
                         f"layout for {t_total} tokens), got {xb.dtype} {xb.shape}")
    tasks, tb = scratch_shape
    return arrays, mark, bounds, np.empty((tasks, group, tb) if group else (tasks, tb), np.int32)


def int8_matmul(weight: Block4Int8 | Quads, xb: np.ndarray, t_total: int, path: str | None = None) -> np.ndarray:
    """``W · X`` as exact int32 ``(N, t_total)``; ``xb`` in either layout of :func:`activation_shape` (quads: the
    token-blocked one). ``path``: an integer path (default: :func:`~sparsecore.kernels.isa.integer_path`)."""
    arrays, mark, bounds, scratch = _prepare(weight, xb, t_total, path)
    out = np.empty((weight.shape[0], t_total), np.int32)
    _products(mark, *arrays, xb, bounds, scratch, out)
    return out


def int8_linear_t(weight: Block4Int8 | Quads, xb: np.ndarray, t_total: int, bias: np.ndarray, scale: np.ndarray,
                  gelu: bool = False, path: str | None = None, out: np.ndarray | None = None,
                  blocked_out: bool = False, codes: tuple[float, int] | None = None,
                  interleaved: bool = False) -> np.ndarray:
    """``Yᵀ (N, T) float32 = (W · X + bias) · scale`` per output row (then exact GELU when ``gelu``): the integer
    sum exact (int32), the epilogue in fp32 — a quantized Linear's output. Arguments as for :func:`int8_matmul`.
    ``blocked_out``: write Y token-blocked, ``(blocks, N, TB)`` with this kernel's TB (padding tokens hold the
    epilogue of their sums) — for a next quad Linear, whose codes are then an elementwise quantization of it.
    ``codes`` (with ``blocked_out``): that next Linear's activation ``(scale, zero_point)``: Y is written as its uint8
    codes (:func:`~.quantize.quantize_u8` of the fp32 Y, the same bits) — its input, ready. ``interleaved`` (with
    ``codes``, N a multiple of 4): the codes interleaved by four rows, ``(blocks, N/4, TB, 4)`` — the layout a next
    1×4-block Linear reads (:func:`~.quantize.quantize_u8_interleave4` of Y, the same bits)."""
    return int8_linear_call(weight, xb, t_total, bias, scale, gelu, path, out, blocked_out, codes, interleaved)()


def int8_linear_call(weight: Block4Int8 | Quads, xb: np.ndarray, t_total: int, bias: np.ndarray, scale: np.ndarray,
                     gelu: bool = False, path: str | None = None, out: np.ndarray | None = None,
                     blocked_out: bool = False, codes: tuple[float, int] | None = None, interleaved: bool = False):
    """:func:`int8_linear_t` checked once and bound to these arrays (:func:`~.bound.bound`): calling it runs the
    product on ``xb``'s current codes and returns ``out``."""
    n = weight.shape[0]
    if codes is not None and not blocked_out:
        raise ValueError("codes need blocked_out=True: the codes are the next quad Linear's token-blocked input")
    if interleaved and (codes is None or n % 4):
        raise ValueError(f"interleaved output needs codes and a multiple of 4 output rows, got {n} rows"
                         + ("" if codes is not None else " and no codes"))
    arrays, mark, bounds, scratch = _prepare(weight, xb, t_total, path, 4 if interleaved else 1, EPILOGUE_ROWS)
    tb = scratch.shape[-1]
    shape = (xb.shape[0], n // 4, tb, 4) if interleaved else (xb.shape[0], n, tb) if blocked_out else (n, t_total)
    qscale, zero = (1.0, 0) if codes is None else _params(*codes, 0, 255)
    dtype = np.float32 if codes is None else np.uint8
    if out is None:
        out = np.empty(shape, dtype)
    if out.shape != shape or out.dtype != dtype or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous {np.dtype(dtype).name} array of shape {shape}")
    if bias.dtype != np.float32 or scale.dtype != np.float32:
        bias, scale = np.ascontiguousarray(bias, np.float32), np.ascontiguousarray(scale, np.float32)
    if bias.shape != (n,) or scale.shape != (n,):
        raise ValueError(f"bias and scale must have shape ({n},), got {bias.shape} and {scale.shape}")
    kernel = _linear4 if interleaved else _linear
    return bound(kernel, out, mark, *arrays, xb, bounds, bias, scale, gelu, np.float32(qscale), np.float32(zero),
                 scratch, out)
