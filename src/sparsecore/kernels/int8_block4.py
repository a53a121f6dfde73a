"""Exact int8 products of 1×4-block-sparse weights on the CPU's integer units: AVX-512 VNNI, AVX-VNNI, AVX2.

Computes one output row of ``Y (N, T) int32 = W (N, K) int8 · X (K, T) uint8`` for one block of tokens, for a W
stored as 1×4 blocks along K, with X *token-blocked and interleaved by four features*: ``xb[b, c, i, q] =
X[4c + q, TB·b + i]`` (``(ceil(T/TB), ceil(K/4), TB, 4)`` uint8, see :func:`interleave4`; TB = :data:`TOKENS`
of the path, the tile width). One stored block's four weights are packed into one int32, so each block costs
one broadcast and, per vector of tokens, one load and one integer dot-product instruction:

* ``avx512_vnni`` — ``vpdpbusd zmm``: 16 tokens × 4 u8·s8 products summed into int32 per instruction;
  8 accumulators = 128 tokens per tile.
* ``avx_vnni`` — the same instruction on ymm: 8 tokens; 8 accumulators = 64 tokens.
* ``avx2`` — ``vpmaddubsw`` (each token's two u8·s8 pair sums in int16) and ``vpmaddwd`` by ones (the two
  pairs added into int32), 8 tokens per ymm; 8 accumulators = 64 tokens. ``vpmaddubsw`` saturates at int16, so
  the weights must be packed saturation-safe (``pack_block4_int8(codes, pair_safe=True)``: a pair's positive
  weights, and its negative ones, sum to at most 128 in magnitude, and 255 · 128 < 2¹⁵).
* ``generic`` — plain loops, any CPU.

A token block's slab (K·TB bytes: 384 KB at K = 3072 on zmm) is contiguous and read by every row of a task
while it stays in L2 (:mod:`.int8_linear` runs the rows); tokens past T are padding in the layout, so every
tile is full. All paths are exact: int32 accumulation cannot overflow while K ≤ 65,792 (K·255·128 < 2³¹),
checked by :func:`pack_block4_int8`. Cost: 8·S·TB integer operations per row and block for S stored blocks.

The vector loop is written as LLVM IR by :func:`emit_tile` (pure llvmlite), wrapped as a Numba intrinsic for
execution and built into a stand-alone module by :func:`tile_assembly` to check the machine code for any
target CPU — a VNNI path is compile-checked on a host that cannot run it. :mod:`.isa` picks the path.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numba as nb
import numpy as np
from llvmlite import ir
from numba.core import cgutils

from sparsecore.kernels.row_kernels import assembly, row_function, row_intrinsic
from sparsecore.kernels.simd import accumulate_loop

# path → (tokens per accumulator vector, accumulator vectors); a tile is their product in tokens
SHAPES = {"avx512_vnni": (16, 8), "avx_vnni": (8, 8), "avx2": (8, 8)}
# path → tokens per block of the activation layout: one tile (the generic loop takes any)
TOKENS = {**{path: lanes * vectors for path, (lanes, vectors) in SHAPES.items()}, "generic": 64}
# the tiles exact for *any* int8 weights (:func:`block4_row_exact`): avx2 widens to int16 (4 tokens per vector)
EXACT_SHAPES = {**SHAPES, "avx2": (4, 8)}
EXACT_TOKENS = {**{path: lanes * vectors for path, (lanes, vectors) in EXACT_SHAPES.items()}, "generic": 64}
MAX_K = 65_792  # K·255·128 < 2³¹: int32 accumulation is exact up to here

_I32, _I64, _I16, _I8 = ir.IntType(32), ir.IntType(64), ir.IntType(16), ir.IntType(8)


def _const_vec(element, values):
    return ir.Constant(ir.VectorType(element, len(values)), values)


def _broadcast(builder, scalar, lanes: int):
    vec = ir.VectorType(scalar.type, lanes)
    first = builder.insert_element(ir.Constant(vec, ir.Undefined), scalar, ir.Constant(_I32, 0))
    return builder.shuffle_vector(first, ir.Constant(vec, ir.Undefined), _const_vec(_I32, [0] * lanes))


def emit_tile(builder: ir.IRBuilder, path: str, index_ptr, values_ptr, j_start, j_end, slab_ptr, out_ptr,
              exact: bool = False) -> None:
    """Emit ``out[0 : TB] = Σ_{j0 ≤ j < j1} dot4(values[j], slab[index[j], 0 : TB, :])`` (int32, TB =
    :data:`TOKENS` of the path: one tile).

    Pointers: ``index_ptr`` i16* block columns (unsigned); ``values_ptr`` i32* four int8 weights packed
    little-endian; ``slab_ptr`` i8* one token block of the interleaved activations (row ``c`` starts at byte
    4·TB·c); ``out_ptr`` i32* TB results, written (not added). ``j_start``, ``j_end`` are i64. ``exact``: the tile of
    :data:`EXACT_SHAPES`, exact for any int8 weights (on ``avx2`` the weights need not be saturation-safe).
    """
    if exact and path == "avx2":
        return _emit_widening_tile(builder, index_ptr, values_ptr, j_start, j_end, slab_ptr, out_ptr)
    lanes, vectors = SHAPES[path]
    acc_type = ir.VectorType(_I32, lanes)
    byte_type = ir.VectorType(_I8, 4 * lanes)
    module = builder.module
    if path == "avx2":  # vpmaddubsw: each token's two u8·s8 pair sums (exact on saturation-safe pairs), vpmaddwd by ones
        word_type = ir.VectorType(_I16, 2 * lanes)
        pair_sums = cgutils.get_or_insert_function(module, ir.FunctionType(word_type, [byte_type] * 2),
                                                   "llvm.x86.avx2.pmadd.ub.sw")
        widen = cgutils.get_or_insert_function(module, ir.FunctionType(acc_type, [word_type] * 2),
                                               "llvm.x86.avx2.pmadd.wd")
        ones = ir.Constant(word_type, [1] * word_type.count)

        def dot(acc, x, weights):
            return builder.add(acc, builder.call(widen, [builder.call(pair_sums, [x, weights]), ones]))
    else:
        vpdpbusd = cgutils.get_or_insert_function(module, ir.FunctionType(acc_type, [acc_type] * 3),
                                                  f"llvm.x86.avx512.vpdpbusd.{32 * lanes}")

        def dot(acc, x, weights):
            return builder.call(vpdpbusd, [acc, builder.bitcast(x, acc_type), builder.bitcast(weights, acc_type)])

    def step(j, accs):
        column = builder.zext(builder.load(builder.gep(index_ptr, [j])), _I64)
        weights = builder.bitcast(_broadcast(builder, builder.load(builder.gep(values_ptr, [j])), lanes), byte_type)
        row = builder.gep(slab_ptr, [builder.mul(column, ir.Constant(_I64, 4 * TOKENS[path]))])
        return [dot(acc, builder.load(builder.bitcast(builder.gep(row, [ir.Constant(_I64, 4 * lanes * v)]),
                                                      byte_type.as_pointer()), align=1), weights)
                for v, acc in enumerate(accs)]

    accs = accumulate_loop(builder, j_start, j_end, ir.Constant(acc_type, [0] * lanes), vectors, step)
    for v, acc in enumerate(accs):
        p = builder.bitcast(builder.gep(out_ptr, [ir.Constant(_I64, lanes * v)]), acc_type.as_pointer())
        builder.store(acc, p, align=4)


def _emit_widening_tile(builder, index_ptr, values_ptr, j_start, j_end, slab_ptr, out_ptr) -> None:
    """The ``avx2`` tile of :data:`EXACT_SHAPES`: codes widened to int16 (u8 zero-, s8 sign-extended; every product
    |255·128| < 2¹⁵) and ``vpmaddwd``: per token two exact int32 pair sums, kept apart in the accumulator and added
    once per tile."""
    path, (lanes, vectors) = "avx2", EXACT_SHAPES["avx2"]
    acc_type = ir.VectorType(_I32, 2 * lanes)  # (token, pair) sums
    dot = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(ir.VectorType(_I32, 8), [ir.VectorType(_I16, 16)] * 2), "llvm.x86.avx2.pmadd.wd")

    def step(j, accs):
        column = builder.zext(builder.load(builder.gep(index_ptr, [j])), _I64)
        packed = builder.load(builder.gep(values_ptr, [j]))
        row = builder.gep(slab_ptr, [builder.mul(column, ir.Constant(_I64, 4 * EXACT_TOKENS[path]))])
        w4 = builder.sext(builder.bitcast(packed, ir.VectorType(_I8, 4)), ir.VectorType(_I16, 4))
        weights = builder.shuffle_vector(w4, ir.Constant(ir.VectorType(_I16, 4), ir.Undefined),
                                         _const_vec(_I32, [0, 1, 2, 3] * 4))  # (w0…w3) for the 4 tokens of a vector
        new_accs = []
        for v, acc in enumerate(accs):
            p = builder.bitcast(builder.gep(row, [ir.Constant(_I64, 16 * v)]), ir.VectorType(_I8, 16).as_pointer())
            x = builder.zext(builder.load(p, align=1), ir.VectorType(_I16, 16))
            new_accs.append(builder.add(acc, builder.call(dot, [x, weights])))
        return new_accs

    accs = accumulate_loop(builder, j_start, j_end, ir.Constant(acc_type, [0] * acc_type.count), vectors, step)
    out_type = ir.VectorType(_I32, lanes)
    undef = ir.Constant(acc_type, ir.Undefined)
    for v, acc in enumerate(accs):  # per token: pair 0 + pair 1
        even = builder.shuffle_vector(acc, undef, _const_vec(_I32, list(range(0, 2 * lanes, 2))))
        odd = builder.shuffle_vector(acc, undef, _const_vec(_I32, list(range(1, 2 * lanes, 2))))
        p = builder.bitcast(builder.gep(out_ptr, [ir.Constant(_I64, lanes * v)]), out_type.as_pointer())
        builder.store(builder.add(even, odd), p, align=4)


_TILES = {path: row_intrinsic(emit_tile, path, 4, 4 * TOKENS[path]) for path in SHAPES}
_EXACT_TILES = {path: row_intrinsic(functools.partial(emit_tile, exact=True), path, 4, 4 * EXACT_TOKENS[path])
                for path in EXACT_SHAPES}


@nb.njit(inline="always")
def _plain_tile(index, values4, j0, j1, xb, b, out):
    """The generic path: ``out[t] = Σ_j Σ_q values4[j, q] · xb[b, index[j], t, q]``."""
    for t in range(out.shape[0]):
        total = np.int32(0)
        for j in range(j0, j1):
            c = index[j]
            for q in range(4):
                total += np.int32(values4[j, q]) * np.int32(xb[b, c, t, q])
        out[t] = total


block4_row = row_function(_TILES, _plain_tile, """One row's exact int32 products for token block ``b``, written to
``out`` (the block's tokens), on the path ``marker``'s type names (:data:`~sparsecore.kernels.isa.MARKERS`); on
``avx2`` the weights must be saturation-safe (``pack_block4_int8(codes, pair_safe=True)``).""")
block4_row_exact = row_function(_EXACT_TILES, _plain_tile, """:func:`block4_row` for any int8 weights, on the
:data:`EXACT_TOKENS` layout of the path (the quantized attention's products: its "weights" are codes − 128).""")


@dataclass(frozen=True)
class Block4Int8:
    """1×4-block int8 weights: ``indptr (N+1,) int64``, ``index (S,) uint16`` block columns (K ≤ ``MAX_K``
    keeps them below 2¹⁶), ``values (S,) int32`` (four int8 weights packed little-endian), ``shape (N, K)``."""

    indptr: np.ndarray
    index: np.ndarray
    values: np.ndarray
    shape: tuple[int, int]
    pair_safe: bool = False  # every entry's weight pairs saturation-safe (the ``avx2`` token-blocked kernel needs it)
    tasks: dict = field(default_factory=dict, repr=False, compare=False)  # (blocks, threads) → row bounds

    @property
    def nnz(self) -> int:
        """Stored non-zero weights (zeros inside stored blocks not counted)."""
        return int(np.count_nonzero(self.blocks4))

    @property
    def blocks4(self) -> np.ndarray:
        """The stored weights as ``(S, 4) int8`` (a view of ``values``)."""
        return self.values.view(np.int8).reshape(-1, 4)


def pack_block4_int8(codes: np.ndarray, pair_safe: bool = False) -> Block4Int8:
    """Block format of an (N, K) int8 matrix: a block is stored when any of its four codes is non-zero; K is
    padded with zero codes to a multiple of 4. K ≤ ``MAX_K`` (beyond it int32 sums could overflow).
    ``pair_safe``: a block whose pair (w0, w1) or (w2, w3) could saturate ``vpmaddubsw``
    (:func:`~.int8_quads.saturation_safe`) is stored as two entries on its column, ``(w0, 0, w2, 0)`` and
    ``(0, w1, 0, w3)`` — what the ``avx2`` kernels (``vpmaddubsw``, on either layout) need."""
    from sparsecore.kernels.int8_quads import saturation_safe

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
    blocks = grouped[rows, cols]
    if pair_safe:
        split = ~saturation_safe(blocks)
        copies = 1 + split
        rows, cols, blocks = np.repeat(rows, copies), np.repeat(cols, copies), np.repeat(blocks, copies, axis=0)
        second = np.cumsum(copies)[split] - 1  # where each split block's second copy landed
        blocks[second - 1, 1::2] = 0  # first copy (w0, 0, w2, 0), second (0, w1, 0, w3)
        blocks[second, 0::2] = 0
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    index = cols.astype(np.uint16)
    values = np.ascontiguousarray(blocks).view(np.int32).reshape(-1)
    return Block4Int8(indptr, index, values, (n, k), pair_safe)


def interleave4(xq: np.ndarray, tb: int, pad: int = 0) -> np.ndarray:
    """``(K, T)`` uint8 activations → token-blocked and interleaved by four features, ``(ceil(T/tb), ceil(K/4),
    tb, 4)`` with ``[b, c, i, q] = xq[4c + q, tb·b + i]`` (features past K and tokens past T: ``pad``)."""
    xq = np.asarray(xq)
    if xq.dtype != np.uint8 or xq.ndim != 2:
        raise ValueError(f"activations must be a 2-D uint8 array, got {xq.dtype} with shape {xq.shape}")
    k, t = xq.shape
    padded = np.full((-(-k // 4) * 4, -(-t // tb) * tb), pad, np.uint8)
    padded[:k, :t] = xq
    return np.ascontiguousarray(padded.reshape(len(padded) // 4, 4, padded.shape[1] // tb, tb).transpose(2, 0, 3, 1))


def tile_assembly(path: str, cpu: str, exact: bool = False) -> str:
    """Machine code of one ``path`` tile (``exact``: of :data:`EXACT_SHAPES`) compiled for ``cpu`` (an LLVM CPU name
    such as ``icelake-server`` or ``haswell``) from a stand-alone module — whatever CPU this host is."""
    return assembly(f"block4_int8_{path}",
                    [_I16.as_pointer(), _I32.as_pointer(), _I64, _I64, _I8.as_pointer(), _I32.as_pointer()],
                    lambda builder, *args: emit_tile(builder, path, *args, exact=exact), cpu)
