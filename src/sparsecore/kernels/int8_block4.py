"""Exact int8 products of 1×4-block-sparse weights on the CPU's integer units: AVX-512 VNNI, AVX-VNNI, AVX2.

Computes ``Y (N, T) int32 = W (N, K) int8 · X (K, T) uint8`` for a W stored as 1×4 blocks along K, with X
*interleaved by four features*: ``xq4[c, t, q] = X[4c + q, t]`` (``(K/4, T, 4)`` uint8, see
:func:`interleave4`). One stored block's four weights are packed into one int32, so each block costs one
broadcast and, per vector of tokens, one load and one integer dot-product instruction:

* ``avx512_vnni`` — ``vpdpbusd zmm``: 16 tokens × 4 u8·s8 products summed into int32 per instruction;
  8 accumulators = 128 tokens per tile.
* ``avx_vnni`` — the same instruction on ymm: 8 tokens; 8 accumulators = 64 tokens.
* ``avx2`` — codes widened to int16 (u8 zero-, s8 sign-extended; every product |255·128| < 2¹⁵) and
  ``vpmaddwd``: per token two exact int32 pair sums, kept apart in the accumulator and added once per tile;
  8 accumulators = 32 tokens. (``vpmaddubsw`` is never used: it saturates u8·s8 pair sums at int16.)
* ``generic`` — plain loops, any CPU.

Tokens past the last full tile run one vector at a time, and the last ones under a vector in the plain loop.
All paths are exact: int32 accumulation cannot overflow while K ≤ 65,792 (K·255·128 < 2³¹), checked by
:func:`pack_block4_int8`. Cost: 8·S·T integer operations for S stored blocks; the activation strip a
block reads is 4 bytes per token (a quarter of the fp32 kernels' traffic).

The vector loop is written as LLVM IR by :func:`emit_tile` (pure llvmlite), wrapped as a Numba intrinsic for
execution and built into a stand-alone module by :func:`tile_assembly` to check the machine code for any
target CPU — a VNNI path is compile-checked on a host that cannot run it. :mod:`.isa` picks the path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np
from llvmlite import ir
from numba import config, prange, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from sparsecore.kernels._config import NJIT_PARALLEL
from sparsecore.kernels.isa import PATHS, integer_path, supported
from sparsecore.kernels.simd import accumulate_loop

# path → (tokens per accumulator vector, accumulator vectors); a tile is their product in tokens
SHAPES = {"avx512_vnni": (16, 8), "avx_vnni": (8, 8), "avx2": (4, 8)}
MAX_K = 65_792  # K·255·128 < 2³¹: int32 accumulation is exact up to here

_I32, _I64, _I16, _I8 = ir.IntType(32), ir.IntType(64), ir.IntType(16), ir.IntType(8)


def _const_vec(element, values):
    return ir.Constant(ir.VectorType(element, len(values)), values)


def _broadcast(builder, scalar, lanes: int):
    vec = ir.VectorType(scalar.type, lanes)
    first = builder.insert_element(ir.Constant(vec, ir.Undefined), scalar, ir.Constant(_I32, 0))
    return builder.shuffle_vector(first, ir.Constant(vec, ir.Undefined), _const_vec(_I32, [0] * lanes))


def emit_tile(builder: ir.IRBuilder, path: str, index_ptr, values_ptr, j_start, j_end, xs_ptr,
              row_len, t_start, out_ptr, vectors: int | None = None) -> None:
    """Emit ``out[t0 : t0+W] += Σ_{j0 ≤ j < j1} dot4(values[j], xq4[index[j], t0 : t0+W, :])``.

    Pointers: ``index_ptr`` i16* block columns (unsigned); ``values_ptr`` i32* four int8 weights
    packed little-endian; ``xs_ptr`` i8* the interleaved activations (row ``c`` starts at byte 4·c·row_len);
    ``out_ptr`` i32* one output row. ``j_start``, ``j_end``, ``row_len`` (T) and ``t_start`` are i64. W is the
    path's tile width (:data:`SHAPES`), or ``vectors`` vectors of tokens when given (the token tails use
    one); the caller guarantees t0 + W ≤ T.
    """
    lanes, full = SHAPES[path]
    vectors = full if vectors is None else vectors
    acc_type = ir.VectorType(_I32, 2 * lanes if path == "avx2" else lanes)  # avx2: (token, pair) sums
    module = builder.module
    if path == "avx2":
        dot = cgutils.get_or_insert_function(
            module, ir.FunctionType(ir.VectorType(_I32, 8), [ir.VectorType(_I16, 16)] * 2), "llvm.x86.avx2.pmadd.wd")
    else:
        bits = 32 * lanes
        dot = cgutils.get_or_insert_function(module, ir.FunctionType(acc_type, [acc_type] * 3),
                                             f"llvm.x86.avx512.vpdpbusd.{bits}")
    zero = ir.Constant(acc_type, [0] * acc_type.count)

    def step(j, accs):
        column = builder.zext(builder.load(builder.gep(index_ptr, [j])), _I64)
        packed = builder.load(builder.gep(values_ptr, [j]))
        byte = builder.mul(builder.add(builder.mul(column, row_len), t_start), ir.Constant(_I64, 4))
        row = builder.gep(xs_ptr, [byte])
        if path == "avx2":  # weights (w0, w1, w2, w3) as int16, repeated for the 4 tokens of a vector
            w4 = builder.sext(builder.bitcast(packed, ir.VectorType(_I8, 4)), ir.VectorType(_I16, 4))
            weights = builder.shuffle_vector(w4, ir.Constant(ir.VectorType(_I16, 4), ir.Undefined),
                                             _const_vec(_I32, [0, 1, 2, 3] * 4))
            new_accs = []
            for v, acc in enumerate(accs):
                p = builder.bitcast(builder.gep(row, [ir.Constant(_I64, 16 * v)]), ir.VectorType(_I8, 16).as_pointer())
                x = builder.zext(builder.load(p, align=1), ir.VectorType(_I16, 16))
                new_accs.append(builder.add(acc, builder.call(dot, [x, weights])))
            return new_accs
        weights = _broadcast(builder, packed, lanes)  # vpdpbusd(acc, u8 activations, s8 weights)
        return [builder.call(dot, [acc, builder.load(builder.bitcast(
                    builder.gep(row, [ir.Constant(_I64, 4 * lanes * v)]), acc_type.as_pointer()), align=1), weights])
                for v, acc in enumerate(accs)]

    accs = accumulate_loop(builder, j_start, j_end, zero, vectors, step)
    out_type = ir.VectorType(_I32, lanes)
    for v, acc in enumerate(accs):
        if path == "avx2":  # per token: pair 0 + pair 1
            undef = ir.Constant(acc_type, ir.Undefined)
            even = builder.shuffle_vector(acc, undef, _const_vec(_I32, list(range(0, 2 * lanes, 2))))
            odd = builder.shuffle_vector(acc, undef, _const_vec(_I32, list(range(1, 2 * lanes, 2))))
            acc = builder.add(even, odd)
        p = builder.bitcast(builder.gep(out_ptr, [builder.add(t_start, ir.Constant(_I64, lanes * v))]),
                            out_type.as_pointer())
        builder.store(builder.add(builder.load(p, align=4), acc), p, align=4)


def _tile_intrinsic(path: str, vectors: int):
    @intrinsic
    def tile(typingctx, index, values, j0, j1, xq4, t0, out):
        ok = (isinstance(index, types.Array) and index.dtype == types.uint16 and
              isinstance(values, types.Array) and values.dtype == types.int32 and
              isinstance(xq4, types.Array) and xq4.ndim == 3 and xq4.dtype == types.uint8 and
              isinstance(out, types.Array) and out.dtype == types.int32)
        if not ok:
            return None

        def codegen(context, builder, signature, args):
            a_index, a_values, a_j0, a_j1, a_xq4, a_t0, a_out = args
            xs = cgutils.create_struct_proxy(xq4)(context, builder, value=a_xq4)

            def data(ty, value):
                return cgutils.create_struct_proxy(ty)(context, builder, value=value).data

            def i64(value, ty):
                return context.cast(builder, value, ty, types.int64)

            emit_tile(builder, path, data(index, a_index), data(values, a_values),
                      i64(a_j0, signature.args[2]), i64(a_j1, signature.args[3]), xs.data,
                      cgutils.unpack_tuple(builder, xs.shape, 3)[1], i64(a_t0, signature.args[5]), data(out, a_out),
                      vectors)
            return context.get_dummy_value()

        return types.void(index, values, j0, j1, xq4, t0, out), codegen

    return tile


# path → (the full tile, a one-vector tile for token tails)
_TILES = {path: (_tile_intrinsic(path, vectors), _tile_intrinsic(path, 1)) for path, (_, vectors) in SHAPES.items()}


# Compile-time path selection: the kernel is specialised on the *type* of a marker argument (one unsigned
# integer width per path), so each path is its own cached machine code and a call costs no dispatch.
_MARKERS = {"avx512_vnni": np.uint8, "avx_vnni": np.uint16, "avx2": np.uint32, "generic": np.uint64}
_MARKER_PATH = {nb.from_dtype(np.dtype(marker)): path for path, marker in _MARKERS.items()}


def _tile(marker, narrow, index, values, j0, j1, xq4, t0, out):
    """Dispatch stub: the vector tile (``narrow``: one vector of tokens) of the path ``marker``'s type names."""


