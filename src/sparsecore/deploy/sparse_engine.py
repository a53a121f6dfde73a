"""``engine="sparsecore"``: our own CPU engine for pruned encoder classifiers (numpy + Numba kernels).

Every family of :mod:`sparsecore.families` (BERT, RoBERTa/XLM-R, ELECTRA, DistilBERT) runs: they share the
block shape and differ in embeddings (positions, token types, ELECTRA's projection) and head activation.

Everything runs in the features × tokens layout (see :mod:`sparsecore.kernels.sparse_matmul`): the
hidden state is ``Xᵀ (H, T)`` with T = batch·sequence tokens, so each Linear is one kernel call
``Yᵀ = W·Xᵀ + b`` and no activation is ever transposed between layers. Q, K and V are fused into one
(3H, H) matrix per layer. Every stage of a layer is one parallel Numba kernel: the Linears
(:mod:`sparsecore.kernels.sparse_matmul`, GELU fused into the intermediate one), fused attention
(:mod:`sparsecore.kernels.attention`) and residual-add + LayerNorm (:mod:`sparsecore.kernels.layer_norm`).
Only dense-format Linears and the classifier head call BLAS.

Padding costs nothing: the real tokens of a batch run side by side (T = the sum of the real lengths, see
:func:`~sparsecore.deploy.token_layout.token_layout`) and attention runs per sequence at its own length, so a batch
of short sentences padded to 128 costs its real tokens, with the padded graph's logits. Buffer rows get a stride
that is not a power of two (:func:`~sparsecore.deploy.token_layout.row_stride`).

Linears and their format rule: :mod:`sparsecore.deploy.linears`. Integer exports run the same way
with int8 Linears (uint8 activation codes × int8 weight codes, exact integer sums) and, where the graph
quantizes them, attention products on the integer codes of Q, K, V and the softmax output; LayerNorm,
softmax and GELU stay fp32 as in the graph.
"""

from __future__ import annotations

import copy
import logging
import queue
import threading
import time
from contextlib import nullcontext
from functools import partial
from pathlib import Path

import numba
import numpy as np

from sparsecore.deploy.hugepages import Scratch
from sparsecore.deploy.int8_model import QuantLinear, fuse_qkv
from sparsecore.deploy.linears import LinearT, QLinearT, build_linear
from sparsecore.deploy.pair_head import mean_pool_columns, pair_logits
from sparsecore.deploy.sparse_model import EncoderArrays, load_encoder_arrays
from sparsecore.deploy.thread_pools import SINGLE_BLAS, threading_layer
from sparsecore.deploy.token_layout import ffn_blocks, padded, row_stride, token_layout
from sparsecore.errors import SparsecoreError

_log = logging.getLogger("sparsecore")
_DESCRIBED = False
QKV = ("query", "key", "value")  # fused into one matrix
_ACTIVATIONS = {"tanh": np.tanh, "relu": lambda x: np.maximum(x, 0.0, out=x)}  # gelu: fused into the Linear


