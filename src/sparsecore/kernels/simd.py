"""Register-blocked micro-kernel for the sparse Linears, as LLVM vector IR (``numba.extending.intrinsic``).

:func:`row_tile` computes, for one output row and one tile of ``LANES · VECTORS`` tokens,

    out[t0 : t0 + W] += Σ_{j0 ≤ j < j1} values[j] · xs[index[j], t0 : t0 + W]        (W = LANES · VECTORS)

holding the W accumulators in ``VECTORS`` vector registers for the whole run of stored weights: each weight
is broadcast once and each strip of Xᵀ loaded once, and the accumulators are read and written once per run
instead of once per group of weights (what the plain Numba loop in ``sparse_matmul`` has to do: Numba has
no vector types, and its loops re-check aliasing between the accumulator and every Xᵀ row per group).
Eight independent accumulators cover the FMA latency (4 cycles × 2 ports). uint8 activations and int8
weights are widened to fp32 in registers (the integer path: exact, see ``sparse_matmul``).

The IR is generic LLVM (``<8 x float>``, ``llvm.fma``), not x86 intrinsics, so it compiles on any CPU LLVM
targets — there is no CPU-specific path to fall back from; on AVX2 one vector is one ymm register.
Tested against a float64 reference and exact integer sums in tests/kernels/test_simd.py (and, through
``sparse_linear_t``, in tests/kernels/test_sparse_matmul.py).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import config, types
from numba.core import cgutils
from numba.extending import intrinsic

LANES = 8  # fp32 lanes per vector: one AVX2 ymm register
VECTORS = 8  # accumulators per tile: 64 tokens
WIDTH = LANES * VECTORS


def _element_to_float(builder, value, numba_type):
    """``value`` (a scalar or a vector of ``numba_type``) as float32 of the same shape."""
    if numba_type == types.float32:
        return value
    target = ir.VectorType(ir.FloatType(), LANES) if isinstance(value.type, ir.VectorType) else ir.FloatType()
    convert = builder.uitofp if numba_type == types.uint8 else builder.sitofp
    return convert(value, target)


def accumulate_loop(builder: ir.IRBuilder, j_start, j_end, zero, count: int, step) -> list:
    """Emit ``for j in [j_start, j_end)`` carrying ``count`` accumulators that start at ``zero`` (one value for all, or
    a list of ``count``).

    ``step(j, accs)`` emits one iteration and returns the new accumulators; the accumulators after the loop are
    returned and the builder is left after it. The accumulators are SSA values (phis), so LLVM keeps them in
    vector registers for the whole loop."""
    entry = builder.basic_block
    header, body, done = (builder.append_basic_block(f"tile.{name}") for name in ("header", "body", "done"))
    builder.branch(header)
    builder.position_at_end(header)
    j = builder.phi(j_start.type, "j")
    starts = zero if isinstance(zero, list) else [zero] * count
    accs = [builder.phi(start.type, f"acc{v}") for v, start in enumerate(starts)]
    j.add_incoming(j_start, entry)
    for acc, start in zip(accs, starts):
        acc.add_incoming(start, entry)
    builder.cbranch(builder.icmp_signed("<", j, j_end), body, done)
    builder.position_at_end(body)
    new_accs = step(j, accs)
    body_end = builder.basic_block
    j.add_incoming(builder.add(j, ir.Constant(j_start.type, 1)), body_end)
    for acc, new in zip(accs, new_accs):
        acc.add_incoming(new, body_end)
    builder.branch(header)
    builder.position_at_end(done)
    return accs


@intrinsic
def row_tile(typingctx, index, values, j0, j1, xs, t0, out):
    """``out[t0:t0+WIDTH] += Σ_j values[j]·xs[index[j], t0:t0+WIDTH]`` (CSR: 1-D values) or, block4 (values
    (S, 4)), ``Σ_j Σ_q values[j, q]·xs[4·index[j] + q, …]``. The caller guarantees t0 + WIDTH ≤ T,
    0 ≤ j0 ≤ j1 ≤ len(values), every column < K, and that ``xs`` (K, T) and ``out`` are C-contiguous."""
    ok = (isinstance(index, types.Array) and index.dtype in (types.uint16, types.int32) and
          isinstance(values, types.Array) and values.dtype in (types.float32, types.int8) and values.ndim in (1, 2) and
          isinstance(xs, types.Array) and xs.ndim == 2 and xs.dtype in (types.float32, types.uint8) and
          isinstance(out, types.Array) and out.dtype == types.float32)
    if not ok:
        return None
    sig = types.void(index, values, j0, j1, xs, t0, out)

    def codegen(context, builder, signature, args):
        a_index, a_values, a_j0, a_j1, a_xs, a_t0, a_out = args
        index_ptr = cgutils.create_struct_proxy(index)(context, builder, value=a_index).data
        values_ptr = cgutils.create_struct_proxy(values)(context, builder, value=a_values).data
        xs_struct = cgutils.create_struct_proxy(xs)(context, builder, value=a_xs)
        xs_ptr = xs_struct.data
        row_len = cgutils.unpack_tuple(builder, xs_struct.shape, 2)[1]  # T: elements per row of Xᵀ
        out_ptr = cgutils.create_struct_proxy(out)(context, builder, value=a_out).data
        i64 = ir.IntType(64)
        f32 = ir.FloatType()
        vec = ir.VectorType(f32, LANES)
        x_elem = context.get_value_type(xs.dtype)
        x_vec = ir.VectorType(x_elem, LANES)
        j_start = context.cast(builder, a_j0, signature.args[2], types.int64)
        j_end = context.cast(builder, a_j1, signature.args[3], types.int64)
        t_start = context.cast(builder, a_t0, signature.args[5], types.int64)
        zero = ir.Constant(vec, [0.0] * LANES)

        def step(j, accs):
            entry_index = builder.load(builder.gep(index_ptr, [j]))
            entry_index = (builder.zext(entry_index, i64) if index.dtype == types.uint16
                           else builder.sext(entry_index, i64))
            fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec, vec, vec]),
                                                 f"llvm.fma.v{LANES}f32")
            block = 4 if values.ndim == 2 else 1  # block4: entry j holds the weights of columns 4·index[j] + q
            new_accs = list(accs)
            for q in range(block):
                col = builder.add(builder.mul(entry_index, ir.Constant(i64, block)), ir.Constant(i64, q))
                slot = builder.add(builder.mul(j, ir.Constant(i64, block)), ir.Constant(i64, q))
                w = _element_to_float(builder, builder.load(builder.gep(values_ptr, [slot])), values.dtype)
                w_vec = builder.shuffle_vector(
                    builder.insert_element(ir.Constant(vec, ir.Undefined), w, ir.Constant(ir.IntType(32), 0)),
                    ir.Constant(vec, ir.Undefined), ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES))
                row = builder.gep(xs_ptr, [builder.add(builder.mul(col, row_len), t_start)])
                for v in range(VECTORS):
                    p = builder.bitcast(builder.gep(row, [ir.Constant(i64, v * LANES)]), x_vec.as_pointer())
                    x = _element_to_float(builder, builder.load(p, align=1), xs.dtype)
                    new_accs[v] = builder.call(fma, [x, w_vec, new_accs[v]])
            return new_accs

        accs = accumulate_loop(builder, j_start, j_end, zero, VECTORS, step)
        for v, acc in enumerate(accs):
            offset = builder.add(t_start, ir.Constant(i64, v * LANES))
            p = builder.bitcast(builder.gep(out_ptr, [offset]), vec.as_pointer())
            builder.store(builder.fadd(builder.load(p, align=4), acc), p, align=4)
        return context.get_dummy_value()

    return sig, codegen


if config.DISABLE_JIT:  # coverage runs: the IR exists only in compiled code, so run the same sum in Python

    def row_tile(index, values, j0, j1, xs, t0, out):  # noqa: F811
        acc = np.zeros(WIDTH, np.float32)
        for j in range(j0, j1):
            if values.ndim == 2:
                for q in range(values.shape[1]):
                    acc += np.float32(values[j, q]) * xs[4 * int(index[j]) + q, t0:t0 + WIDTH].astype(np.float32)
            else:
                acc += np.float32(values[j]) * xs[int(index[j]), t0:t0 + WIDTH].astype(np.float32)
        out[t0:t0 + WIDTH] += acc
