"""Sparse fp32 Linears on token-blocked activations: 512-bit or 256-bit FMAs, the activation slab in L2.

Computes ``Yᵀ (N, T) = W (N, K) · Xᵀ (K, T) + b`` (then exact GELU) with Xᵀ *token-blocked*:
``xb[b, k, i] = Xᵀ[k, TB·b + i]``, ``(ceil(T/TB), K, TB)`` float32 (:func:`token_blocks`; tokens past T are zeros),
TB = :data:`TOKENS` = 64 on every path. Weights (:func:`pack_rows`): each row's stored entries in column order —
``csr`` (one weight per entry, a row padded to an even count with a zero weight on its last column) or ``block4``
(1×4 blocks along K: an entry holds the weights of columns 4c … 4c+3). Per entry and token block a row kernel
broadcasts the weight and runs one FMA per vector of the weight's activation row (256 contiguous bytes), the
accumulators in registers for the whole row:

* ``avx512`` — 4 zmm vectors × 2 accumulator chains (CSR entries alternate between the chains, a block's first and
  last weight pairs go to one each): 8 independent FMAs in flight, as the FMA latency × ports of these cores needs.
* ``avx2`` — 8 ymm vectors, one chain (8 accumulators already).
* ``generic`` — plain loops (any CPU, and coverage runs).

int8 codes held as float32 (weights and activations, :func:`~.quantize.quantize_f32_blocked`) run the same kernels
with exact products (|q·w| ≤ 255·128; sums exact below 2²⁴): the unstructured int8 Linears of hosts without VNNI.
The driver (:func:`fp32_linear_t`) splits the work into (token block, row range) tasks, row ranges balanced by
stored entries (:func:`~.row_kernels.task_rows`); a thread's rows stream past one block's slab — K·TB·4 bytes,
192 KB at K = 768 — that stays in its L2, whatever the batch: the activation rows a weight reads are contiguous
and no two share cache sets the way a (K, T) array's rows 16 KB apart do. The epilogue (bias, scale, GELU:
:mod:`.epilogue`, at the path's vector width) runs on each row's block in L1. Panels of K small enough for L1 were
measured slower (the accumulators then go through memory per panel). The IR is generic LLVM vector code
(``llvm.fma``): :func:`row_assembly` compiles it for any target CPU, so the 512-bit path is checked on hosts without
AVX-512.
Tested against float64 products in tests/kernels/test_fp32_rows.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba as nb
import numpy as np
from llvmlite import ir
from numba import config, types
from numba.core import cgutils
from numba.extending import overload

from sparsecore.kernels._config import NJIT_FMA, NJIT_FMA_PARALLEL
from sparsecore.kernels.epilogue import row_epilogue
from sparsecore.kernels.isa import FLOAT_PATHS, float_path, float_supported, marker
from sparsecore.kernels.row_kernels import assembly, row_function, row_intrinsic, task_rows
from sparsecore.kernels.simd import accumulate_loop

TOKENS = 64  # tokens per block of the activation layout, every path
# path → (fp32 lanes per vector, vectors, accumulator chains); lanes · vectors = TOKENS
SHAPES = {"avx512": (16, 4, 2), "avx2": (8, 8, 1)}
KINDS = ("csr", "block4")  # packed weight formats
MAX_COLUMNS = 2**16  # entry columns (block columns for block4) are uint16

_I32, _I64, _F32 = ir.IntType(32), ir.IntType(64), ir.FloatType()
_FP32 = (types.uint16, types.float32, types.float32, types.float32)  # index, values, activations, out


def _broadcast(builder, scalar, lanes: int):
    vec = ir.VectorType(scalar.type, lanes)
    first = builder.insert_element(ir.Constant(vec, ir.Undefined), scalar, ir.Constant(_I32, 0))
    return builder.shuffle_vector(first, ir.Constant(vec, ir.Undefined), ir.Constant(ir.VectorType(_I32, lanes),
                                                                                       [0] * lanes))


def emit_row(builder: ir.IRBuilder, path: str, kind: str, index_ptr, values_ptr, j_start, j_end, slab_ptr,
             out_ptr) -> None:
    """Emit ``out[0 : TB] = Σ_{j0 ≤ j < j1} values[j] · slab[index[j], 0 : TB]`` (csr) or ``Σ_j Σ_q values[j, q] ·
    slab[4·index[j] + q, 0 : TB]`` (block4), fp32.

    Pointers: ``index_ptr`` i16* columns (unsigned), ``values_ptr`` float* weights (four per entry for block4),
    ``slab_ptr`` float* one token block (row k at element TB·k), ``out_ptr`` float* TB results, written. ``j_start``
    and ``j_end`` (i64) are multiples of the path's chain count for csr (:func:`pack_rows` pads rows to even).
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
    accs = accumulate_loop(builder, start, end, ir.Constant(vec, [0.0] * lanes), vectors * chains, step)
    for v in range(vectors):
        total = accs[v]
        for c in range(1, chains):
            total = builder.fadd(total, accs[c * vectors + v])
        builder.store(total, builder.bitcast(builder.gep(out_ptr, [const(v * lanes)]), vec.as_pointer()), align=4)