class SparseEncoder:
    """An encoder classifier's forward pass in the features × tokens layout, built from :class:`EncoderArrays`.

    Per layer: fused QKV Linear (3H, H), attention, output Linear, residual + LayerNorm, intermediate Linear
    with GELU, output Linear, residual + LayerNorm; then the classifier head on each sequence's first token.
    ``formats`` picks the Linears' storage (see :mod:`sparsecore.deploy.linears`); the head and ELECTRA's
    embedding projection are always dense.
    """

    def __init__(self, arrays: EncoderArrays, formats: str = "auto") -> None:
        self.a = arrays
        self._ws_tokens, self._ws = 0, {}
        self.last_tokens = 0  # tokens the last forward pass ran (padding dropped)
        self._lock = threading.Lock()  # one forward at a time: the activation buffers are shared
        self.scratch = Scratch()  # the int8 Linears' activation codes: they run one at a time
        self.inputs = Scratch()  # the next token-blocked Linear's input as the stage before it wrote it, until it runs
        self.fused_inputs = True  # False: each Linear lays out (quantizes) its input itself (the same bits; for tests)
        self._plan, self._plan_key = {}, None  # per-layer buffers and layouts of the last token layout (:meth:`_memo`)
        self.layers = []
        quant = arrays.attention_quant or [None] * len(arrays.layers)
        for i, layer in enumerate(arrays.layers):
            parts = [layer[n] for n in QKV]
            if all(isinstance(p, QuantLinear) for p in parts):
                qkv = fuse_qkv(parts, f"layer {i}")
            elif any(isinstance(p, QuantLinear) for p in parts):
                raise SparsecoreError(f"layer {i} quantizes only some of its query/key/value Linears", "export",
                                      "quantize all three or none, or use engine='onnxruntime'")
            else:
                qkv = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
            entry = {
                "qkv": build_linear(qkv, formats),
                "attn_out": build_linear(layer["attn_out"], formats),
                "intermediate": build_linear(layer["intermediate"], formats),
                "out": build_linear(layer["output"], formats),
                "ln1": layer["ln1"], "ln2": layer["ln2"], "quant": quant[i]}
            q = quant[i]
            entry["attention_kw"] = {} if q is None else {
                "quant": (q.scores_rescale, q.p.scale, q.p.zero, q.context_rescale),
                "qkv_quant": tuple((a.scale, a.zero) for a in (q.q, q.k, q.v))}
            entry["names"] = {key: f"{what} ({entry[key].format})" for key, what in (
                ("qkv", "QKV Linear"), ("attn_out", "attention output Linear"),
                ("intermediate", "intermediate Linear + GELU"), ("out", "output Linear"))}
            self.layers.append(entry)
        heads = [build_linear(h, "dense") for h in arrays.head]  # none for a siamese model (deploy.pair_head)
        self.head_hidden, self.head_out = heads or (None, None)
        self.project = None if arrays.project is None else build_linear(arrays.project, "dense")

    def stream(self) -> SparseEncoder:
        """Another executor of this model: the same packed weights, its own activation buffers, int8 scratch and
        lock, so a forward on it runs alongside one on this executor."""
        other = copy.copy(self)
        other._ws_tokens, other._ws, other.last_tokens = 0, {}, 0
        other._lock = threading.Lock()
        other.scratch, other.inputs = Scratch(), Scratch()
        other._plan, other._plan_key = {}, None
        return other

    def formats(self) -> dict[str, int]:
        """How many encoder Linears run in each format present, e.g. ``{"csr": 22, "dense": 2}``."""
        counts: dict[str, int] = {}
        for layer in self.layers:
            for key in ("qkv", "attn_out", "intermediate", "out"):
                counts[layer[key].format] = counts.get(layer[key].format, 0) + 1
        return counts

    def embed_t(self, ids: np.ndarray, token_types: np.ndarray, out: np.ndarray,
                keep: tuple[np.ndarray, np.ndarray] | None = None, feed: dict | None = None) -> np.ndarray:
        """Embeddings of ``ids`` (batch, seq) → LayerNorm (→ ELECTRA's projection) written into ``out`` (H, ≥ T).

        ``keep``: the (row, column) indices of the tokens to embed, in order (None: every token); each keeps the
        position it has in ``ids``. Columns of ``out`` after the T embedded tokens are zeroed. ``feed``: what the
        LayerNorm also writes for the first layer's QKV Linear (:meth:`_feed_for`: its input codes or its token-blocked
        input, :func:`~sparsecore.kernels.layer_norm.add_layer_norm_t`; not with a projection)."""
        from sparsecore.kernels.embeddings import embed_tokens_t
        from sparsecore.kernels.layer_norm import add_layer_norm_t

        a = self.a
        positions = a.positions(ids)
        if keep is not None:
            ids, positions, token_types = ids[keep], positions[keep], token_types[keep]
        tokens = ids.size
        if self.project is None:
            embed_tokens_t(a.word, a.position, a.token_type, ids, positions, token_types, out)
            out[:, tokens:] = 0.0
            return add_layer_norm_t(out, *a.embed_ln, a.eps, out=out, **(feed or {}))
        et = np.zeros((a.word.shape[1], out.shape[1]), np.float32)  # (E, T): ELECTRA's embedding width
        embed_tokens_t(a.word, a.position, a.token_type, ids, positions, token_types, et)
        return self.project(add_layer_norm_t(et, *a.embed_ln, a.eps, out=et), out=out, scratch=self.scratch)

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray,
                 profile: dict[str, float] | None = None) -> np.ndarray:
        """Logits ``(batch, labels)``. ``profile``: when given, milliseconds per stage are added to it.
        Thread-safe: concurrent calls run one after another (each already uses every core)."""
        with self._lock:
            return self._forward(input_ids, attention_mask, token_type_ids, profile)

    def _forward(self, input_ids, attention_mask, token_type_ids, profile) -> np.ndarray:
        from sparsecore.kernels.attention import attention_call
        from sparsecore.kernels.layer_norm import add_layer_norm_call

        stage = _Stages(profile)
        eps = self.a.eps
        starts, keep, add_mask = stage("padding removal", token_layout, attention_mask)
        self.last_tokens = int(starts[-1])
        ws = self._workspace(row_stride(self.last_tokens))
        # the last two: the buffers grow with _ws; the kernels split their work over this many threads
        plan_key = (ws["x"].shape[1], starts.tobytes(), self.fused_inputs, self._ws_tokens, numba.get_num_threads())
        if plan_key != self._plan_key:  # another token layout: the layers' buffers and calls are worked out anew
            self._plan, self._plan_key = {}, plan_key
        memo, bind = self._memo, self._bound
        # a token-blocked Linear after a LayerNorm reads its input as that LayerNorm wrote it: int8 codes or the fp32
        # token-blocked copy (no quantize or layout pass of its own)
        feed = memo("qkv feed", 0, self._feed_for,
                    self.layers[0]["qkv"] if self.layers and self.project is None else None, ws["x"].shape[1])
        xt = stage("embeddings + LayerNorm", self.embed_t, input_ids, token_type_ids, ws["x"], keep, feed)  # in place
        first = starts[:-1]  # the column of each sequence's first token: what the classifier head reads
        for i, layer in enumerate(self.layers):
            # the last layer runs its queries and everything after attention on the first tokens only: the logits
            # depend on nothing else (the keys and values still come from every token)
            # (a siamese model's pooling reads every token: no such shortcut)
            final = i == len(self.layers) - 1
            last = final and self.a.pair_head is None
            names = layer["names"]
            # Q, K, V token-blocked when the attention reads them so (quantized attention on VNNI)
            qkv_out, tokens = memo("qkv", i, self._qkv_target, layer["qkv"], layer["quant"], ws["qkv"]), xt.shape[1]
            blocked_qkv = {} if qkv_out.ndim == 2 else {"blocked_out": True}
            if not feed:
                qkv = stage(names["qkv"], bind("qkv", i, layer["qkv"].call, xt, out=qkv_out, scratch=self.scratch,
                                               **blocked_qkv))
            else:
                qkv = stage(names["qkv"], bind("qkv", i, layer["qkv"].blocked_call, _fed(feed), xt.shape[1],
                                               out=qkv_out, **blocked_qkv))
            if last:
                ws = memo("last", i, self._first_tokens_workspace, xt.shape[0], first.size, ws["inter"].shape[0])
                xt = np.take(xt, first, axis=1, out=ws["x"])  # (H, B), the same buffer on every call
                first = np.arange(xt.shape[1])
            # a token-blocked attention output Linear reads the context as attention wrote it: token-blocked fp32,
            # or its uint8 codes
            attn_out = layer["attn_out"]
            into = memo("into", i, self._blocked_input, attn_out, xt.shape[1])
            attention = (partial(bind, "attention", i) if add_mask is None else _call)(
                attention_call, qkv, starts, self.a.heads, add_mask, out=None if into else ws["ctx"], first_only=last,
                tokens=tokens, **into, **layer["attention_kw"])  # a mask's values change from call to call
            ctx = stage("attention (QKᵀ, softmax, ·V)", attention)
            if into:
                h = stage(names["attn_out"], bind("attn_out", i, attn_out.blocked_call, ctx, xt.shape[1], out=ws["h"]))
            else:
                h = stage(names["attn_out"], bind("attn_out", i, attn_out.call, ctx, out=ws["h"],
                                                  scratch=self.scratch))
            inter_linear, out_linear = layer["intermediate"], layer["out"]
            feed = memo("inter feed", i, self._feed_for, inter_linear, xt.shape[1])
            stage("residual add + LayerNorm ×2", bind("ln1", i, add_layer_norm_call, xt, *layer["ln1"], eps,
                                                      residual=h, out=xt, **feed))
            # the intermediate Linear's input: what the LayerNorm wrote for it, or xt
            inner = (inter_linear.call, xt) if not feed else (inter_linear.blocked_call, _fed(feed), xt.shape[1])
            shape = memo("ffn", i, ffn_blocks, inter_linear, out_linear, xt.shape[1])
            if shape is not None:
                # the FFN's inner activations stay in the layout the output Linear reads (token-blocked, or int8
                # codes interleaved by four features): no copy; int8 Linears write them as its uint8 codes
                size = int(np.prod(shape))
                if isinstance(out_linear, QLinearT):
                    buffer, kw = ws["inter_flat"].view(np.uint8)[:size], {"out_codes": out_linear.activation_codes,
                                                                          "interleaved": len(shape) == 4}
                    outer_kw = {"scratch": self.scratch}
                else:
                    buffer, kw, outer_kw = ws["inter_flat"][:size], {}, {}
                inter = stage(names["intermediate"], bind("intermediate", i, *inner, gelu=True,
                                                          out=buffer.reshape(shape), scratch=self.scratch,
                                                          blocked_out=True, **kw))
                h = stage(names["out"], bind("out", i, out_linear.blocked_call, inter, xt.shape[1], out=ws["h"],
                                             **outer_kw))
            else:
                inter = stage(names["intermediate"], bind("intermediate", i, *inner, gelu=True, out=ws["inter"],
                                                          scratch=self.scratch))
                h = stage(names["out"], bind("out", i, out_linear.call, inter, out=ws["h"], scratch=self.scratch))
            feed = {} if final else memo("qkv feed", i + 1, self._feed_for, self.layers[i + 1]["qkv"], xt.shape[1])
            stage("residual add + LayerNorm ×2", bind("ln2", i, add_layer_norm_call, xt, *layer["ln2"], eps,
                                                      residual=h, out=xt, **feed))
        if self.a.pair_head is not None:  # a siamese model: each sequence's mean-pooled embedding (batch, H)
            return stage("mean pooling", mean_pool_columns, xt, starts, None if add_mask is None else attention_mask)
        return stage("classifier head", self.head, xt, first)

    def _bound(self, what: str, layer, make, *args, **kwargs):
        """``make(*args, **kwargs)`` — a stage's kernel call bound to its buffers, a callable without arguments — made
        once per token layout like :meth:`_memo`'s values: the arrays a stage reads and writes are the same memory on
        every call of one layout (the workspace, the int8 codes buffers, the last layer's first-token buffers), and
        what the kernel calls check and work out depends on shapes and parameters only."""
        key = ("call", what, layer)
        call = self._plan.get(key)
        if call is None:
            call = self._plan[key] = make(*args, **kwargs)
        return call

    def _memo(self, what: str, layer, make, *args):
        """``make(*args)`` for (``what``, ``layer``), worked out once per token layout: which buffers and layouts a
        layer's stages use depend on the model, the token count and the buffers only (the forward resets them when
        any of those changes)."""
        key = (what, layer)
        try:
            return self._plan[key]
        except KeyError:
            value = self._plan[key] = make(*args)
            return value

    @staticmethod
    def _first_tokens_workspace(hidden: int, columns: int, inter_rows: int) -> dict[str, np.ndarray]:
        """The last layer's buffers after attention: it runs the first token of each sequence only (``x``: their
        hidden states)."""
        return {"x": np.empty((hidden, columns), np.float32), "ctx": np.empty((hidden, columns), np.float32),
                "h": np.empty((hidden, columns), np.float32),
                "inter": np.empty((inter_rows, columns), np.float32),
                "inter_flat": np.empty(inter_rows * padded(columns), np.float32)}

    def _qkv_target(self, linear, quant, rows: np.ndarray) -> np.ndarray:
        """Where the QKV Linear writes: the ``(3H, T)`` workspace ``rows``, or the same memory as ``(blocks, 3H, TB)``
        in the Linear's token-blocked output layout when the attention reads Q, K, V so
        (:func:`~sparsecore.kernels.attention.reads_blocked_qkv`) and the Linear writes it (int8 1×4 blocks or
        quads)."""
        from sparsecore.kernels.attention import reads_blocked_qkv
        from sparsecore.kernels.int8_linear import activation_shape

        if not (self.fused_inputs and reads_blocked_qkv(quant is not None) and isinstance(linear, QLinearT)
                and linear.writes_blocked):
            return rows
        blocks, _, tb = activation_shape(linear.weight, rows.shape[1], linear._path, linear.token_blocked)[:3]
        return self._ws["qkv"][:blocks * rows.shape[0] * tb].reshape(blocks, rows.shape[0], tb)

    def _feed_for(self, linear, tokens: int) -> dict:
        """What a LayerNorm also writes for the token-blocked ``linear`` that reads its output next, as keywords of
        :func:`~sparsecore.kernels.layer_norm.add_layer_norm_call`: ``codes=(scale, zero_point, buffer)`` — the input
        codes of an int8 Linear on the integer kernels (quads or 1×4 blocks; the interleaved layout needs its K a
        multiple of 4), in the layout its kernel reads —, ``blocked=buffer`` — the token-blocked copy an fp32 Linear
        on the row kernels reads —, or nothing (``{}``: the Linear lays out its input itself)."""
        if not self.fused_inputs:
            return {}
        if isinstance(linear, LinearT) and linear.token_blocked:
            return {"blocked": self.inputs.view(linear.input_shape(tokens), np.float32)}
        if not (isinstance(linear, QLinearT) and linear.writes_blocked):
            return {}
        if not linear.token_blocked and linear.weight.shape[1] % 4:
            return {}
        return {"codes": (*linear.activation_codes, self.inputs.view(linear.input_shape(tokens), np.uint8))}

    def _blocked_input(self, linear, tokens: int) -> dict:
        """``attention_seq_t``'s ``blocked_out`` (and ``out_codes``) for a token-blocked ``linear`` that reads the
        context next: the fp32 row kernels' layout, or a token-blocked int8 Linear's codes; ``{}`` for any other
        Linear."""
        if not (self.fused_inputs and linear.token_blocked):
            return {}
        if isinstance(linear, QLinearT):
            return {"blocked_out": self.inputs.view(linear.input_shape(tokens), np.uint8),
                    "out_codes": linear.activation_codes}
        return {"blocked_out": self.inputs.view(linear.input_shape(tokens), np.float32)}

    def _workspace(self, tokens: int) -> dict[str, np.ndarray]:
        """Activation buffers ``(rows, tokens)``, on huge pages (:mod:`sparsecore.deploy.hugepages`) and kept
        between calls: fresh multi-MB arrays every layer would cost page faults on every call. Sized for the most
        tokens seen so far; smaller calls use the front of them. Columns past a call's real tokens (see
        :func:`row_stride`) hold zeros or earlier activations: always finite, never read into a real token."""
        from sparsecore.deploy.hugepages import huge_page_arrays

        hidden = self.layers[0]["attn_out"].bias.size if self.layers else self.a.word.shape[1]
        inter = self.layers[0]["intermediate"].bias.size if self.layers else 0
        rows = {"x": hidden, "qkv": 3 * hidden, "ctx": hidden, "h": hidden, "inter": inter}
        if tokens > self._ws_tokens:
            # the FFN's inner buffer and Q, K, V also hold activations token-blocked: room for whole blocks
            sizes = {name: n * (padded(tokens, name) if name in ("inter", "qkv") else tokens)
                     for name, n in rows.items()}
            self._ws = huge_page_arrays({name: (size,) for name, size in sizes.items()})  # zero-filled
            self._ws_tokens = tokens
        return {"inter_flat": self._ws["inter"],
                **{name: self._ws[name][:n * tokens].reshape(n, tokens) for name, n in rows.items()}}

    def head(self, xt: np.ndarray, first: np.ndarray) -> np.ndarray:
        """Logits ``(batch, labels)``: the classifier head (hidden Linear, activation, output Linear) on each
        sequence's first token, column ``first[b]`` of ``xt`` (H, T)."""
        cls = np.ascontiguousarray(xt[:, first])  # (H, B)
        activation = self.a.family.head_activation
        if activation == "gelu":
            hidden = self.head_hidden(cls, gelu=True, scratch=self.scratch)
        else:
            hidden = _ACTIVATIONS[activation](self.head_hidden(cls, scratch=self.scratch))
        # every int8 Linear of a forward uses this executor's buffers (a quantized head included)
        return np.ascontiguousarray(self.head_out(hidden, scratch=self.scratch).T)