@overload(_tile, inline="always")
def _tile_impl(marker, narrow, index, values, j0, j1, xq4, t0, out):
    kernels = _TILES.get(_MARKER_PATH.get(marker))
    if kernels is None:
        return lambda marker, narrow, index, values, j0, j1, xq4, t0, out: None  # generic: no vector tile
    wide, one = kernels

    def impl(marker, narrow, index, values, j0, j1, xq4, t0, out):
        if narrow:
            one(index, values, j0, j1, xq4, t0, out)
        else:
            wide(index, values, j0, j1, xq4, t0, out)

    return impl


def _widths(marker):
    """(tokens per full tile, tokens per vector) of the path ``marker``'s type names ((0, 0): none)."""


@overload(_widths, inline="always")
def _widths_impl(marker):
    lanes, vectors = SHAPES.get(_MARKER_PATH.get(marker), (0, 0))
    widths = (lanes * vectors, lanes)
    return lambda marker: widths


if config.DISABLE_JIT:  # coverage runs: no intrinsics outside compiled code, so every token takes the plain loop

    def _widths(marker):  # noqa: F811
        return 0, 0


@nb.njit(inline="always")
def _row_products(marker, index, values, values4, j0, j1, xq4, row):
    """``row[t] = Σ_{j0 ≤ j < j1} dot4(values[j], xq4[index[j], t])`` for every token: full tiles, then one
    vector at a time, then the plain loop."""
    t_total = row.shape[0]
    width, lanes = _widths(marker)
    tiles = t_total // width if width else 0
    vectors = (t_total - tiles * width) // lanes if lanes else 0
    row[:tiles * width + vectors * lanes] = 0
    for i in range(tiles):
        _tile(marker, False, index, values, j0, j1, xq4, i * width, row)
    for i in range(vectors):
        _tile(marker, True, index, values, j0, j1, xq4, tiles * width + i * lanes, row)
    for t in range(tiles * width + vectors * lanes, t_total):
        total = np.int32(0)
        for j in range(j0, j1):
            c = index[j]
            for q in range(4):
                total += np.int32(values4[j, q]) * np.int32(xq4[c, t, q])
        row[t] = total


