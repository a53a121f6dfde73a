"""The engine's Linear layers in the features × tokens layout: ``Yᵀ = W·Xᵀ + b`` (fp32) and its integer twin.

Format rule (per Linear, decided once at load): a matrix with sparsity below ``DENSE_BELOW`` stays dense
(BLAS sgemm is faster there: the sparse kernels' per-weight index loads cost more than the zeros they skip), every
other one runs the token-blocked fp32 kernels of :mod:`sparsecore.kernels.fp32_rows` on the host's float path —
format ``block4 <path>`` when most stored 1×4 blocks are full (4.5 instead of 6 bytes per weight), ``csr <path>``
otherwise (``benchmarks/fp32_kernels.py`` times them against the features × tokens kernels). Hosts without AVX2
run those (:mod:`sparsecore.kernels.sparse_matmul`, format ``csr``). ``formats="dense"``/``"csr"``/``"block4"``
force one format everywhere (``csr``/``block4``: the features × tokens kernels).
Integer Linears follow the same rule on their int8 codes (format names ``int8 dense``, ``int8 block4 <path>``,
``int8 quads <path>``, ``int8 csr <float path>``, ``int8 csr``: see :class:`QLinearT`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import numpy as np

from sparsecore.deploy.hugepages import Scratch
from sparsecore.deploy.int8_model import QuantLinear

# from this sparsity on, CSR beats BLAS sgemm on every BERT-base Linear shape (benchmarks/test_sparse_kernels.py)
DENSE_BELOW = 0.5


def _format(w: np.ndarray, formats: str) -> str:
    if formats != "auto":
        return formats
    return "dense" if 1.0 - np.count_nonzero(w) / w.size < DENSE_BELOW else "csr"


def _sparse(w: np.ndarray, fmt: str):
    from sparsecore.kernels.sparse_matmul import to_block4, to_csr

    return {"csr": to_csr, "block4": to_block4}[fmt](w)


@dataclass
class LinearT:
    """``Yᵀ = W·Xᵀ + b`` with W stored as ``dense`` (N, K) array, ``csr`` or ``block4``."""

    weight: object
    bias: np.ndarray
    format: str
    _own: Scratch = field(default_factory=Scratch, repr=False, compare=False)  # serves calls without a scratch

    @classmethod
    def build(cls, w: np.ndarray, b: np.ndarray, formats: str = "auto") -> LinearT:
        """The Linear for weight ``w`` (N, K) float32 and bias ``b`` (N,), stored as the format rule picks
        (``formats="auto"``) or as ``formats`` says."""
        from sparsecore.kernels.fp32_packing import MAX_COLUMNS, pack_rows
        from sparsecore.kernels.isa import float_path

        fmt = _format(w, formats)
        bias = np.ascontiguousarray(b, dtype=np.float32)
        path = float_path()
        if formats == "auto" and fmt == "csr" and path != "generic" and w.shape[1] <= MAX_COLUMNS:
            from sparsecore.kernels.panel_tuning import panel_for

            kind = "block4" if _block_structured(w) else "csr"
            w = np.ascontiguousarray(w, np.float32)
            return cls(pack_rows(w, kind, panel=panel_for(w, kind, path)), bias, f"{kind} {path}")
        weight = np.ascontiguousarray(w) if fmt == "dense" else _sparse(w, fmt)
        return cls(weight, bias, fmt)

    @property
    def token_blocked(self) -> bool:
        """Runs the token-blocked kernels (formats ``csr <path>``/``block4 <path>``): it can take its input and write
        its output in their layout (:meth:`blocked`)."""
        return " " in self.format

    def __call__(self, xt: np.ndarray, gelu: bool = False, out: np.ndarray | None = None,
                 scratch: Scratch | None = None, blocked_out: bool = False) -> np.ndarray:
        """``Yᵀ`` (N, T), into ``out`` when given; ``scratch``: the buffer for the token-blocked copy of ``xt``
        (:attr:`token_blocked` formats; the Linear's own when None). ``blocked_out`` (token-blocked formats): write
        Y in the token-blocked layout ``(blocks, N, 64)`` for a next Linear's :meth:`blocked`."""
        from sparsecore.kernels.sparse_matmul import gelu_inplace, sparse_linear_t

        if self.token_blocked:
            from sparsecore.kernels.fp32_rows import activation_shape, token_blocks

            xb = token_blocks(xt, out=(scratch or self._own).view(activation_shape(*xt.shape), np.float32))
            return self.blocked(xb, xt.shape[1], gelu, out, blocked_out)
        if blocked_out:
            raise ValueError(f"blocked_out needs a token-blocked format, this Linear runs {self.format}")
        if self.format == "dense":
            y = np.matmul(self.weight, xt, out=out)
            y += self.bias[:, None]
            return gelu_inplace(y) if gelu else y
        return sparse_linear_t(self.weight, xt, self.bias, gelu, out=out)

    def blocked(self, xb: np.ndarray, t_total: int, gelu: bool = False, out: np.ndarray | None = None,
                blocked_out: bool = False) -> np.ndarray:
        """``Yᵀ`` from activations already token-blocked (``(blocks, K, 64)``, e.g. a previous Linear's
        ``blocked_out``), ``t_total`` real tokens; outputs as :meth:`__call__`."""
        return self.blocked_call(xb, t_total, gelu, out, blocked_out)()

    def blocked_call(self, xb: np.ndarray, t_total: int, gelu: bool = False, out: np.ndarray | None = None,
                     blocked_out: bool = False, scratch: Scratch | None = None):
        """:meth:`blocked` checked once and bound to these arrays: a callable without arguments that runs it on their
        current contents (:func:`~sparsecore.kernels.fp32_rows.fp32_linear_call`). ``scratch`` is not used (its input
        is laid out already): it is taken so one call site binds an fp32 or an int8 Linear alike."""
        from sparsecore.kernels.fp32_rows import fp32_linear_call

        return fp32_linear_call(self.weight, xb, t_total, self.bias, gelu, self.format.split()[1], out=out,
                                blocked_out=blocked_out)

    def call(self, xt: np.ndarray, gelu: bool = False, out: np.ndarray | None = None, scratch: Scratch | None = None,
             blocked_out: bool = False):
        """:meth:`__call__` bound to these arrays: a callable without arguments that runs it on their current contents
        (token-blocked formats: the layout pass and the product checked once)."""
        if not self.token_blocked:
            return partial(self, xt, gelu, out, scratch, blocked_out)
        from sparsecore.kernels.bound import chain
        from sparsecore.kernels.fp32_rows import activation_shape, token_blocks_call

        relayout = token_blocks_call(xt, out=(scratch or self._own).view(activation_shape(*xt.shape), np.float32))
        return chain(relayout, self.blocked_call(relayout.result, xt.shape[1], gelu, out, blocked_out))

    def input_shape(self, t_total: int) -> tuple[int, int, int]:
        """The token-blocked shape :meth:`blocked` reads for ``t_total`` tokens (token-blocked formats)."""
        from sparsecore.kernels.fp32_rows import activation_shape

        return activation_shape(self.weight.shape[1], t_total)


def _block_structured(codes: np.ndarray) -> bool:
    """Most stored 1×4 blocks of ``codes`` (int8 codes or float weights) are full: packing by blocks adds at most 25%
    zero products."""
    from sparsecore.kernels.fp32_packing import stored_groups

    if codes.shape[1] % 4:
        return False
    return 4 * np.count_nonzero(stored_groups(codes, 4)) <= 1.25 * max(np.count_nonzero(codes), 1)


class QLinearT:
    """A :class:`QuantLinear` in the features × tokens layout: quantize Xᵀ to uint8 codes, multiply by the int8
    codes, ``(Σ + bias − za·Σ_k w) · rescale`` (then GELU).

    ``int8 block4 <path>`` runs :mod:`sparsecore.kernels.int8_block4` on the CPU's integer dot-product
    instructions (the path :func:`~sparsecore.kernels.isa.integer_path` picks; activations quantized straight
    into its interleaved layout) — or, below a path's stored-weight threshold
    (:func:`~sparsecore.kernels.int8_linear.token_blocked`; none by default), the quad kernels' code on their
    token-blocked layout, whose codes the LayerNorm, the attention and the previous Linear write. It is taken for
    ``formats="block4"`` and, under ``"auto"``, for sparse codes pruned in 1×4 blocks.
    ``int8 quads <path>`` runs :mod:`sparsecore.kernels.int8_quads` (any sparsity pattern, each row's non-zeros in
    quads: ``vpdpbusd`` on VNNI, ``vpmaddubsw`` + ``vpmaddwd`` on saturation-safe pairs on AVX2): taken for
    ``formats="quads"`` and, under ``"auto"``, for every other sparse matrix on a host with an integer path.
    ``int8 csr <float path>`` (``formats="csr blocked"``) runs the token-blocked fp32 kernels of
    :mod:`sparsecore.kernels.fp32_rows` on the codes held as float32 (exact products, the same bits). ``int8 csr``
    (forced) runs the kernels of :mod:`sparsecore.kernels.sparse_matmul` on the codes, as float32 values or as bytes
    widened in registers (:func:`~sparsecore.kernels.isa.csr_activations` picks by the host's path; exact integer
    sums either way).
    ``int8 dense`` runs BLAS sgemm on the codes as floats (q − za and w are small integers, so the products and
    every partial sum below 2²⁴ are exact: the integer result at sgemm speed).
    """

    def __init__(self, q: QuantLinear, formats: str = "auto") -> None:
        from sparsecore.kernels.fp32_packing import pack_rows
        from sparsecore.kernels.int8_block4 import pack_block4_int8
        from sparsecore.kernels.int8_linear import token_blocked
        from sparsecore.kernels.int8_quads import VECTOR_PATHS as QUAD_PATHS
        from sparsecore.kernels.int8_quads import pack_quads
        from sparsecore.kernels.isa import csr_activations, float_path, integer_path

        fmt = _format(q.codes, formats)
        path = integer_path()
        if formats == "auto" and fmt == "csr" and path in QUAD_PATHS:  # every integer path runs both kernels
            fmt = "block4" if _block_structured(q.codes) else "quads"
        if (fmt == "block4" and path != "generic") or (fmt == "quads" and path in QUAD_PATHS):
            fmt = f"{fmt} {path}"
            self._path = path
        elif fmt == "quads":
            raise ValueError(f"the int8 quads format needs an integer path ({', '.join(QUAD_PATHS)}); this CPU runs "
                             f"{path}")
        elif fmt == "csr blocked":  # the token-blocked fp32 kernels on float32 codes (exact products)
            self._path = float_path()
            fmt = f"csr {self._path}"
        self.format = f"int8 {fmt}"
        self.act = q.act
        self._bytes = fmt == "csr" and csr_activations() == "uint8"
        if fmt.startswith("block4 "):
            self.weight = pack_block4_int8(q.codes, pair_safe=path == "avx2")  # vpmaddubsw on both layouts
        elif fmt.startswith("quads "):
            self.weight = pack_quads(q.codes)
        elif fmt.startswith("csr "):
            self.weight = pack_rows(q.codes.astype(np.float32), "csr")
        else:
            # int8 codes as float32 values unless this host's path multiplies bytes (exact either way)
            codes = q.codes if self._bytes else q.codes.astype(np.float32)
            self.weight = codes if fmt == "dense" else _sparse(codes, fmt)
        self._token_blocked = self.writes_blocked and token_blocked(self.weight, self._path)
        # zero point folded into the bias: Σ w·(q − za) = Σ w·q − za·Σ w (exact integers while < 2²⁴)
        folded = q.bias - q.act.zero * q.codes.astype(np.int64).sum(axis=1)
        self.bias = folded.astype(np.float32)
        self.rescale = np.ascontiguousarray(q.rescale, dtype=np.float32)
        # activation codes (uint8 for the integer kernels, float32 values otherwise) on huge pages: a model passes
        # its own buffer to every call (one per execution stream, not one per Linear); this one serves calls without
        self._own = Scratch()

    def _integer(self, xt: np.ndarray, gelu: bool, out: np.ndarray | None, codes: Scratch,
                 blocked_out: bool = False, out_codes: tuple[float, int] | None = None,
                 interleaved: bool = False) -> np.ndarray:
        """The ``int8 block4 <path>`` and ``int8 quads <path>`` calls: quantize into the layout the kernel reads,
        integer products and epilogue (:mod:`sparsecore.kernels.int8_linear`)."""
        from sparsecore.kernels.int8_linear import int8_linear_t
        from sparsecore.kernels.quantize import quantize_u8_blocked, quantize_u8_interleave4

        t_total = xt.shape[1]
        shape = self.input_shape(t_total)
        quantize = quantize_u8_blocked if self.token_blocked else quantize_u8_interleave4
        xb = quantize(np.ascontiguousarray(xt), self.act.scale, self.act.zero, shape[2],
                      out=codes.view(shape, np.uint8))
        return int8_linear_t(self.weight, xb, t_total, self.bias, self.rescale, gelu, self._path, out=out,
                             blocked_out=blocked_out, codes=out_codes, interleaved=interleaved)

    @property
    def token_blocked(self) -> bool:
        """An ``int8 quads <path>`` Linear, or an ``int8 block4 <path>`` one whose kernel reads the same layout
        (:func:`~sparsecore.kernels.int8_linear.token_blocked`): it can take its input token-blocked
        (:meth:`blocked`) — uint8 codes a LayerNorm, the attention or a previous Linear wrote, or fp32 values."""
        return self._token_blocked

    @property
    def writes_blocked(self) -> bool:
        """An ``int8 quads <path>`` or ``int8 block4 <path>`` Linear: it can write its output token-blocked
        (``blocked_out``), ``(blocks, N, TB)`` with its kernel's TB, or as codes interleaved by four rows
        (``interleaved``), and it reads uint8 codes in the layout of :meth:`input_shape` (:meth:`blocked`)."""
        return self.format.startswith(("int8 quads ", "int8 block4 "))

    @property
    def tokens_per_block(self) -> int:
        """TB of the layout this Linear's kernel reads — and of the token-blocked output it writes (a
        :attr:`writes_blocked` Linear)."""
        from sparsecore.kernels.int8_linear import tokens_per_block

        return tokens_per_block(self.weight, self._path, self.token_blocked)

    @property
    def activation_codes(self) -> tuple[float, int]:
        """``(scale, zero_point)`` of this Linear's uint8 input codes: what a previous quad Linear's ``out_codes`` takes
        to write them for it."""
        return self.act.scale, self.act.zero

    def blocked(self, xb: np.ndarray, t_total: int, gelu: bool = False, out: np.ndarray | None = None,
                scratch: Scratch | None = None, blocked_out: bool = False,
                out_codes: tuple[float, int] | None = None, interleaved: bool = False) -> np.ndarray:
        """``Yᵀ`` (N, T) from activations already in the layout the kernel reads (:meth:`input_shape`: e.g. a previous
        int8 Linear's ``blocked_out``, or the codes a LayerNorm or the attention wrote for it): uint8 codes for
        :attr:`activation_codes` (used as they are), or — a :attr:`token_blocked` Linear — fp32 values (their codes are
        an elementwise quantization). ``blocked_out``, ``out_codes``, ``interleaved`` as for :meth:`__call__`."""
        from sparsecore.kernels.int8_linear import int8_linear_t
        from sparsecore.kernels.quantize import quantize_u8

        codes = xb if xb.dtype == np.uint8 else quantize_u8(xb, self.act.scale, self.act.zero,
                                                            out=(scratch or self._own).view(xb.shape, np.uint8))
        return int8_linear_t(self.weight, codes, t_total, self.bias, self.rescale, gelu, self._path, out=out,
                             blocked_out=blocked_out, codes=out_codes, interleaved=interleaved)

    def call(self, xt: np.ndarray, gelu: bool = False, out: np.ndarray | None = None, scratch: Scratch | None = None,
             blocked_out: bool = False, out_codes: tuple[float, int] | None = None, interleaved: bool = False):
        """:meth:`__call__` bound to these arrays: a callable without arguments that runs it on their current
        contents."""
        return partial(self, xt, gelu, out, scratch, blocked_out, out_codes, interleaved)

    def blocked_call(self, xb: np.ndarray, t_total: int, gelu: bool = False, out: np.ndarray | None = None,
                     scratch: Scratch | None = None, blocked_out: bool = False,
                     out_codes: tuple[float, int] | None = None, interleaved: bool = False):
        """:meth:`blocked` bound to these arrays: a callable without arguments that runs it on their current contents
        (uint8 codes: the kernel call checked once, :func:`~sparsecore.kernels.int8_linear.int8_linear_call`)."""
        if xb.dtype != np.uint8:
            return partial(self.blocked, xb, t_total, gelu, out, scratch, blocked_out, out_codes, interleaved)
        from sparsecore.kernels.int8_linear import int8_linear_call

        return int8_linear_call(self.weight, xb, t_total, self.bias, self.rescale, gelu, self._path, out=out,
                                blocked_out=blocked_out, codes=out_codes, interleaved=interleaved)

    def input_shape(self, t_total: int) -> tuple[int, ...]:
        """The shape of the uint8 codes :meth:`blocked` reads for ``t_total`` tokens (a :attr:`writes_blocked`
        Linear): token-blocked ``(blocks, K, TB)`` for a :attr:`token_blocked` Linear, else interleaved by four features
        ``(blocks, ceil(K/4), TB, 4)``."""
        from sparsecore.kernels.int8_linear import activation_shape

        return activation_shape(self.weight, t_total, self._path, self.token_blocked)

    def __call__(self, xt: np.ndarray, gelu: bool = False, out: np.ndarray | None = None,
                 scratch: Scratch | None = None, blocked_out: bool = False,
                 out_codes: tuple[float, int] | None = None, interleaved: bool = False) -> np.ndarray:
        """``Yᵀ`` (N, T) float32, into ``out`` when given; ``scratch``: the activation-code buffer to use.
        ``blocked_out`` (:attr:`writes_blocked`): Y token-blocked (for a next token-blocked Linear's :meth:`blocked`, or
        the attention); with ``out_codes`` (that Linear's :attr:`activation_codes`) as its uint8 codes — interleaved by
        four rows, ``(blocks, N/4, TB, 4)``, with ``interleaved``: a next 1×4-block Linear's input layout."""
        from sparsecore.kernels.quantize import quantize_f32, quantize_u8
        from sparsecore.kernels.sparse_matmul import gelu_inplace, sparse_linear_t

        code_buffer = scratch or self._own
        if blocked_out and not self.writes_blocked:
            raise ValueError(f"blocked_out needs the int8 quads or block4 format, this Linear runs {self.format}")
        if self.format.startswith(("int8 block4 ", "int8 quads ")):
            return self._integer(xt, gelu, out, code_buffer, blocked_out, out_codes, interleaved)
        if self.format.startswith("int8 csr "):
            from sparsecore.kernels.fp32_rows import TOKENS, activation_shape, fp32_linear_t
            from sparsecore.kernels.quantize import quantize_f32_blocked

            xb = quantize_f32_blocked(np.ascontiguousarray(xt), self.act.scale, self.act.zero, TOKENS,
                                      out=code_buffer.view(activation_shape(*xt.shape), np.float32))
            return fp32_linear_t(self.weight, xb, xt.shape[1], self.bias, gelu, self._path, out=out,
                                 scale=self.rescale)
        quantize, dtype = (quantize_u8, np.uint8) if self._bytes else (quantize_f32, np.float32)
        codes = quantize(np.ascontiguousarray(xt), self.act.scale, self.act.zero, out=code_buffer.view(xt.shape, dtype))
        if self.format != "int8 dense":
            return sparse_linear_t(self.weight, codes, self.bias, gelu, out=out, scale=self.rescale)
        y = np.matmul(self.weight, codes, out=out)
        y += self.bias[:, None]
        y *= self.rescale[:, None]
        return gelu_inplace(y) if gelu else y


FORMATS = ("auto", "dense", "csr", "block4", "quads", "csr blocked")  # what ``formats=`` takes
INT8_ONLY = ("quads", "csr blocked")  # int8 formats: an fp32 Linear of the same graph takes the format rule


def build_linear(spec, formats: str = "auto") -> LinearT | QLinearT:
    """The engine's Linear for ``(W, b)`` (fp32) or a :class:`QuantLinear`; ``formats`` one of :data:`FORMATS`."""
    if formats not in FORMATS:
        raise ValueError(f"formats={formats!r} is not one of {', '.join(FORMATS)}")
    if isinstance(spec, QuantLinear):
        return QLinearT(spec, formats)
    return LinearT.build(*spec, "auto" if formats in INT8_ONLY else formats)