def _fed(feed: dict) -> np.ndarray:
    """The buffer a Linear reads from what :meth:`SparseEncoder._feed_for` had a LayerNorm write."""
    return feed["blocked"] if "blocked" in feed else feed["codes"][2]


def _call(make, *args, **kwargs):
    """``make(*args, **kwargs)`` made for this call only (a stage whose inputs are not the same arrays next time)."""
    return make(*args, **kwargs)


class _Stages:
    """Runs one stage of the forward pass; with a profile dict, adds its wall time (ms) under its name."""

    def __init__(self, profile: dict[str, float] | None) -> None:
        self.profile = profile

    def __call__(self, name: str, fn, *args, **kwargs):
        if self.profile is None:
            return fn(*args, **kwargs)
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        self.profile[name] = self.profile.get(name, 0.0) + (time.perf_counter() - start) * 1e3
        return out


class SparsecoreEngine:
    """Pipeline engine: ``{input_ids, attention_mask, token_type_ids}`` → logits, any batch and length (a siamese
    export's ``{input_ids, attention_mask, input_ids_b, attention_mask_b}``: both sides run as one batch).

    ``num_streams`` executors (:meth:`SparseEncoder.stream`) share one set of packed weights, each with its own
    buffers: up to that many calls from different threads run at once, each on ``num_cores // num_streams``
    threads (``num_cores``: Numba's thread count when None); more callers wait for a free executor. One stream
    (the default) runs one call at a time on every core.

    A model none of whose encoder Linears is sparse (every one below the format rule's sparsity, under
    ``formats="auto"``) is handed to ONNX Runtime (:class:`~sparsecore.deploy.engines.OnnxRuntimeEngine`):
    dense products are a GEMM library's job, and its int8 GEMM runs on the integer units where our dense path
    multiplies codes as floats. ``delegate`` is that engine (None when ours runs); ``describe()`` says so.

    One thread pool at a time: an idle OpenBLAS or OpenMP pool spins for a while after each call and takes
    its core from the other pool's next call. When any Linear runs sparse, BLAS (dense-format Linears, the
    classifier head) runs single-threaded while any forward runs and the Numba kernels use the stream's cores. An
    all-dense model run by our kernels (``formats="dense"``) does the opposite: BLAS keeps its threads for the
    big products and the Numba kernels (attention, LayerNorm) run on one thread. (Both pools at once
    oversubscribe the cores: each pool's next call waits for cores the other's spinning threads hold.)
    """

    def __init__(self, onnx_path: Path, batch_size: int, sequence_lengths: list[int], formats: str = "auto",
                 num_streams: int = 1, num_cores: int | None = None) -> None:
        from sparsecore.deploy.engines import check_streams

        check_streams(num_streams, num_cores)
        self.model = SparseEncoder(load_encoder_arrays(Path(onnx_path), Path(onnx_path).with_name("config.json")),
                                   formats)
        self.batch_size = batch_size
        self.num_streams = num_streams
        cores = numba.config.NUMBA_NUM_THREADS if num_cores is None else min(num_cores, numba.config.NUMBA_NUM_THREADS)
        self.threads = max(1, cores // num_streams)
        self._formats = self.model.formats()
        self.delegate = None
        if formats == "auto" and all(f.endswith("dense") for f in self._formats):
            from sparsecore.deploy.engines import OnnxRuntimeEngine

            self.delegate = OnnxRuntimeEngine(Path(onnx_path), batch_size, sequence_lengths, num_streams, num_cores)
            self.model = None  # ONNX Runtime holds the weights
        self.executors = [] if self.model is None else [self.model] + [self.model.stream()
                                                                        for _ in range(num_streams - 1)]
        self._free: queue.SimpleQueue = queue.SimpleQueue()
        for executor in self.executors:
            self._free.put(executor)
        # all dense: BLAS keeps its threads
        self._single_blas = any(not f.endswith("dense") for f in self._formats)
        # streams run Numba kernels from several threads at once: the workqueue layer cannot, so they take turns
        self._turns = threading.Lock() if num_streams > 1 and threading_layer() == "workqueue" else nullcontext()
        global _DESCRIBED
        if not _DESCRIBED:  # once per process: which kernels this host gets
            _DESCRIBED = True
            info = self.describe()
            _log.info("engine='sparsecore' on %s: integer path %s, float path %s, %d threads, Linears %s%s",
                      info["cpu"], info["integer_path"], info["float_path"], info["threads"], info["linear_formats"],
                      f", delegated to {info['delegated']}" if info["delegated"] else "")

    def describe(self) -> dict:
        """What runs on this host: CPU, the integer and fp32 kernels' ISA paths (:mod:`sparsecore.kernels.isa`, the one
        dispatch point), the Linears' formats, streams and threads per stream, the padding rule, and the engine the
        model is delegated to (None: ours)."""
        from sparsecore.kernels.isa import cpu_name, float_path, integer_path

        delegated = None if self.delegate is None else (
            "onnxruntime (no encoder Linear is sparse: dense products run on its GEMM)")
        return {"engine": "sparsecore", "cpu": cpu_name(), "integer_path": integer_path(), "float_path": float_path(),
                "linear_formats": self._formats, "streams": self.num_streams, "threads": self.threads,
                "blas_threads": "1 (sparse Linears use every core)" if self._single_blas else "all",
                "padding": "dropped: each batch runs its real tokens" if self.delegate is None else
                "trimmed to the batch's longest sequence", "delegated": delegated}

    def __call__(self, feeds: dict[str, np.ndarray], profile: dict[str, float] | None = None) -> np.ndarray:
        if self.delegate is not None:
            return _Stages(profile)("ONNX Runtime (delegated)", self.delegate, feeds)
        ids = feeds["input_ids"]
        token_types = feeds.get("token_type_ids")
        if token_types is None:
            token_types = np.zeros_like(ids)
        mask = feeds["attention_mask"]
        pair = self.model.a.pair_head
        if pair is not None:  # a siamese model: both texts of every pair as one batch, then the pair head
            width = max(ids.shape[1], feeds["input_ids_b"].shape[1])
            ids, mask = (np.concatenate([_widen(feeds[n], width), _widen(feeds[f"{n}_b"], width)])
                         for n in ("input_ids", "attention_mask"))
            token_types = np.zeros_like(ids)
        encoder = self._free.get()  # waits while every executor is busy
        threads = numba.get_num_threads()
        try:
            # thread-local to this caller: other threads' kernels keep their setting
            numba.set_num_threads(self.threads if self._single_blas else 1)
            with self._turns, (SINGLE_BLAS if self._single_blas else nullcontext()):
                out = encoder(ids, mask, token_types, profile)
        finally:
            numba.set_num_threads(threads)
            self._free.put(encoder)
        if pair is None:
            return out
        rows = feeds["input_ids"].shape[0]
        return _Stages(profile)("pair head", pair_logits, out[:rows], out[rows:], pair, self.model.a.pair_regression)


def _widen(a: np.ndarray, width: int) -> np.ndarray:
    """``a`` (batch, n) padded with zeros to ``width`` columns."""
    return a if a.shape[1] == width else np.pad(a, ((0, 0), (0, width - a.shape[1])))
