"""The wrapping every token-blocked row kernel shares (:mod:`.int8_block4`, :mod:`.int8_quads`, :mod:`.fp32_rows`): an
LLVM-IR emitter becomes a Numba intrinsic over one token block of the activations, and a row function picks that
intrinsic or the plain loop by the path a marker argument's type names (:data:`~sparsecore.kernels.isa.MARKERS`), at
compile time.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import config, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from sparsecore.kernels.isa import marker_path

_I64 = ir.IntType(64)


INT8 = (types.uint16, types.int32, types.uint8, types.int32)  # index, values, activations, out: the int8 kernels


def row_intrinsic(emit, path: str, ndim: int, row_items: int, dtypes: tuple = INT8):
    """``f(index, values, j0, j1, xb, b, out)``: ``emit(builder, path, index*, values*, j0, j1, slab*, out*)`` on token
    block ``b`` of ``xb`` (an ``ndim``-D array whose block b starts at element ``b · xb.shape[1] · row_items``); the
    arrays' element types are ``dtypes`` (index, values, xb, out: :data:`INT8` by default)."""

    @intrinsic
    def row(typingctx, index, values, j0, j1, xb, b, out):
        ok = (all(isinstance(a, types.Array) and a.dtype == d for a, d in zip((index, values, xb, out), dtypes)) and
              xb.ndim == ndim)
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
            slab = builder.mul(builder.mul(i64(a_b, signature.args[5]), rows), ir.Constant(_I64, row_items))
            emit(builder, path, data(index, a_index), data(values, a_values), i64(a_j0, signature.args[2]),
                 i64(a_j1, signature.args[3]), builder.gep(xs.data, [slab]), data(out, a_out))
            return context.get_dummy_value()

        return types.void(index, values, j0, j1, xb, b, out), codegen

    return row


def arg_readers(context, builder, signature, args):
    """``(i64, struct)`` for an intrinsic's codegen: argument i as an i64 value, and argument i's Numba struct (arrays:
    ``.data``, ``.shape``)."""

    def i64(i):
        return context.cast(builder, args[i], signature.args[i], types.int64)

    def struct(i):
        return cgutils.create_struct_proxy(signature.args[i])(context, builder, value=args[i])

    return i64, struct


def in_vectors(builder, lanes: int, count, run) -> None:
    """Emit ``run(width, first, stop)`` over ``count`` (i64) elements: ``stop`` vectors of ``lanes`` from element 0,
    then the rest as one-element vectors from ``first`` — the same operations, so every element gets the same bits."""
    full = builder.sdiv(count, ir.Constant(_I64, lanes))
    run(lanes, ir.Constant(_I64, 0), full)
    done = builder.mul(full, ir.Constant(_I64, lanes))
    run(1, done, builder.sub(count, done))


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


def assembly(name: str, pointers: list, emit, cpu: str) -> str:
    """Machine code, compiled for ``cpu`` (an LLVM CPU name such as ``icelake-server`` or ``haswell``) whatever CPU
    this host is, of a stand-alone function ``void name(pointers…)`` whose body ``emit(builder, *args)`` writes."""
    import llvmlite.binding as llvm

    module = ir.Module(name=name)
    function = ir.Function(module, ir.FunctionType(ir.VoidType(), pointers), name=name)
    builder = ir.IRBuilder(function.append_basic_block("entry"))
    emit(builder, *function.args)
    builder.ret_void()
    parsed = llvm.parse_assembly(str(module))
    parsed.verify()
    machine = llvm.Target.from_triple(llvm.get_process_triple()).create_target_machine(cpu=cpu, opt=3)
    return machine.emit_assembly(parsed)


def row_bounds(indptr: np.ndarray, chunks: int, align: int = 1) -> np.ndarray:
    """``chunks + 1`` row boundaries splitting the rows into ranges of about equal stored entries, each inner boundary
    a multiple of ``align`` (ranges may then be empty)."""
    targets = indptr[-1] * np.arange(1, chunks) / chunks
    inner = np.searchsorted(indptr[1:], targets, side="left") + 1
    inner = np.minimum(inner, len(indptr) - 1)
    if align > 1:
        inner = np.minimum((inner + align // 2) // align * align, (len(indptr) - 1) // align * align)
    return np.concatenate([[0], inner, [len(indptr) - 1]]).astype(np.int64)


def row_chunks(blocks: int, rows: int, threads: int) -> int:
    """Row ranges per token block: enough (block, range) tasks to share the blocks evenly between threads."""
    chunks = 1
    while (blocks * chunks) % threads and blocks * chunks < 4 * threads and chunks < max(1, rows // 16):
        chunks += 1
    return chunks


def task_rows(weight, blocks: int, threads: int, align: int = 1) -> np.ndarray:
    """Row boundaries of the (token block, row range) tasks of a token-blocked Linear with ``blocks`` blocks, for a
    packed ``weight`` (its ``indptr``), inner boundaries multiples of ``align``; kept in its ``tasks`` dict: every call
    of a model's Linear at one batch shape needs the same."""
    key = (blocks, threads, align)
    bounds = weight.tasks.get(key)
    if bounds is None:
        rows = len(weight.indptr) - 1
        bounds = weight.tasks[key] = row_bounds(weight.indptr, row_chunks(blocks, rows, threads), align)
    return bounds