@nb.njit(inline="always", **NJIT_FMA)
def _plain_csr(index, values, j0, j1, xb, b, out):
    """The generic path, csr: ``out[i] = Σ_j values[j] · xb[b, index[j], i]``."""
    out[:] = 0.0
    for j in range(j0, j1):
        w, x = values[j], xb[b, index[j]]
        for i in range(out.size):
            out[i] += w * x[i]


@nb.njit(inline="always", **NJIT_FMA)
def _plain_block4(index, values, j0, j1, xb, b, out):
    """The generic path, block4: ``out[i] = Σ_j Σ_q values[j, q] · xb[b, 4·index[j] + q, i]``."""
    out[:] = 0.0
    for j in range(j0, j1):
        c = 4 * np.int64(index[j])
        for q in range(4):
            w, x = values[j, q], xb[b, c + q]
            for i in range(out.size):
                out[i] += w * x[i]


def _rows(kind: str, plain):
    kernels = {path: row_intrinsic(lambda builder, path, *ptrs, kind=kind: emit_row(builder, path, kind, *ptrs),
                                   path, 3, TOKENS, _FP32) for path in SHAPES}
    return row_function(kernels, plain, f"""One row's {kind} products for token block ``b``, written to ``out`` (TB
    floats), on the path ``marker``'s type names.""")


csr_row = _rows("csr", _plain_csr)
block4_row = _rows("block4", _plain_block4)


def _row(marker, index, values, j0, j1, xb, b, out):
    """One row's products: block4 (2-D ``values``) or csr, chosen at compile time."""


@overload(_row, inline="always")
def _row_impl(marker, index, values, j0, j1, xb, b, out):
    kernel = block4_row if values.ndim == 2 else csr_row
    return lambda marker, index, values, j0, j1, xb, b, out: kernel(marker, index, values, values, j0, j1, xb, b, out)


if config.DISABLE_JIT:  # coverage runs: no overloads outside compiled code

    def _row(marker, index, values, j0, j1, xb, b, out):
        (block4_row if values.ndim == 2 else csr_row)(marker, index, values, values, j0, j1, xb, b, out)


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


@nb.njit(**NJIT_FMA_PARALLEL)
def _linear(marker, indptr, index, values, xb, bounds, bias, scale, gelu, scratch, out):
    """``out = (Σ + bias) · scale`` (then GELU) per row, ``out`` (N, T) or token-blocked; task = (token block, row
    range from ``bounds``)."""
    chunks = bounds.size - 1
    for task in nb.prange(xb.shape[0] * chunks):
        b, c = task // chunks, task % chunks
        acc = scratch[task]
        for r in range(bounds[c], bounds[c + 1]):
            _row(marker, index, values, indptr[r], indptr[r + 1], xb, b, acc)
            row_epilogue(marker, acc, bias[r], scale[r], gelu, _destination(out, r, b))


@dataclass(frozen=True)
class RowsF32:
    """fp32 weights for the token-blocked kernels: ``indptr (N+1,) int64``, ``index (S,) uint16`` entry columns (block
    columns for block4), ``values`` ``(S,)`` (csr) or ``(S, 4)`` (block4) float32, ``shape (N, K)``."""

    indptr: np.ndarray
    index: np.ndarray
    values: np.ndarray
    shape: tuple[int, int]
    tasks: dict = field(default_factory=dict, repr=False, compare=False)  # (blocks, threads) → row bounds, "ones"

    @property
    def kind(self) -> str:
        return "block4" if self.values.ndim == 2 else "csr"

    @property
    def nnz(self) -> int:
        """Stored non-zero weights (padding and zeros inside blocks not counted)."""
        return int(np.count_nonzero(self.values))