@nb.njit(**NJIT_PARALLEL)
def _block4_int8(marker, indptr, index, values, values4, xq4, out):
    for r in prange(out.shape[0]):
        _row_products(marker, index, values, values4, indptr[r], indptr[r + 1], xq4, out[r])


@nb.njit(**NJIT_PARALLEL)
def _block4_int8_linear(marker, indptr, index, values, values4, xq4, bias, scale, acc, out):
    for r in prange(out.shape[0]):
        row = acc[r]
        _row_products(marker, index, values, values4, indptr[r], indptr[r + 1], xq4, row)
        b, s = bias[r], scale[r]
        for t in range(out.shape[1]):  # epilogue while the row is in cache: (Σ + bias) · scale
            out[r, t] = (np.float32(row[t]) + b) * s


@dataclass(frozen=True)
class Block4Int8:
    """1×4-block int8 weights: ``indptr (N+1,) int64``, ``index (S,) uint16`` block columns (K ≤ ``MAX_K``
    keeps them below 2¹⁶), ``values (S,) int32`` (four int8 weights packed little-endian), ``shape (N, K)``."""

    indptr: np.ndarray
    index: np.ndarray
    values: np.ndarray
    shape: tuple[int, int]

    @property
    def nnz(self) -> int:
        """Stored non-zero weights (zeros inside stored blocks not counted)."""
        return int(np.count_nonzero(self.blocks4))

    @property
    def blocks4(self) -> np.ndarray:
        """The stored weights as ``(S, 4) int8`` (a view of ``values``)."""
        return self.values.view(np.int8).reshape(-1, 4)


