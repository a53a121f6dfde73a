"""The wrapping both int8 row kernels share (:mod:`.int8_block4`, :mod:`.int8_quads`): an LLVM-IR emitter becomes a
Numba intrinsic over one token block of the activations, and a row function picks that intrinsic or the plain loop
by the path a marker argument's type names (:data:`~sparsecore.kernels.isa.MARKERS`), at compile time.
"""

from __future__ import annotations

from llvmlite import ir
from numba import config, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from sparsecore.kernels.isa import marker_path

_I64 = ir.IntType(64)


def row_intrinsic(emit, path: str, ndim: int, row_bytes: int):
    """``f(index, values, j0, j1, xb, b, out)``: ``emit(builder, path, index*, values*, j0, j1, slab*, out*)`` on token
    block ``b`` of ``xb`` (an ``ndim``-D uint8 array whose block b starts at byte ``b · xb.shape[1] · row_bytes``);
    ``index`` uint16, ``values`` int32, ``out`` int32 arrays."""

    @intrinsic
    def row(typingctx, index, values, j0, j1, xb, b, out):
        ok = (isinstance(index, types.Array) and index.dtype == types.uint16 and
              isinstance(values, types.Array) and values.dtype == types.int32 and
              isinstance(xb, types.Array) and xb.ndim == ndim and xb.dtype == types.uint8 and
              isinstance(out, types.Array) and out.dtype == types.int32)
        if not ok:
            return None

        def codegen(context, builder, signature, args):
            a_index, a_values, a_j0, a_j1, a_xb, a_b, a_out = args

            def data(ty, value):
                return cgutils.create_struct_proxy(ty)(context, builder, value=value).data

            def i64(value, ty):
                return context.cast(builder, value, ty, types.int64)

            xs = cgutils.create_struct_proxy(xb)(context, builder, value=a_xb)
            rows = cgutils.unpack_tuple(builder, xs.shape, ndim)[1]
            slab = builder.mul(builder.mul(i64(a_b, signature.args[5]), rows), ir.Constant(_I64, row_bytes))
            emit(builder, path, data(index, a_index), data(values, a_values), i64(a_j0, signature.args[2]),
                 i64(a_j1, signature.args[3]), builder.gep(xs.data, [slab]), data(out, a_out))
            return context.get_dummy_value()

        return types.void(index, values, j0, j1, xb, b, out), codegen

    return row


def row_function(kernels: dict, plain, doc: str):
    """``row(marker, index, values, values4, j0, j1, xb, b, out)``: the intrinsic ``kernels[path]`` for the path
    ``marker``'s type names, else ``plain(index, values4, j0, j1, xb, b, out)`` (any path without one, and every
    call under ``NUMBA_DISABLE_JIT``, where intrinsics do not exist)."""

    def row(marker, index, values, values4, j0, j1, xb, b, out):
        plain(index, values4, j0, j1, xb, b, out)

    row.__doc__ = doc
    if config.DISABLE_JIT:
        return row

    @overload(row, inline="always")
    def _impl(marker, index, values, values4, j0, j1, xb, b, out):
        kernel = kernels.get(marker_path(marker))
        if kernel is None:
            return lambda marker, index, values, values4, j0, j1, xb, b, out: plain(index, values4, j0, j1, xb, b,
                                                                                    out)
        return lambda marker, index, values, values4, j0, j1, xb, b, out: kernel(index, values, j0, j1, xb, b, out)

    return row
