"""Sparse fp32 Linears on token-blocked activations: 512-bit or 256-bit FMAs, K in panels whose activations stay in L1.

Computes ``Yᵀ (N, T) = W (N, K) · Xᵀ (K, T) + b`` (then exact GELU) with Xᵀ *token-blocked*:
``xb[b, k, i] = Xᵀ[k, TB·b + i]``, ``(ceil(T/TB), K, TB)`` float32 (:func:`token_blocks`; tokens past T are zeros),
TB = :data:`~.fp32_packing.TOKENS` = 64 on every path. Weights: :class:`~.fp32_packing.RowsF32`
(:func:`~.fp32_packing.pack_rows`), per row and K panel a run of stored entries in column order — ``csr`` (one weight
per entry) or ``block4`` (1×4 blocks along K). Per entry and token block a row kernel broadcasts the weight and runs
one FMA per vector of the weight's activation row (256 contiguous bytes), the accumulators in registers for the whole
run:

* ``avx512`` — 4 zmm vectors × 2 accumulator chains (CSR entries alternate between the chains, a block's first and
  last weight pairs go to one each): 8 independent FMAs in flight, as the FMA latency × ports of these cores needs.
* ``avx2`` — 8 ymm vectors, one chain (8 accumulators already).
* ``generic`` — plain loops (any CPU, and coverage runs).

int8 codes held as float32 (weights and activations, :func:`~.quantize.quantize_f32_blocked`) run the same kernels
with exact products (|q·w| ≤ 255·128; sums exact below 2²⁴): the unstructured int8 Linears of hosts without VNNI.
The driver (:func:`fp32_linear_t`) splits the work into (token block, row range) tasks, row ranges balanced by
stored entries (:func:`~.row_kernels.task_rows`; up to :data:`BLOCKS_INSIDE` blocks a task is a row range that runs
each group of rows over every block in turn, so each weight leaves memory once per call); a thread's rows stream
past one block's slab — K·TB·4 bytes, 192 KB at K = 768 —, whatever the batch: the activation rows a weight reads
are contiguous and no two share cache sets the way a (K, T) array's rows 16 KB apart do. With K in panels a task
takes its rows in the packing's groups (:data:`~.fp32_packing.GROUP`) and runs each panel over the group: one
emitted loop (:func:`emit_runs`) walks the group's runs on the panel, each continuing its row's sums from memory with
the row kernel's ``add`` form (the same order as one pass), every pointer and bound in registers, so the activations
a panel reads stay in cache while the weights, packed in that order, stream front to back. Outputs of
:data:`STREAM_BYTES` and more go to memory with non-temporal stores. The epilogue (bias, scale, GELU:
:mod:`.epilogue`, at the path's vector width) runs on each row's block in L1. The IR is generic LLVM vector code
(``llvm.fma``): :func:`row_assembly` compiles it for any target CPU, so the 512-bit path is checked on hosts without
AVX-512. Tested against float64 products in tests/kernels/test_fp32_rows.py.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from llvmlite import ir
from numba import config, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from sparsecore.kernels._config import NJIT_FMA, NJIT_FMA_PARALLEL
from sparsecore.kernels.bound import bound
from sparsecore.kernels.epilogue import row_epilogue, row_epilogue_stream, store_fence
from sparsecore.kernels.fp32_packing import TOKENS, RowsF32
from sparsecore.kernels.isa import FLOAT_PATHS, float_path, float_supported, marker, marker_path
from sparsecore.kernels.row_kernels import assembly, row_function, row_intrinsic, task_rows
from sparsecore.kernels.simd import accumulate_loop

# path → (fp32 lanes per vector, vectors, accumulator chains); lanes · vectors = TOKENS
SHAPES = {"avx512": (16, 4, 2), "avx2": (8, 8, 1)}

_I32, _I64, _F32 = ir.IntType(32), ir.IntType(64), ir.FloatType()
_FP32 = (types.uint16, types.float32, types.float32, types.float32)  # index, values, activations, out


def _broadcast(builder, scalar, lanes: int):
    vec = ir.VectorType(scalar.type, lanes)
    first = builder.insert_element(ir.Constant(vec, ir.Undefined), scalar, ir.Constant(_I32, 0))
    return builder.shuffle_vector(first, ir.Constant(vec, ir.Undefined), ir.Constant(ir.VectorType(_I32, lanes),
                                                                                       [0] * lanes))


def emit_row(builder: ir.IRBuilder, path: str, kind: str, index_ptr, values_ptr, j_start, j_end, slab_ptr,
             out_ptr, add: bool = False) -> None:
    """Emit ``out[0 : TB] = Σ_{j0 ≤ j < j1} values[j] · slab[index[j], 0 : TB]`` (csr) or ``Σ_j Σ_q values[j, q] ·
    slab[4·index[j] + q, 0 : TB]`` (block4), fp32; ``add``: ``out +=`` (the sums start from ``out``).

    Pointers: ``index_ptr`` i16* columns (unsigned), ``values_ptr`` float* weights (four per entry for block4),
    ``slab_ptr`` float* one token block (row k at element TB·k), ``out_ptr`` float* TB results, written (read first
    with ``add``). ``j_start``
    and ``j_end`` (i64) are multiples of the path's chain count for csr (``pack_rows`` pads runs to even).
    """
    lanes, vectors, chains = SHAPES[path]
    vec = ir.VectorType(_F32, lanes)
    fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec] * 3), f"llvm.fma.v{lanes}f32")
    width = 4 if kind == "block4" else 1
    per_step = 1 if kind == "block4" else chains  # entries per loop iteration

    def const(value):
        return ir.Constant(_I64, value)

    def step(p, accs):
        accs = list(accs)
        for e in range(per_step):
            j = builder.add(builder.mul(p, const(per_step)), const(e))
            column = builder.zext(builder.load(builder.gep(index_ptr, [j])), _I64)
            for q in range(width):
                w = _broadcast(builder, builder.load(builder.gep(values_ptr, [
                    builder.add(builder.mul(j, const(width)), const(q))])), lanes)
                row = builder.gep(slab_ptr, [builder.mul(builder.add(builder.mul(column, const(width)), const(q)),
                                                         const(TOKENS))])
                chain = e if kind == "csr" else q * chains // 4
                for v in range(vectors):
                    x = builder.load(builder.bitcast(builder.gep(row, [const(v * lanes)]), vec.as_pointer()), align=4)
                    a = chain * vectors + v
                    accs[a] = builder.call(fma, [x, w, accs[a]])
        return accs

    start = builder.sdiv(j_start, const(per_step))
    end = builder.sdiv(j_end, const(per_step))
    zero = ir.Constant(vec, [0.0] * lanes)
    first = [builder.load(builder.bitcast(builder.gep(out_ptr, [const(v * lanes)]), vec.as_pointer()), align=4)
             for v in range(vectors)] if add else [zero] * vectors
    accs = accumulate_loop(builder, start, end, first + [zero] * (vectors * (chains - 1)), vectors * chains, step)
    for v in range(vectors):
        total = accs[v]
        for c in range(1, chains):
            total = builder.fadd(total, accs[c * vectors + v])
        builder.store(total, builder.bitcast(builder.gep(out_ptr, [const(v * lanes)]), vec.as_pointer()), align=4)


@nb.njit(inline="always", **NJIT_FMA)
def _plain_csr(index, values, j0, j1, xb, b, out):
    """The generic path, csr: ``out[i] = Σ_j values[j] · xb[b, index[j], i]``."""
    out[:] = 0.0
    _plain_csr_add(index, values, j0, j1, xb, b, out)


@nb.njit(inline="always", **NJIT_FMA)
def _plain_csr_add(index, values, j0, j1, xb, b, out):
    """The generic path, csr: ``out[i] += Σ_j values[j] · xb[b, index[j], i]``."""
    for j in range(j0, j1):
        w, x = values[j], xb[b, index[j]]
        for i in range(out.size):
            out[i] += w * x[i]


@nb.njit(inline="always", **NJIT_FMA)
def _plain_block4(index, values, j0, j1, xb, b, out):
    """The generic path, block4: ``out[i] = Σ_j Σ_q values[j, q] · xb[b, 4·index[j] + q, i]``."""
    out[:] = 0.0
    _plain_block4_add(index, values, j0, j1, xb, b, out)


@nb.njit(inline="always", **NJIT_FMA)
def _plain_block4_add(index, values, j0, j1, xb, b, out):
    """The generic path, block4: ``out[i] += Σ_j Σ_q values[j, q] · xb[b, 4·index[j] + q, i]``."""
    for j in range(j0, j1):
        c = 4 * np.int64(index[j])
        for q in range(4):
            w, x = values[j, q], xb[b, c + q]
            for i in range(out.size):
                out[i] += w * x[i]


def _rows(kind: str, plain, add: bool = False):
    kernels = {path: row_intrinsic(lambda builder, path, *ptrs, kind=kind: emit_row(builder, path, kind, *ptrs,
                                                                                    add=add),
                                   path, 3, TOKENS, _FP32) for path in SHAPES}
    return row_function(kernels, plain, f"""One row's {kind} products for token block ``b``, {'added to' if add else
                        'written to'} ``out`` (TB floats), on the path ``marker``'s type names.""")


