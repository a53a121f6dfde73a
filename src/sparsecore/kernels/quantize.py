"""Activation quantization for the integer path: fp32 → uint8 codes (as bytes, interleaved or token-blocked
bytes, or float32 values), and fp32 → integer codes in place.

Both follow ONNX ``QuantizeLinear`` exactly (what ONNX Runtime and DeepSparse compute):
``q = saturate(round_half_even(x / scale) + zero_point)`` into [0, 255] — a division, not a multiply by
1/scale (that rounds differently on ties). :func:`codes_inplace` writes ``q − zero_point`` back
as float32, the integers the quantized attention products multiply (see ``kernels/attention.py``).
Tested against numpy in tests/kernels/test_quantize.py.
"""

from __future__ import annotations

import functools

import numba as nb
import numpy as np
from numba import config, types
from numba.extending import overload

from sparsecore.kernels._config import NJIT_FMA, NJIT_FMA_PARALLEL
from sparsecore.kernels.isa import float_path, marker

_CHUNK = 4096
_MAGIC = np.float32(1.5 * 2**23)  # (v + M) − M rounds v to the nearest integer, ties to even, for |v| < 2²²


@nb.njit(inline="always", **NJIT_FMA)
def _round_clamp(v, lo, hi):
    """``min(max(round_half_even(v), lo), hi)`` for integer-valued ``lo ≤ hi`` (|lo|, |hi| < 2²²).

    Clamping first is the same (rounding is monotone and lo, hi are integers) and keeps |v| small enough for
    the add-and-subtract rounding, which — unlike a call to ``rint`` — vectorises."""
    v = min(max(v, lo), hi)
    return (v + _MAGIC) - _MAGIC