def pack_block4_int8(codes: np.ndarray) -> Block4Int8:
    """Block format of an (N, K) int8 matrix: a block is stored when any of its four codes is non-zero; K is
    padded with zero codes to a multiple of 4. K ≤ ``MAX_K`` (beyond it int32 sums could overflow)."""
    codes = np.asarray(codes)
    if codes.dtype != np.int8 or codes.ndim != 2:
        raise ValueError(f"codes must be a 2-D int8 array, got {codes.dtype} with shape {codes.shape}")
    n, k = codes.shape
    if k > MAX_K:
        raise ValueError(f"K = {k} > {MAX_K}: int32 sums of u8·s8 products could overflow")
    padded = np.zeros((n, -(-k // 4) * 4), np.int8)
    padded[:, :k] = codes
    grouped = np.ascontiguousarray(padded.reshape(n, -1, 4))
    rows, cols = np.nonzero(np.any(grouped != 0, axis=2))  # row-major: rows ascending, columns sorted
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    index = cols.astype(np.uint16)
    values = np.ascontiguousarray(grouped[rows, cols]).view(np.int32).reshape(-1)
    return Block4Int8(indptr, index, values, (n, k))


def interleave4(xq: np.ndarray) -> np.ndarray:
    """``(K, T)`` uint8 activations → ``(ceil(K/4), T, 4)`` with ``[c, t, q] = xq[4c + q, t]`` (zero-padded K)."""
    xq = np.asarray(xq)
    if xq.dtype != np.uint8 or xq.ndim != 2:
        raise ValueError(f"activations must be a 2-D uint8 array, got {xq.dtype} with shape {xq.shape}")
    k, t = xq.shape
    padded = np.zeros((-(-k // 4) * 4, t), np.uint8)
    padded[:k] = xq
    return np.ascontiguousarray(padded.reshape(len(padded) // 4, 4, t).transpose(0, 2, 1))


def _checked(weight: Block4Int8, xq4: np.ndarray, path: str | None) -> str:
    """The path to run (``path`` or the host's), after checking it runs here and ``xq4`` fits ``weight``."""
    path = integer_path() if path is None else path
    if path not in PATHS or not supported(path):
        raise ValueError(f"path {path!r} cannot run on this CPU (it runs: "
                         f"{', '.join(p for p in PATHS if supported(p))})")
    blocks = -(-weight.shape[1] // 4)
    if (xq4.dtype != np.uint8 or xq4.ndim != 3 or xq4.shape[0] != blocks or xq4.shape[2] != 4
            or not xq4.flags.c_contiguous):
        raise ValueError(f"activations must be C-contiguous ({blocks}, T, 4) uint8 (interleave4), got {xq4.dtype} "
                         f"{xq4.shape}")
    return path


def block4_int8_matmul(weight: Block4Int8, xq4: np.ndarray, path: str | None = None) -> np.ndarray:
    """``W · X`` as exact int32 ``(N, T)``; ``xq4`` from :func:`interleave4`. ``path``: one of
    :data:`~sparsecore.kernels.isa.PATHS` (default: :func:`~sparsecore.kernels.isa.integer_path`)."""
    path = _checked(weight, xq4, path)
    out = np.empty((weight.shape[0], xq4.shape[1]), np.int32)
    _block4_int8(_MARKERS[path](0), weight.indptr, weight.index, weight.values, weight.blocks4, xq4, out)
    return out


def block4_int8_linear_t(weight: Block4Int8, xq4: np.ndarray, bias: np.ndarray, scale: np.ndarray,
                         path: str | None = None, out: np.ndarray | None = None,
                         acc: np.ndarray | None = None) -> np.ndarray:
    """``Yᵀ (N, T) float32 = (W · X + bias) · scale`` per output row, the integer sum exact (int32) and the
    epilogue in fp32 — a quantized Linear's output. ``acc``: an (N, T) int32 scratch reused between calls
    (allocated when None). ``path`` as for :func:`block4_int8_matmul`."""
    path = _checked(weight, xq4, path)
    n = weight.shape[0]
    t_total = xq4.shape[1]
    if out is None:
        out = np.empty((n, t_total), np.float32)
    if acc is None:
        acc = np.empty((n, t_total), np.int32)
    if out.shape != (n, t_total) or acc.shape != (n, t_total) or out.dtype != np.float32 or acc.dtype != np.int32:
        raise ValueError(f"out (float32) and acc (int32) must have shape ({n}, {t_total})")
    _block4_int8_linear(_MARKERS[path](0), weight.indptr, weight.index, weight.values, weight.blocks4, xq4,
                        np.ascontiguousarray(bias, np.float32), np.ascontiguousarray(scale, np.float32), acc, out)
    return out


def tile_assembly(path: str, cpu: str) -> str:
    """Machine code of one ``path`` tile compiled for ``cpu`` (an LLVM CPU name such as ``icelake-server``
    or ``haswell``) from a stand-alone module — whatever CPU this host is."""
    import llvmlite.binding as llvm

    module = ir.Module(name=f"block4_int8_{path}")
    pointers = [_I16.as_pointer(), _I32.as_pointer(), _I64, _I64, _I8.as_pointer(), _I64,
                _I64, _I32.as_pointer()]
    function = ir.Function(module, ir.FunctionType(ir.VoidType(), pointers), name="block4_tile")
    builder = ir.IRBuilder(function.append_basic_block("entry"))
    index, values, j0, j1, xs, row_len, t0, out = function.args
    emit_tile(builder, path, index, values, j0, j1, xs, row_len, t0, out)
    builder.ret_void()
    parsed = llvm.parse_assembly(str(module))
    parsed.verify()
    machine = llvm.Target.from_triple(llvm.get_process_triple()).create_target_machine(cpu=cpu, opt=3)
    return machine.emit_assembly(parsed)