csr_row = _rows("csr", _plain_csr)
block4_row = _rows("block4", _plain_block4)
csr_row_add = _rows("csr", _plain_csr_add, add=True)
block4_row_add = _rows("block4", _plain_block4_add, add=True)


def _row(marker, index, values, j0, j1, xb, b, out):
    """One row's products: block4 (2-D ``values``) or csr, chosen at compile time."""


def _row_add(marker, index, values, j0, j1, xb, b, out):
    """:func:`_row` added to ``out``."""


@overload(_row, inline="always")
def _row_impl(marker, index, values, j0, j1, xb, b, out):
    kernel = block4_row if values.ndim == 2 else csr_row
    return lambda marker, index, values, j0, j1, xb, b, out: kernel(marker, index, values, values, j0, j1, xb, b, out)


@overload(_row_add, inline="always")
def _row_add_impl(marker, index, values, j0, j1, xb, b, out):
    kernel = block4_row_add if values.ndim == 2 else csr_row_add
    return lambda marker, index, values, j0, j1, xb, b, out: kernel(marker, index, values, values, j0, j1, xb, b, out)


if config.DISABLE_JIT:  # coverage runs: no overloads outside compiled code

    def _row(marker, index, values, j0, j1, xb, b, out):
        (block4_row if values.ndim == 2 else csr_row)(marker, index, values, values, j0, j1, xb, b, out)

    def _row_add(marker, index, values, j0, j1, xb, b, out):
        (block4_row_add if values.ndim == 2 else csr_row_add)(marker, index, values, values, j0, j1, xb, b, out)


