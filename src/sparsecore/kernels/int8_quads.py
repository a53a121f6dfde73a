"""Exact int8 products of *unstructured* sparse weights on VNNI and AVX2: each row's non-zeros grouped in quads,
the activations interleaved in registers.

Computes ``Y (N, T) int32 = W (N, K) int8 · X (K, T) uint8`` for any sparsity pattern. Layouts:

* weights (:func:`pack_quads`): each row's non-zero codes four at a time — a quad holds four columns (``uint16``) and
  four int8 weights packed little-endian into one int32, as two *saturation-safe pairs* (slots 0–1 and 2–3: no two
  same-sign weights whose magnitudes add past :data:`PAIR_LIMIT`; opposite signs pair first, so a row of both signs
  costs no extra quads); padding slots hold zero weights on a column the row already reads. 3 bytes per non-zero.
* activations *token-blocked* (:func:`token_blocks`, or :func:`~.quantize.quantize_u8_blocked` straight
  from fp32): ``xb[b, k, :] = X[k, TB·b : TB·b + TB]``, ``(ceil(T/TB), K, TB)`` uint8, TB = :data:`TOKENS` of
  the path (64 tokens, one zmm of bytes, on ``avx512_vnni`` and ``avx2``; 32 on ``avx_vnni``). One block's
  slab — K·TB bytes, 48 KB at K = 768 — is read by every row of a task while it stays in L1/L2
  (:mod:`.int8_linear` runs the rows, :func:`quads_row` each): the cost of a row does not grow with the batch.

Per quad and token block (:func:`emit_block`): four loads of TB activation bytes (the quad's four feature
rows), two levels of unpacks — bytes into (k0, k1) and (k2, k3) pairs, then 16-bit pairs into quads — that put
each token's four bytes side by side as ``vpdpbusd`` reads them, one broadcast of the packed weights and four
``vpdpbusd``: 4·TB exact u8·s8 products summed into int32. The unpacks work inside 128-bit lanes, so
accumulator g holds tokens ``16L + 4g + i`` in lane L; one 4×4 transpose of those lanes per row and block
restores token order before the store. Cost per quad and block: 8 shuffles (one port on most x86 cores),
4 dot products, 9 loads. ``avx2`` (no ``vpdpbusd``) runs the same unpacks on ymm, 32 tokens per pass, and replaces
each ``vpdpbusd`` by ``vpmaddubsw`` (each token's two u8·s8 pair sums in int16) and ``vpmaddwd`` by ones (the two
pairs added into int32): per quad and 32 tokens 4 loads, 8 unpacks, 8 multiplies, 4 adds (both 32-token halves of a
block in one loop, 8 accumulators). ``vpmaddubsw`` saturates
at int16, which the weights' pairing rules out: a pair's positive weights, and its negative ones, sum to at most 128
in magnitude, and 255 · 128 < 2¹⁵ — every pair sum is exact.

*1×4-block* weights (:class:`~.int8_block4.Block4Int8`: one column index per block of four consecutive columns)
run the same code on this layout (:func:`blocks_row`): a block is a quad whose four rows are ``4c … 4c + 3``, so one
index load replaces four and a block's weights take 6 bytes instead of 12; on ``avx2`` a block whose fixed pairs
could saturate is stored as two entries (``pack_block4_int8(codes, pair_safe=True)``). A model's 1×4-block Linear
reads this layout — the one the LayerNorm, the attention and the FFN write its codes into — only below a path's
:data:`~.int8_linear.TOKEN_BLOCKED_BELOW` stored weights per input column (:func:`~.int8_linear.token_blocked`;
no path has one by default); otherwise :mod:`.int8_block4`'s interleaved layout, where ``vpdpbusd``, and on ``avx2``
``vpmaddubsw``, read a token's four features without unpacks.

All paths are exact: int32 sums cannot overflow while K ≤ ``MAX_K`` (K·255·128 < 2³¹). ``generic`` runs
plain loops (any CPU, and coverage runs). The IR is pure llvmlite: :func:`block_assembly` compiles it for
any target CPU, so the VNNI code is checked on hosts that cannot run it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba as nb
import numpy as np
from llvmlite import ir
from numba.core import cgutils

from sparsecore.kernels.int8_block4 import MAX_K
from sparsecore.kernels.row_kernels import assembly, row_function, row_intrinsic
from sparsecore.kernels.simd import accumulate_loop

# path → tokens per block: 16 tokens per 128-bit lane, 4 lanes in a zmm, 2 in a ymm
TOKENS = {"avx512_vnni": 64, "avx_vnni": 32, "avx2": 64, "generic": 64}
VECTOR_TOKENS = {"avx512_vnni": 64, "avx_vnni": 32, "avx2": 32}  # tokens per accumulator pass: one zmm or ymm
VECTOR_PATHS = ("avx512_vnni", "avx_vnni", "avx2")

_I32, _I64, _I16, _I8 = ir.IntType(32), ir.IntType(64), ir.IntType(16), ir.IntType(8)


def _mask(values):
    return ir.Constant(ir.VectorType(_I32, len(values)), values)


def _unpack(builder, a, b, lanes: int, per_lane: int, high: bool):
    """``punpck{l,h}`` on ``per_lane`` elements per 128-bit lane: the low (or high) halves of a and b alternated."""
    size = lanes * per_lane
    half = per_lane // 2
    order = [s * size + per_lane * lane + i + (half if high else 0)
             for lane in range(lanes) for i in range(half) for s in (0, 1)]
    return builder.shuffle_vector(a, b, _mask(order))


def _token_order(builder, accs, lanes: int) -> list:
    """The four accumulators (accumulator g, lane L, element i = token 16L + 4g + i) as four vectors of
    consecutive tokens (vector m, element d = token 4·lanes·m + d)."""
    width = 4 * lanes
    ab = builder.shuffle_vector(accs[0], accs[1], _mask(list(range(2 * width))))
    cd = builder.shuffle_vector(accs[2], accs[3], _mask(list(range(2 * width))))
    every = builder.shuffle_vector(ab, cd, _mask(list(range(4 * width))))  # index g·width + 4L + i
    undef = ir.Constant(every.type, ir.Undefined)
    vectors = []
    for m in range(4):
        tokens = range(width * m, width * (m + 1))
        order = [((t % 16) // 4) * width + 4 * (t // 16) + t % 4 for t in tokens]
        vectors.append(builder.shuffle_vector(every, undef, _mask(order)))
    return vectors


def _feature_rows(builder, index_ptr, j, slab_ptr, tb: int, blocks: bool) -> list:
    """The four activation rows entry ``j`` multiplies: quad ``j``'s four columns, or (``blocks``) the rows ``4c … 4c
    + 3`` of block column ``c = index[j]`` — each as an i8* to its ``tb`` bytes of the token block at ``slab_ptr``."""
    if blocks:
        column = builder.zext(builder.load(builder.gep(index_ptr, [j])), _I64)
        first = builder.gep(slab_ptr, [builder.mul(column, ir.Constant(_I64, 4 * tb))])
        return [builder.gep(first, [ir.Constant(_I64, q * tb)]) for q in range(4)]
    rows = []
    for q in range(4):
        column = builder.zext(builder.load(builder.gep(index_ptr, [builder.add(
            builder.mul(j, ir.Constant(_I64, 4)), ir.Constant(_I64, q))])), _I64)
        rows.append(builder.gep(slab_ptr, [builder.mul(column, ir.Constant(_I64, tb))]))
    return rows


def emit_block(builder: ir.IRBuilder, path: str, columns_ptr, values_ptr, j_start, j_end, slab_ptr,
               out_ptr, blocks: bool = False) -> None:
    """Emit ``out[0 : TB] = Σ_{j0 ≤ j < j1} Σ_q values[j, q] · slab[columns[j, q], 0 : TB]`` (int32).

    Pointers: ``columns_ptr`` i16* four unsigned columns per quad (``blocks``: one block column c per entry, the
    columns ``4c + q``); ``values_ptr`` i32* four int8 weights per entry, packed little-endian; ``slab_ptr`` i8* one
    token block (row k starts at byte k·TB); ``out_ptr`` i32* TB results, written (not added). ``j_start``, ``j_end``
    i64."""
    tb = TOKENS[path]
    per_vector = VECTOR_TOKENS[path]
    lanes = per_vector // 16
    acc_type = ir.VectorType(_I32, 4 * lanes)
    byte_type = ir.VectorType(_I8, per_vector)
    word_type = ir.VectorType(_I16, 8 * lanes)
    if path == "avx2":  # vpdpbusd as vpmaddubsw (pair sums, exact on saturation-safe pairs) + vpmaddwd by ones
        pair_sums = cgutils.get_or_insert_function(builder.module, ir.FunctionType(word_type, [byte_type] * 2),
                                                   "llvm.x86.avx2.pmadd.ub.sw")
        widen = cgutils.get_or_insert_function(builder.module, ir.FunctionType(acc_type, [word_type] * 2),
                                               "llvm.x86.avx2.pmadd.wd")
        ones = ir.Constant(word_type, [1] * word_type.count)

        def dot(acc, quad, weights):
            sums = builder.call(pair_sums, [builder.bitcast(quad, byte_type), builder.bitcast(weights, byte_type)])
            return builder.add(acc, builder.call(widen, [sums, ones]))
    else:
        vpdpbusd = cgutils.get_or_insert_function(builder.module, ir.FunctionType(acc_type, [acc_type] * 3),
                                                  f"llvm.x86.avx512.vpdpbusd.{32 * 4 * lanes}")

        def dot(acc, quad, weights):
            return builder.call(vpdpbusd, [acc, builder.bitcast(quad, acc_type), weights])

    chunks = tb // per_vector  # the token block as `chunks` vectors of `per_vector` tokens, 4 accumulators each

    def step(j, accs):
        rows = _feature_rows(builder, columns_ptr, j, slab_ptr, tb, blocks)
        packed = builder.load(builder.gep(values_ptr, [j]))
        first = builder.insert_element(ir.Constant(acc_type, ir.Undefined), packed, ir.Constant(_I32, 0))
        weights = builder.shuffle_vector(first, ir.Constant(acc_type, ir.Undefined), _mask([0] * 4 * lanes))
        new = []
        for chunk in range(chunks):
            offset = ir.Constant(_I64, chunk * per_vector)
            data = [builder.load(builder.bitcast(builder.gep(row, [offset]), byte_type.as_pointer()), align=1)
                    for row in rows]
            pairs = [builder.bitcast(_unpack(builder, data[a], data[a + 1], lanes, 16, high), word_type)
                     for a in (0, 2) for high in (False, True)]  # (k0,k1) low, high; (k2,k3) low, high
            quads = [_unpack(builder, pairs[half], pairs[2 + half], lanes, 8, high)
                     for half in (0, 1) for high in (False, True)]
            new += [dot(acc, quad, weights) for acc, quad in zip(accs[4 * chunk:4 * chunk + 4], quads)]
        return new

    accs = accumulate_loop(builder, j_start, j_end, ir.Constant(acc_type, [0] * 4 * lanes), 4 * chunks, step)
    for chunk in range(chunks):
        for m, vector in enumerate(_token_order(builder, accs[4 * chunk:4 * chunk + 4], lanes)):
            p = builder.gep(out_ptr, [ir.Constant(_I64, chunk * per_vector + 4 * lanes * m)])
            builder.store(vector, builder.bitcast(p, acc_type.as_pointer()), align=4)


_BLOCKS = {path: row_intrinsic(emit_block, path, 3, TOKENS[path]) for path in VECTOR_PATHS}
_BLOCK4 = {path: row_intrinsic(lambda *args: emit_block(*args, blocks=True), path, 3, TOKENS[path])
           for path in VECTOR_PATHS}


@nb.njit(inline="always")
def _plain_block(columns, values4, j0, j1, xb, b, out):
    """The generic path: ``out[t] = Σ_j Σ_q values4[j, q] · xb[b, columns[j, q], t]``."""
    for t in range(out.shape[0]):
        total = np.int32(0)
        for j in range(j0, j1):
            for q in range(4):
                total += np.int32(values4[j, q]) * np.int32(xb[b, columns[j, q], t])
        out[t] = total


quads_row = row_function(_BLOCKS, _plain_block, """One row's exact int32 products for token block ``b``, written to
``out`` (the block's tokens), on the path ``marker``'s type names (:data:`~sparsecore.kernels.isa.MARKERS`).""")


@nb.njit(inline="always")
def _plain_block4(index, values4, j0, j1, xb, b, out):
    """The generic path of :func:`blocks_row`: ``out[t] = Σ_j Σ_q values4[j, q] · xb[b, 4·index[j] + q, t]``."""
    for t in range(out.shape[0]):
        total = np.int32(0)
        for j in range(j0, j1):
            first = 4 * np.int64(index[j])
            for q in range(4):
                total += np.int32(values4[j, q]) * np.int32(xb[b, first + q, t])
        out[t] = total


blocks_row = row_function(_BLOCK4, _plain_block4, """One row of 1×4-block weights (``index`` block columns,
``values`` packed, ``values4`` their (S, 4) view) on this module's token-blocked layout: exact int32 products for
token block ``b`` written to ``out``, on the path ``marker``'s type names.""")


@dataclass(frozen=True)
class Quads:
    """Unstructured int8 weights in quads: ``indptr (N+1,) int64`` (in quads), ``columns (S, 4) uint16``,
    ``values (S,) int32`` (four int8 weights packed little-endian), ``shape (N, K)``, ``nnz`` real non-zeros."""

    indptr: np.ndarray
    columns: np.ndarray
    values: np.ndarray
    shape: tuple[int, int]
    nnz: int
    tasks: dict = field(default_factory=dict, repr=False, compare=False)  # (blocks, threads) → row bounds

    @property
    def weights4(self) -> np.ndarray:
        """The stored weights as ``(S, 4) int8`` (a view of ``values``)."""
        return self.values.view(np.int8).reshape(-1, 4)


PAIR_LIMIT = 128  # 255 · 128 ≤ 2¹⁵ − 1: u8·s8 pair sums of same-sign weights up to this magnitude fit int16


def saturation_safe(weights4: np.ndarray) -> np.ndarray:
    """Per entry of ``(S, 4)`` int8 weights: both pairs (w0, w1) and (w2, w3) have their positive weights and their
    negative weights each summing to at most :data:`PAIR_LIMIT` in magnitude — ``vpmaddubsw``'s int16 pair sum of
    any uint8 activations is then exact."""
    pairs = weights4.astype(np.int32).reshape(-1, 2, 2)
    safe = (np.clip(pairs, 0, None).sum(axis=2) <= PAIR_LIMIT) & (np.clip(-pairs, 0, None).sum(axis=2) <= PAIR_LIMIT)
    return np.all(safe, axis=1)


@nb.njit(cache=True)
def _safe_pairs(codes, nnz):
    """Each row's non-zeros of ``codes`` (N, K) int8 (``nnz`` in all) as saturation-safe pairs, at most one pair per
    non-zero. Per row (positive and negative weights each ordered by decreasing magnitude, a counting sort): every
    negative weight goes beside a positive one while both signs last (the larger sign's largest magnitudes), the rest
    by size — largest with smallest where their sum stays ≤ :data:`PAIR_LIMIT`, else alone (beside a zero weight on its
    own column). Returns the pairs' (column, weight) slots (P, 2) and the number of pairs per row."""
    n, k = codes.shape
    pair_cols = np.empty((nnz, 2), np.int64)
    pair_vals = np.zeros((nnz, 2), np.int8)
    per_row = np.zeros(n, np.int64)
    counts = np.zeros(2 * 129, np.int64)  # (sign, magnitude) → count, then → first slot
    order = np.empty(k, np.int64)  # the row's columns: positives then negatives, each by decreasing magnitude
    p = 0
    for r in range(n):
        counts[:] = 0
        for c in range(k):
            w = np.int64(codes[r, c])
            if w != 0:
                counts[(w < 0) * 129 + 128 - abs(w)] += 1
        total = 0
        for g in range(2 * 129):
            counts[g], total = total, total + counts[g]
        pos = counts[129]  # slots before the negatives: the positive count
        for c in range(k):
            w = np.int64(codes[r, c])
            if w != 0:
                g = (w < 0) * 129 + 128 - abs(w)
                order[counts[g]] = c
                counts[g] += 1
        neg = total - pos
        first = p
        big, small = (0, pos) if pos >= neg else (pos, 0)  # where each sign's columns start in `order`
        m = min(pos, neg)
        for i in range(m):  # opposite signs: the pair sum lies between the two products
            for s, at in ((0, big + i), (1, small + i)):
                pair_cols[p, s], pair_vals[p, s] = order[at], codes[r, order[at]]
            p += 1
        lo, hi = big + m, big + max(pos, neg) - 1
        while lo <= hi:
            pair_cols[p, 0], pair_vals[p, 0] = order[lo], codes[r, order[lo]]
            if lo < hi and abs(np.int64(codes[r, order[lo]])) + abs(np.int64(codes[r, order[hi]])) <= PAIR_LIMIT:
                pair_cols[p, 1], pair_vals[p, 1] = order[hi], codes[r, order[hi]]
                hi -= 1
            else:  # alone: a zero weight on its own column (already in cache)
                pair_cols[p, 1], pair_vals[p, 1] = order[lo], 0
            lo += 1
            p += 1
        per_row[r] = p - first
    return pair_cols[:p], pair_vals[:p], per_row


def pack_quads(codes: np.ndarray) -> Quads:
    """Quads of an (N, K) int8 matrix: every row's non-zeros in saturation-safe pairs (:func:`_safe_pairs`: what the
    ``avx2`` path's ``vpmaddubsw`` needs, harmless elsewhere), two pairs per quad, a row's odd last pair beside a
    zero-weight pair on its own column. K ≤ ``MAX_K`` (beyond it int32 sums could overflow)."""
    codes = np.asarray(codes)
    if codes.dtype != np.int8 or codes.ndim != 2:
        raise ValueError(f"codes must be a 2-D int8 array, got {codes.dtype} with shape {codes.shape}")
    n, k = codes.shape
    if k > MAX_K:
        raise ValueError(f"K = {k} > {MAX_K}: int32 sums of u8·s8 products could overflow")
    if k > 1 << 16:
        raise ValueError(f"K = {k} > {1 << 16}: quad columns are uint16 — pack 1×4 blocks instead")
    nnz = int(np.count_nonzero(codes))
    pair_cols, pair_vals, pairs = _safe_pairs(np.ascontiguousarray(codes), nnz)
    quads = -(-pairs // 2)
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(quads, out=indptr[1:])
    pair_start = np.zeros(n + 1, np.int64)
    np.cumsum(pairs, out=pair_start[1:])
    half_row = np.repeat(np.arange(n), 2 * quads)  # every half-quad, row by row
    rank = np.arange(2 * indptr[-1]) - 2 * indptr[:-1][half_row]
    slots = pair_start[:-1][half_row] + np.minimum(rank, pairs[half_row] - 1)  # odd rows' last half repeats a pair
    real = rank < pairs[half_row]
    columns = pair_cols[slots].astype(np.uint16).reshape(-1, 4)
    weights = np.where(real[:, None], pair_vals[slots], 0).astype(np.int8).reshape(-1, 4)
    return Quads(indptr, np.ascontiguousarray(columns), np.ascontiguousarray(weights).view(np.int32).reshape(-1),
                 (n, k), nnz)


def token_blocks(xq: np.ndarray, tb: int, pad: int = 0) -> np.ndarray:
    """``(K, T)`` uint8 → ``(ceil(T/tb), K, tb)`` with ``[b, k, i] = xq[k, tb·b + i]`` (tokens past T: ``pad``)."""
    xq = np.asarray(xq)
    if xq.dtype != np.uint8 or xq.ndim != 2:
        raise ValueError(f"activations must be a 2-D uint8 array, got {xq.dtype} with shape {xq.shape}")
    k, t = xq.shape
    padded = np.full((k, -(-t // tb) * tb), pad, np.uint8)
    padded[:, :t] = xq
    return np.ascontiguousarray(padded.reshape(k, -1, tb).transpose(1, 0, 2))


def block_assembly(path: str, cpu: str, blocks: bool = False) -> str:
    """Machine code of one ``path`` block (``blocks``: of 1×4-block weights) compiled for ``cpu`` (an LLVM CPU name
    such as ``icelake-server`` or ``znver4``) from a stand-alone module — whatever CPU this host is."""
    return assembly(f"int8_quads_{path}",
                    [_I16.as_pointer(), _I32.as_pointer(), _I64, _I64, _I8.as_pointer(), _I32.as_pointer()],
                    lambda builder, *args: emit_block(builder, path, *args, blocks=blocks), cpu)