@nb.njit(**NJIT_FMA_PARALLEL)
def _quantize(x, scale, zero, out):
    f = np.float32
    lo, hi = f(-zero), f(255 - zero)  # clamp before adding the zero point: the sum stays within [0, 255]
    for c in nb.prange((x.size + _CHUNK - 1) // _CHUNK):
        for i in range(c * _CHUNK, min(x.size, (c + 1) * _CHUNK)):
            out[i] = np.uint8(np.int32(_round_clamp(x[i] / scale, lo, hi) + f(zero)))


@nb.njit(**NJIT_FMA_PARALLEL)
def _quantize_f32(x, scale, zero, out):
    f = np.float32
    lo, hi = f(-zero), f(255 - zero)
    for c in nb.prange((x.size + _CHUNK - 1) // _CHUNK):
        for i in range(c * _CHUNK, min(x.size, (c + 1) * _CHUNK)):
            out[i] = _round_clamp(x[i] / scale, lo, hi) + f(zero)


@nb.njit(**NJIT_FMA_PARALLEL)
def _codes(x, scale, zero, lo, hi):
    f = np.float32
    qlo, qhi = f(lo - zero), f(hi - zero)
    for c in nb.prange((x.size + _CHUNK - 1) // _CHUNK):
        for i in range(c * _CHUNK, min(x.size, (c + 1) * _CHUNK)):
            x[i] = _round_clamp(x[i] / scale, qlo, qhi)


def emit_interleave4(builder, lanes: int, rows, count, qscale, zero, dst) -> None:
    """Emit the codes of ``count`` (i64) tokens of the four float rows ``rows`` (float* each) written interleaved to
    ``dst`` (i32*: token i's four codes little-endian in ``dst[i]``), ``lanes`` tokens per vector, then one at a time
    (the same operations)."""
    from llvmlite import ir

    from sparsecore.kernels.epilogue import code_constants, emit_codes, emit_word4
    from sparsecore.kernels.row_kernels import in_vectors
    from sparsecore.kernels.simd import accumulate_loop

    i64 = ir.IntType(64)

    def run(width, first, stop):
        vec, ints = ir.VectorType(ir.FloatType(), width), ir.VectorType(ir.IntType(32), width)
        constants = code_constants(builder, vec, qscale, zero)

        def step(v, _accs):
            offset = builder.add(first, builder.mul(v, ir.Constant(i64, width)))
            xs = [builder.load(builder.bitcast(builder.gep(row, [offset]), vec.as_pointer()), align=4) for row in rows]
            word = emit_word4(builder, [emit_codes(builder, x, *constants) for x in xs])
            builder.store(word, builder.bitcast(builder.gep(dst, [offset]), ints.as_pointer()), align=1)
            return []

        accumulate_loop(builder, ir.Constant(i64, 0), stop, None, 0, step)

    in_vectors(builder, lanes, count, run)


def _interleave4_intrinsic(lanes: int):
    from llvmlite import ir
    from numba.core import cgutils
    from numba.extending import intrinsic

    @intrinsic
    def codes4(typingctx, xt, row, t0, count, scale, zero, dst):
        if not (isinstance(xt, types.Array) and xt.dtype == types.float32 and xt.ndim == 2 and
                isinstance(dst, types.Array) and dst.dtype == types.uint8):
            return None

        def codegen(context, builder, signature, args):
            from sparsecore.kernels.row_kernels import arg_readers

            i64, struct = arg_readers(context, builder, signature, args)
            xs = struct(0)
            stride = cgutils.unpack_tuple(builder, xs.shape, 2)[1]

            start = builder.add(builder.mul(i64(1), stride), i64(2))
            rows = [builder.gep(xs.data, [builder.add(start, builder.mul(stride, ir.Constant(ir.IntType(64), q)))])
                    for q in range(4)]
            dst_ptr = builder.bitcast(struct(6).data, ir.IntType(32).as_pointer())
            f32 = [context.cast(builder, args[i], signature.args[i], types.float32) for i in (4, 5)]
            emit_interleave4(builder, lanes, rows, i64(3), *f32, dst_ptr)
            return context.get_dummy_value()

        return types.void(xt, row, t0, count, scale, zero, dst), codegen

    return codes4


def _four_rows(marker, xt, row, t0, width, scale, zero, dst, lo, hi):
    """``dst[i, q]`` = code of ``xt[row + q, t0 + i]`` for ``i < width``, ``q < 4``."""
    f = np.float32
    for i in range(width):
        for q in range(4):
            dst[i, q] = np.uint8(np.int32(_round_clamp(xt[row + q, t0 + i] / scale, lo, hi) + f(zero)))


if not config.DISABLE_JIT:
    _CODES4 = {lanes: _interleave4_intrinsic(lanes) for lanes in (1, 8, 16)}

    @overload(_four_rows, inline="always")
    def _four_rows_impl(marker, xt, row, t0, width, scale, zero, dst, lo, hi):
        from sparsecore.kernels.epilogue import LANES
        from sparsecore.kernels.isa import marker_path

        kernel = _CODES4[LANES.get(marker_path(marker), 1)]
        return lambda marker, xt, row, t0, width, scale, zero, dst, lo, hi: kernel(xt, row, t0, width, scale,
                                                                                   np.float32(zero), dst)


@nb.njit(**NJIT_FMA_PARALLEL)
def _quantize_interleave4(marker, xt, scale, zero, out):
    f = np.float32
    lo, hi = f(-zero), f(255 - zero)
    k, t_total = xt.shape
    blocks, quads, tb, _ = out.shape
    pad = np.uint8(zero)
    for c in nb.prange(quads):
        for b in range(blocks):
            t0, dst = b * tb, out[b, c]
            width = min(tb, t_total - t0)
            if 4 * c + 4 <= k:  # four rows in, one interleaved row out, at the path's vector width
                _four_rows(marker, xt, 4 * c, t0, width, scale, zero, dst, lo, hi)
            else:  # padding features: their weights are zero, the codes only have to be defined
                for i in range(width):
                    for q in range(4):
                        dst[i, q] = pad if 4 * c + q >= k else np.uint8(
                            np.int32(_round_clamp(xt[4 * c + q, t0 + i] / scale, lo, hi) + f(zero)))
            dst[width:] = pad


def quantize_u8_interleave4(xt: np.ndarray, scale: float, zero_point: int, tb: int,
                            out: np.ndarray | None = None) -> np.ndarray:
    """uint8 codes of ``xt`` (K, T), as :func:`quantize_u8`, token-blocked and interleaved by four features:
    ``out[b, c, i, q]`` = code of ``xt[4c + q, tb·b + i]`` (``(ceil(T/tb), ceil(K/4), tb, 4)``; features past K
    and tokens past T get the zero point) — the layout :mod:`.int8_block4` reads."""
    return _blocked_codes(_quantize_interleave4, xt, scale, zero_point, out,
                          lambda k, t: (-(-t // tb), -(-k // 4), tb, 4))


def _code(value, like):
    """The code ``value`` (an integer-valued float32 in [0, 255]) in the element type of ``like``: uint8 or float32."""


@overload(_code, inline="always")
def _code_impl(value, like):
    if like.dtype == types.uint8:
        return lambda value, like: np.uint8(np.int32(value))
    return lambda value, like: value


if config.DISABLE_JIT:  # coverage runs: no overloads outside compiled code

    def _code(value, like):
        return like.dtype.type(value)


def _segment_codes(marker, src, scale, zero, dst):
    """``dst[i]`` = code of ``src[i]`` for ``i < dst.size``: uint8 bytes at the vector width of the path ``marker``'s type
    names (:func:`~.epilogue.row_epilogue` with bias 0 and scale 1: the same bits), or float32 values."""
    f = np.float32
    for i in range(dst.size):
        dst[i] = _code(_round_clamp(src[i] / scale, f(-zero), f(255 - zero)) + f(zero), dst)


if not config.DISABLE_JIT:

    @overload(_segment_codes, inline="always")
    def _segment_codes_impl(marker, src, scale, zero, dst):
        from sparsecore.kernels.epilogue import row_epilogue

        if dst.dtype == types.uint8:
            return lambda marker, src, scale, zero, dst: row_epilogue(marker, src, 0.0, 1.0, False, dst, scale, zero)

        def impl(marker, src, scale, zero, dst):
            f = np.float32
            lo, hi = f(-zero), f(255 - zero)
            for i in range(dst.size):  # one row of TB contiguous tokens in, one out: vectorises
                dst[i] = _round_clamp(src[i] / scale, lo, hi) + f(zero)

        return impl


@nb.njit(**NJIT_FMA_PARALLEL)
def _quantize_blocked(marker, xt, scale, zero, out):
    """Codes of ``xt`` (K, T) into the token-blocked ``out`` (blocks, K, TB), uint8 or float32; tokens past T get the
    zero point."""
    t_total = xt.shape[1]
    blocks, k, tb = out.shape
    for c in nb.prange(k):
        src = xt[c]
        for b in range(blocks):
            dst = out[b, c]
            t0 = b * tb
            width = min(tb, t_total - t0)
            _segment_codes(marker, src[t0:t0 + width], scale, zero, dst[:width])
            dst[width:] = zero


def quantize_f32_blocked(xt: np.ndarray, scale: float, zero_point: int, tb: int,
                         out: np.ndarray | None = None) -> np.ndarray:
    """The codes of :func:`quantize_u8_blocked` as float32 values (``(ceil(T/tb), K, tb)``): the activations the
    token-blocked fp32 kernels (:mod:`.fp32_rows`) multiply by int8 weight codes held as float32."""
    return _blocked_codes(_quantize_blocked, xt, scale, zero_point, out, lambda k, t: (-(-t // tb), k, tb),
                          np.float32)


def quantize_u8_blocked(xt: np.ndarray, scale: float, zero_point: int, tb: int,
                        out: np.ndarray | None = None) -> np.ndarray:
    """uint8 codes of ``xt`` (K, T), as :func:`quantize_u8`, written token-blocked: ``out[b, k, i]`` = code of
    ``xt[k, tb·b + i]`` (``(ceil(T/tb), K, tb)``; tokens past T get the zero point) — the layout
    :mod:`.int8_quads` reads."""
    return _blocked_codes(_quantize_blocked, xt, scale, zero_point, out, lambda k, t: (-(-t // tb), k, tb))


def check_blocked(buffer: np.ndarray, rows: int, tokens: int, dtype, what: str, multiple: int = 1,
                  interleaved: bool = False) -> int:
    """TB of ``buffer`` after checking it is a C-contiguous ``dtype`` array ``(ceil(tokens/TB), rows, TB)`` — a
    token-blocked layout — or, where ``interleaved`` is allowed, ``(ceil(tokens/TB), rows/4, TB, 4)`` (rows a multiple
    of 4: the interleaved layout of :func:`quantize_u8_interleave4`), with TB a multiple of ``multiple``; one
    ``ValueError`` naming ``what`` otherwise."""
    four = interleaved and buffer.ndim == 4 and not rows % 4
    tb = buffer.shape[2] if four else buffer.shape[-1] if buffer.ndim == 3 else 0
    shape = (-(-tokens // tb), rows // 4, tb, 4) if four else (-(-tokens // tb), rows, tb) if tb else None
    if (buffer.dtype != dtype or not tb or tb % multiple or buffer.shape != shape
            or not buffer.flags.c_contiguous):
        rule = f" with TB a multiple of {multiple}" if multiple > 1 else ""
        other = f" or (ceil({tokens}/TB), {rows // 4}, TB, 4)" if interleaved and not rows % 4 else ""
        raise ValueError(f"{what} must be a C-contiguous {np.dtype(dtype).name} array (ceil({tokens}/TB), {rows}, "
                         f"TB){other}{rule}, got {buffer.dtype} {buffer.shape}")
    return tb


def pad_blocked(blocked: np.ndarray, real: int, pad) -> np.ndarray:
    """Tokens ``real …`` of a token-blocked ``(blocks, K, TB)`` array set to ``pad``; returns the array."""
    tb = blocked.shape[2]
    for b in range(real // tb, blocked.shape[0]):
        blocked[b, :, max(0, real - b * tb):] = pad
    return blocked


def _blocked_codes(kernel, xt: np.ndarray, scale: float, zero_point: int, out: np.ndarray | None,
                   shape_of, dtype=np.uint8) -> np.ndarray:
    """``kernel(marker, xt, scale, zero, out)`` writing the codes of ``xt (K, T)`` (``dtype``: uint8 bytes or float32
    values) in the token-blocked layout of shape ``shape_of(K, T)`` at the host's float path, after the checks every
    blocked layout shares."""
    s, z = _params(scale, zero_point, 0, 255)
    if xt.dtype != np.float32 or xt.ndim != 2 or not xt.flags.c_contiguous:
        raise ValueError(f"xt must be a C-contiguous float32 (K, T) array, got {xt.dtype} {xt.shape}")
    shape = shape_of(*xt.shape)
    if out is None:
        out = np.empty(shape, dtype)
    elif out.shape != shape or out.dtype != dtype or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous {np.dtype(dtype).name} array of shape {shape}")
    kernel(marker(float_path()), xt, s, z, out)
    return out


def _flat(x: np.ndarray) -> np.ndarray:
    if x.dtype != np.float32 or not x.flags.c_contiguous:
        raise ValueError(f"x must be a C-contiguous float32 array, got {x.dtype}")
    return x.reshape(-1)


def _params(scale: float, zero_point: int, lo: int, hi: int) -> tuple[np.float32, int]:
    """``(scale, zero_point)`` as the kernels take them after checking them (remembered: a model asks for its few
    activation parameters on every call)."""
    try:
        return _checked_params(scale, zero_point, lo, hi)
    except TypeError:  # unhashable (an array): checked every time
        return _checked_params.__wrapped__(scale, zero_point, lo, hi)


@functools.lru_cache(maxsize=4096)
def _checked_params(scale: float, zero_point: int, lo: int, hi: int) -> tuple[np.float32, int]:
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive finite number, got {scale}")
    if not lo <= zero_point <= hi:
        raise ValueError(f"zero_point {zero_point} is outside [{lo}, {hi}]")
    return np.float32(scale), int(zero_point)


def _codes_of(kernel, x: np.ndarray, scale: float, zero_point: int, out: np.ndarray | None, dtype) -> np.ndarray:
    """``kernel(x, scale, zero, out)`` over flat views, after the checks both code writers share."""
    s, z = _params(scale, zero_point, 0, 255)
    flat = _flat(x)
    if out is None:
        out = np.empty(x.shape, dtype)
    elif out.shape != x.shape or out.dtype != dtype or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous {np.dtype(dtype).name} array of shape {x.shape}")
    kernel(flat, s, z, out.reshape(-1))
    return out


def quantize_u8(x: np.ndarray, scale: float, zero_point: int, out: np.ndarray | None = None) -> np.ndarray:
    """uint8 codes of ``x`` (same shape) for a per-tensor ``scale`` and ``zero_point`` in [0, 255]."""
    return _codes_of(_quantize, x, scale, zero_point, out, np.uint8)


def quantize_f32(x: np.ndarray, scale: float, zero_point: int, out: np.ndarray | None = None) -> np.ndarray:
    """The uint8 codes of :func:`quantize_u8` as float32 values (0.0 … 255.0, exact): the activations the
    sparse fp32 kernels multiply by int8 weight codes held as float32 (exact products, see
    :mod:`.sparse_matmul`) without widening bytes in the inner loop."""
    return _codes_of(_quantize_f32, x, scale, zero_point, out, np.float32)


def codes_inplace(x: np.ndarray, scale: float, zero_point: int, lo: int = 0, hi: int = 255) -> np.ndarray:
    """``x ← clip(round(x / scale) + zero_point, lo, hi) − zero_point`` in place: the integer codes a
    ``MatMulInteger`` multiplies, as exact small integers in float32."""
    s, z = _params(scale, zero_point, lo, hi)
    _codes(_flat(x), s, z, lo, hi)
    return x