def _destination(out, r, b):
    """Where row ``r``'s results for token block ``b`` go: ``out[r, block's tokens]`` of a (N, T) output, or the whole
    block row ``out[b, r]`` of a token-blocked (blocks, N, TB) one (padding tokens included)."""


@overload(_destination, inline="always")
def _destination_impl(out, r, b):
    if out.ndim == 3:
        return lambda out, r, b: out[b, r]
    return lambda out, r, b: out[r, b * TOKENS:min(out.shape[1], (b + 1) * TOKENS)]


if config.DISABLE_JIT:  # coverage runs: no overloads outside compiled code

    def _destination(out, r, b):
        return out[b, r] if out.ndim == 3 else out[r, b * TOKENS:min(out.shape[1], (b + 1) * TOKENS)]


STREAMING, CACHED = np.float32(0), np.float64(0)  # a kernel's ``stream`` argument: its type picks the stores


def _epilogue(marker, acc, bias, scale, gelu, stream, out):
    """The row epilogue, its full vectors stored non-temporally when ``stream`` is :data:`STREAMING` (a type, so
    a kernel compiles only the stores it uses)."""
    (row_epilogue_stream if isinstance(stream, np.float32) else row_epilogue)(marker, acc, bias, scale, gelu, out)


def _fence(stream):
    """:func:`~.epilogue.store_fence` after :data:`STREAMING` stores; nothing otherwise."""