def pack_rows(w: np.ndarray, kind: str = "csr") -> RowsF32:
    """``kind`` format of a dense (N, K) float32 matrix (entries equal to 0 dropped; a block4 block is stored when
    any of its four weights is non-zero, K % 4 == 0)."""
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
    stored = stored_groups(w, width)
    flat = np.flatnonzero(stored)  # row-major, columns sorted (2-D np.nonzero is several times slower)
    rows, cols = np.divmod(flat, k // width)
    values = w.reshape(n * (k // width), width)[flat]
    counts = np.count_nonzero(stored, axis=1)
    odd = counts % 2 if kind == "csr" else np.zeros(n, np.int64)  # csr rows even: the avx512 path takes pairs
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(counts + odd, out=indptr[1:])
    shift = np.cumsum(odd) - odd  # padding slots before each row
    index = np.empty(indptr[-1], np.uint16)
    packed = np.zeros((indptr[-1], width), np.float32)
    dest = np.arange(rows.size) + shift[rows]
    index[dest], packed[dest] = cols, values
    pads = indptr[1:][odd == 1] - 1  # an odd row's last slot: a zero weight on its last column
    index[pads] = index[pads - 1]
    return RowsF32(indptr, index, np.ascontiguousarray(packed.reshape(-1) if kind == "csr" else packed), (n, k))


def stored_groups(w: np.ndarray, width: int) -> np.ndarray:
    """``(N, K / width)`` bool: which groups of ``width`` consecutive weights along K hold a non-zero (0.0 and -0.0
    are zero)."""
    nonzero = np.ascontiguousarray(w != 0)
    if width == 1:
        return nonzero
    return nonzero.reshape(w.shape[0], -1, width).view(np.uint32).reshape(w.shape[0], -1) != 0 if width == 4 else \
        nonzero.reshape(w.shape[0], -1, width).any(axis=2)


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
    if xt.dtype != np.float32 or xt.ndim != 2:
        raise ValueError(f"xt must be a 2-D float32 (K, T) array, got {xt.dtype} with shape {xt.shape}")
    shape = activation_shape(*xt.shape)
    if out is None:
        out = np.empty(shape, np.float32)
    elif out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {shape}")
    _token_blocks(xt, out)
    return out


def fp32_linear_t(weight: RowsF32, xb: np.ndarray, t_total: int, bias: np.ndarray | None = None,
                  gelu: bool = False, path: str | None = None, out: np.ndarray | None = None,
                  scale: np.ndarray | None = None, blocked_out: bool = False) -> np.ndarray:
    """``Yᵀ (N, t_total) = (W · Xᵀ + bias) · scale`` (then exact GELU) with ``xb`` the token-blocked activations
    (:func:`token_blocks`, or the float32 codes of :func:`~.quantize.quantize_f32_blocked` for int8 codes held as
    float32: exact products); ``scale`` (N,) per output row (None: 1); ``path`` one of ``avx512``/``avx2``/``generic``
    (default: :func:`~.isa.float_path`). ``blocked_out``: write Y token-blocked instead, ``(blocks, N, TB)`` — the
    next Linear's input layout, so it needs no copy; its padding tokens then hold the epilogue of a zero sum."""
    if not isinstance(weight, RowsF32):
        raise TypeError(f"weight must be a RowsF32 (pack_rows), got {type(weight).__name__}")
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
        return out
    bounds = task_rows(weight, shape[0], nb.get_num_threads())
    scratch = np.empty((shape[0] * (bounds.size - 1), TOKENS), np.float32)
    _linear(marker(path), weight.indptr, weight.index, weight.values, xb, bounds, bias, scale, gelu, scratch, out)
    return out


def row_assembly(path: str, kind: str, cpu: str) -> str:
    """Machine code of one ``path`` row kernel of ``kind`` compiled for ``cpu`` (an LLVM CPU name such as
    ``icelake-server`` or ``haswell``) from a stand-alone module — whatever CPU this host is."""
    return assembly(f"fp32_rows_{path}_{kind}",
                    [ir.IntType(16).as_pointer(), _F32.as_pointer(), _I64, _I64, _F32.as_pointer(), _F32.as_pointer()],
                    lambda builder, *args: emit_row(builder, path, kind, *args), cpu)