if not config.DISABLE_JIT:

    @overload(_epilogue, inline="always")
    def _epilogue_impl(marker, acc, bias, scale, gelu, stream, out):
        write = row_epilogue_stream if stream == types.float32 else row_epilogue
        return lambda marker, acc, bias, scale, gelu, stream, out: write(marker, acc, bias, scale, gelu, out)

    @overload(_fence, inline="always")
    def _fence_impl(stream):
        if stream == types.float32:
            return lambda stream: store_fence()
        return lambda stream: None


@nb.njit(**NJIT_FMA_PARALLEL)
def _linear(marker, indptr, index, values, xb, bounds, inside, bias, scale, gelu, stream, scratch, out):
    """``out = (Σ + bias) · scale`` (then GELU) per row, ``out`` (N, T) or token-blocked; task = (token block, row
    range from ``bounds``) — or, ``inside``, a row range over every token block —, its rows in groups of
    ``scratch.shape[1]`` (``scratch (tasks, rows, TB)``): the group's sums, then its epilogues, block after block.
    ``stream`` :data:`STREAMING`: the results go to memory with non-temporal stores."""
    chunks = bounds.size - 1
    group = scratch.shape[1]
    inner = xb.shape[0] if inside else 1
    for task in nb.prange(xb.shape[0] // inner * chunks):
        b0, c = task // chunks, task % chunks
        accs = scratch[task]
        for r0 in range(bounds[c], bounds[c + 1], group):
            r1 = min(r0 + group, bounds[c + 1])
            for b in range(b0, b0 + inner):
                for r in range(r0, r1):
                    _row(marker, index, values, indptr[r], indptr[r + 1], xb, b, accs[r - r0])
                for r in range(r0, r1):
                    _epilogue(marker, accs[r - r0], bias[r], scale[r], gelu, stream, _destination(out, r, b))
        _fence(stream)


def emit_runs(builder: ir.IRBuilder, path: str, kind: str, run_row_ptr, segments_ptr, s_start, s_end, index_ptr,
              values_ptr, slab_ptr, partial_ptr) -> None:
    """Emit, for each run ``s_start ≤ s < s_end`` in turn, :func:`emit_row`'s ``add`` form on entries
    ``segments[s] : segments[s + 1]`` into row ``run_row[s]`` of ``partial`` (TB floats a row): one loop over a
    (group, panel)'s runs, every pointer in a register. ``run_row_ptr`` i16* (unsigned), ``segments_ptr`` i64*."""
    one = ir.Constant(_I64, 1)
    with cgutils.for_range_slice(builder, s_start, s_end, one, inc=True) as (s, _):
        row = builder.zext(builder.load(builder.gep(run_row_ptr, [s])), _I64)
        j0 = builder.load(builder.gep(segments_ptr, [s]))
        j1 = builder.load(builder.gep(segments_ptr, [builder.add(s, one)]))
        emit_row(builder, path, kind, index_ptr, values_ptr, j0, j1, slab_ptr,
                 builder.gep(partial_ptr, [builder.mul(row, ir.Constant(_I64, TOKENS))]), add=True)


def _runs_intrinsic(path: str, kind: str):
    """``f(run_row, segments, s0, s1, index, values, xb, b, partial)``: :func:`emit_runs` on token block ``b``."""

    @intrinsic
    def runs(typingctx, run_row, segments, s0, s1, index, values, xb, b, partial):
        dtypes = (types.uint16, types.int64, types.uint16, types.float32, types.float32, types.float32)
        arrays = (run_row, segments, index, values, xb, partial)
        if not (all(isinstance(a, types.Array) and a.dtype == d for a, d in zip(arrays, dtypes)) and xb.ndim == 3
                and partial.ndim == 2 and values.ndim == (2 if kind == "block4" else 1)):
            return None

        def codegen(context, builder, signature, args):
            def data(i):
                return cgutils.create_struct_proxy(signature.args[i])(context, builder, value=args[i]).data

            def i64(i):
                return context.cast(builder, args[i], signature.args[i], types.int64)

            xs = cgutils.create_struct_proxy(signature.args[6])(context, builder, value=args[6])
            features = cgutils.unpack_tuple(builder, xs.shape, 3)[1]
            slab = builder.gep(xs.data, [builder.mul(builder.mul(i64(7), features), ir.Constant(_I64, TOKENS))])
            emit_runs(builder, path, kind, data(0), data(1), i64(2), i64(3), data(4), data(5), slab, data(8))
            return context.get_dummy_value()

        return types.void(run_row, segments, s0, s1, index, values, xb, b, partial), codegen

    return runs


_RUNS = {(path, kind): _runs_intrinsic(path, kind) for path in SHAPES for kind in ("csr", "block4")}


@nb.njit(inline="always", **NJIT_FMA)
def _plain_runs_csr(run_row, segments, s0, s1, index, values, xb, b, partial):
    """The generic path, csr: each run's products added to its row of ``partial``."""
    for s in range(s0, s1):
        _plain_csr_add(index, values, segments[s], segments[s + 1], xb, b, partial[run_row[s]])


@nb.njit(inline="always", **NJIT_FMA)
def _plain_runs_block4(run_row, segments, s0, s1, index, values, xb, b, partial):
    """The generic path, block4: each run's products added to its row of ``partial``."""
    for s in range(s0, s1):
        _plain_block4_add(index, values, segments[s], segments[s + 1], xb, b, partial[run_row[s]])


def _runs(marker, run_row, segments, s0, s1, index, values, xb, b, partial):
    """A (group, panel)'s runs ``s0 : s1`` added to their rows of ``partial``, on the path ``marker``'s type names."""
    plain = _plain_runs_block4 if values.ndim == 2 else _plain_runs_csr
    plain(run_row, segments, s0, s1, index, values, xb, b, partial)


if not config.DISABLE_JIT:

    @overload(_runs, inline="always")
    def _runs_impl(marker, run_row, segments, s0, s1, index, values, xb, b, partial):
        kernel = _RUNS.get((marker_path(marker), "block4" if values.ndim == 2 else "csr"))
        if kernel is None:
            kernel = _plain_runs_block4 if values.ndim == 2 else _plain_runs_csr
        return lambda marker, run_row, segments, s0, s1, index, values, xb, b, partial: kernel(
            run_row, segments, s0, s1, index, values, xb, b, partial)


@nb.njit(**NJIT_FMA_PARALLEL)
def _linear_panels(marker, group_runs, run_row, segments, index, values, xb, bounds, inside, bias, scale, gelu,
                   stream, partial, out):
    """:func:`_linear` with K in panels: a task's rows go group by group of the packing (``partial.shape[1]`` rows:
    :attr:`~.fp32_packing.RowsF32.group`); per token block a group's partial sums start at zero in the thread's
    ``partial`` rows and each panel's runs (``group_runs[g · panels + p] : …[… + 1]``) are added to them
    in one loop, so the slab part a panel reads stays in L1 (L2 for the widest panels) while the group's runs stream
    past it; then the rows' epilogues. A group a task's row range cuts (bounds need not fall on group boundaries) runs
    the runs of its own rows only. ``inside``: a task is a row range, each group running every token block in turn;
    ``stream`` :data:`STREAMING`: the results go to memory with non-temporal stores."""
    chunks = bounds.size - 1
    group = partial.shape[1]
    n = bias.size
    panels = (group_runs.size - 1) // max(1, -(-n // group))
    inner = xb.shape[0] if inside else 1
    for task in nb.prange(xb.shape[0] // inner * chunks):
        b0, c = task // chunks, task % chunks
        rows = partial[nb.get_thread_id()]
        lo, hi = bounds[c], bounds[c + 1]
        for g in range(lo // group, -(-hi // group)):
            r0 = g * group
            first, last = max(lo, r0), min(hi, r0 + group)
            whole = first == r0 and last == min(n, r0 + group)
            for b in range(b0, b0 + inner):
                rows[first - r0:last - r0] = 0.0
                for p in range(panels):
                    s0, s1 = group_runs[g * panels + p], group_runs[g * panels + p + 1]
                    if whole:
                        _runs(marker, run_row, segments, s0, s1, index, values, xb, b, rows)
                    else:
                        for s in range(s0, s1):
                            r = r0 + np.int64(run_row[s])
                            if first <= r < last:
                                _row_add(marker, index, values, segments[s], segments[s + 1], xb, b, rows[r - r0])
                for r in range(first, last):
                    _epilogue(marker, rows[r - r0], bias[r], scale[r], gelu, stream, _destination(out, r, b))
        _fence(stream)


BLOCKS_INSIDE = 2  # up to this many token blocks (one 128-token sequence) a task is a row range run over every
# block, group by group, instead of one (block, row range): each 6-byte weight leaves memory once per call, not once
# per block — at batch 1 a BERT-base model's fp32 weights (100 MB at 80%) do not fit the caches
EPILOGUE_ROWS = 32  # rows a one-panel Linear sums before their epilogues: each loop then runs back to back
STREAM_BYTES = 16 << 20  # outputs from this size on (half a 32 MB L3) are written with non-temporal stores


def activation_shape(k: int, t_total: int) -> tuple[int, int, int]:
    """Shape of the token-blocked activations of ``t_total`` tokens of ``k`` features."""
    return (-(-t_total // TOKENS), k, TOKENS)


@nb.njit(**NJIT_FMA_PARALLEL)
def _token_blocks(xt, out):
    t_total = xt.shape[1]
    blocks = out.shape[0]
    for c in nb.prange(xt.shape[0]):
        src = xt[c]
        for b in range(blocks):
            dst = out[b, c]
            t0 = b * TOKENS
            width = min(TOKENS, t_total - t0)
            dst[:width] = src[t0:t0 + width]
            dst[width:] = 0.0


def token_blocks(xt: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``xt`` (K, T) float32 in the token-blocked layout :func:`activation_shape` (tokens past T: zeros)."""
    return token_blocks_call(xt, out)()


def token_blocks_call(xt: np.ndarray, out: np.ndarray | None = None):
    """:func:`token_blocks` checked once and bound to these arrays (:func:`~.bound.bound`)."""
    if xt.dtype != np.float32 or xt.ndim != 2:
        raise ValueError(f"xt must be a 2-D float32 (K, T) array, got {xt.dtype} with shape {xt.shape}")
    shape = activation_shape(*xt.shape)
    if out is None:
        out = np.empty(shape, np.float32)
    elif out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {shape}")
    return bound(_token_blocks, out, xt, out)


def fp32_linear_t(weight: RowsF32, xb: np.ndarray, t_total: int, bias: np.ndarray | None = None,
                  gelu: bool = False, path: str | None = None, out: np.ndarray | None = None,
                  scale: np.ndarray | None = None, blocked_out: bool = False) -> np.ndarray:
    """``Yᵀ (N, t_total) = (W · Xᵀ + bias) · scale`` (then exact GELU) with ``xb`` the token-blocked activations
    (:func:`token_blocks`, or the float32 codes of :func:`~.quantize.quantize_f32_blocked` for int8 codes held as
    float32: exact products); ``scale`` (N,) per output row (None: 1); ``path`` one of ``avx512``/``avx2``/``generic``
    (default: :func:`~.isa.float_path`). ``blocked_out``: write Y token-blocked instead, ``(blocks, N, TB)`` — the
    next Linear's input layout, so it needs no copy; its padding tokens then hold the epilogue of a zero sum."""
    return fp32_linear_call(weight, xb, t_total, bias, gelu, path, out, scale, blocked_out)()


def fp32_linear_call(weight: RowsF32, xb: np.ndarray, t_total: int, bias: np.ndarray | None = None,
                     gelu: bool = False, path: str | None = None, out: np.ndarray | None = None,
                     scale: np.ndarray | None = None, blocked_out: bool = False):
    """:func:`fp32_linear_t` checked once and bound to these arrays (:func:`~.bound.bound`): calling it runs the
    product on ``xb``'s current values and returns ``out``."""
    if not isinstance(weight, RowsF32):
        raise TypeError(f"weight must be a RowsF32 (fp32_packing.pack_rows), got {type(weight).__name__}")
    path = float_path() if path is None else path
    if path not in FLOAT_PATHS or not float_supported(path):
        runnable = ", ".join(p for p in FLOAT_PATHS if float_supported(p))
        raise ValueError(f"path {path!r} cannot run the fp32 row kernels on this CPU (they run: {runnable})")
    n, k = weight.shape
    shape = activation_shape(k, t_total)
    if xb.dtype != np.float32 or xb.shape != shape or not xb.flags.c_contiguous:
        raise ValueError(f"activations must be C-contiguous {shape} float32 (the token-blocked layout for {t_total} "
                         f"tokens), got {xb.dtype} {xb.shape}")
    bias = np.zeros(n, np.float32) if bias is None else np.ascontiguousarray(bias, np.float32)
    if scale is None:  # read-only in the kernel: one array of ones per weight
        scale = weight.tasks.get("ones")
        if scale is None:
            scale = weight.tasks["ones"] = np.ones(n, np.float32)
    scale = np.ascontiguousarray(scale, np.float32)
    for name, v in (("bias", bias), ("scale", scale)):
        if v.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},), got {v.shape}")
    out_shape = activation_shape(n, t_total) if blocked_out else (n, t_total)
    if out is None:
        out = np.empty(out_shape, np.float32)
    elif out.shape != out_shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {out_shape}")
    if t_total == 0:
        return lambda: out
    stream = STREAMING if streams(out, t_total, blocked_out) else CACHED
    inside = 1 < shape[0] <= BLOCKS_INSIDE
    task_blocks = 1 if inside else shape[0]  # token blocks that take separate tasks
    bounds = task_rows(weight, task_blocks, nb.get_num_threads())
    if weight.panels == 1:
        scratch = np.empty((task_blocks * (bounds.size - 1), EPILOGUE_ROWS, TOKENS), np.float32)
        return bound(_linear, out, marker(path), weight.indptr, weight.index, weight.values, xb, bounds, inside, bias,
                     scale, gelu, stream, scratch, out)
    # a group's partial sums, per thread
    partial = np.empty((nb.config.NUMBA_NUM_THREADS, min(weight.group, n), TOKENS), np.float32)
    return bound(_linear_panels, out, marker(path), weight.group_runs, weight.run_row, weight.segments, weight.index,
                 weight.values, xb, bounds, inside, bias, scale, gelu, stream, partial, out)


def streams(out: np.ndarray, t_total: int, blocked_out: bool) -> bool:
    """Whether a Linear writes ``out`` with non-temporal stores: an output of :data:`STREAM_BYTES` or more leaves the
    caches before it is read, so it goes straight to memory — where every full vector is aligned (64-byte start, and
    a (N, T) output's rows, T floats apart, on 64-byte boundaries too)."""
    return out.nbytes >= STREAM_BYTES and out.ctypes.data % 64 == 0 and (blocked_out or t_total % 16 == 0)


def row_assembly(path: str, kind: str, cpu: str, add: bool = False, runs: bool = False) -> str:
    """Machine code of one ``path`` row kernel of ``kind`` (``add``: the one that adds to ``out``; ``runs``: the loop
    over a (group, panel)'s runs, :func:`emit_runs`) compiled for ``cpu`` (an LLVM CPU name such as ``icelake-server``
    or ``haswell``) from a stand-alone module — whatever CPU this host is."""
    i16, f32 = ir.IntType(16).as_pointer(), _F32.as_pointer()
    if runs:
        return assembly(f"fp32_runs_{path}_{kind}", [i16, _I64.as_pointer(), _I64, _I64, i16, f32, f32, f32],
                        lambda builder, *args: emit_runs(builder, path, kind, *args), cpu)
    return assembly(f"fp32_rows_{path}_{kind}", [i16, f32, _I64, _I64, f32, f32],
                    lambda builder, *args: emit_row(builder, path, kind, *args, add=add), cpu)
