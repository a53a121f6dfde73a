"""Inference engines behind the Pipeline: ONNX Runtime, DeepSparse and our own (``sparse_engine``).

An engine takes ``{input_name: int64 array (batch, seq)}`` and returns logits ``(batch, labels)``. Every engine
may be called from several threads at once; ``num_streams`` is how many such calls run in parallel (the rest
wait) and ``num_cores`` how many cores they share (None: all).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np

from sparsecore.errors import SparsecoreError

ENGINES = ("onnxruntime", "deepsparse", "sparsecore")


def available_cores() -> list[int]:
    """The CPUs this process may run on (its affinity mask where the OS has one), in order."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def bind_to_cores(num_cores: int | None) -> None:
    """Bind the process to the first ``num_cores`` of :func:`available_cores` (nothing when None, when that is all of
    them, or where the OS cannot bind)."""
    cores = available_cores()
    if num_cores is not None and num_cores < len(cores) and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cores[:num_cores])


def check_streams(num_streams, num_cores) -> None:
    """``SparsecoreError`` unless ``num_streams`` ≥ 1 and ``num_cores`` (when given) is within the process's cores."""
    available = len(available_cores())
    if not isinstance(num_streams, int) or isinstance(num_streams, bool) or num_streams < 1:
        raise SparsecoreError(f"num_streams is {num_streams!r}", "Pipeline.create", "use an integer >= 1")
    if num_cores is not None and (not isinstance(num_cores, int) or isinstance(num_cores, bool)
                                  or not 1 <= num_cores <= available):
        raise SparsecoreError(f"num_cores is {num_cores!r}", "Pipeline.create",
                              f"use an integer from 1 to {available} (the cores this process may use), or None")


class OnnxRuntimeEngine:
    """ONNX Runtime on the CPU (:func:`sparsecore.deploy.ort_session.ort_session`): dynamic shapes, so any
    batch and sequence length runs (``batch_size`` is kept for the Pipeline's batching only).

    Columns that are padding in every row of a batch (right padding past its longest sequence) are cut off
    before the call: their keys get zero attention weight and they feed no real token, so the logits are those
    of the padded batch, for the real tokens' cost. Graphs whose quantization scales are computed from the
    tensor (``DynamicQuantizeLinear``: padding would change them) run as given."""

    def __init__(self, onnx_path: Path, batch_size: int, sequence_lengths: list[int], num_streams: int = 1,
                 num_cores: int | None = None) -> None:
        from sparsecore.deploy.ort_session import op_types, ort_session

        check_streams(num_streams, num_cores)
        # one session: its run() is thread-safe; concurrent calls share the cores
        cores = num_cores or len(available_cores())
        threads = None if num_cores is None and num_streams == 1 else max(1, cores // num_streams)
        ops = op_types(onnx_path)  # read once: the session's options and the padding rule both need them
        self.onnx_path = onnx_path
        try:
            self.session = ort_session(onnx_path, threads=threads, ops=ops)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... for a graph it cannot load
            raise runtime_refused("ONNX Runtime cannot load the graph", exc, onnx_path) from None
        self._slots = threading.Semaphore(num_streams)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.batch_size = batch_size
        self.trims = "attention_mask" in self.input_names and "DynamicQuantizeLinear" not in ops

    def __call__(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        feeds = {n: feeds[n] for n in self.input_names}
        if self.trims:
            feeds = trim_padding(feeds)
        with self._slots:
            try:
                return self.session.run(None, feeds)[0]
            except Exception as exc:  # a graph that loads but cannot run these shapes (e.g. edited by hand)
                raise runtime_refused("ONNX Runtime failed to run the graph", exc, self.onnx_path) from None


def runtime_refused(what: str, exc: BaseException, onnx_path: Path) -> SparsecoreError:
    """One line for a runtime's own error about a graph: its first line, shortened."""
    detail = " ".join(str(exc).split())[:300] or type(exc).__name__
    return SparsecoreError(f"{what}: {detail}", str(onnx_path),
                           "re-export the model with sparsecore.transformers.export_onnx (the file was changed or "
                           "comes from another tool)")


def trim_padding(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``feeds`` without the trailing columns whose ``attention_mask`` is 0 in every row (at least one column kept);
    a siamese graph's second text (``…_b`` inputs, ``attention_mask_b``) is trimmed on its own."""
    out = feeds
    for side in ("", "_b"):
        mask = feeds.get(f"attention_mask{side}")
        if mask is None:
            continue
        used = np.flatnonzero(mask.any(axis=0))
        length = max(1, int(used[-1]) + 1 if used.size else 1)
        if length < mask.shape[1]:
            out = {**out, **{n: a[:, :length] for n, a in feeds.items() if n.endswith("_b") == (side == "_b")}}
    return out


class DeepSparseEngine:
    """DeepSparse compiles static shapes: one engine per sequence bucket, batches padded to ``batch_size``.

    DeepSparse rewrites the input shapes of the ONNX file it is given *in place*; each engine gets a
    private copy so the deployment's dynamic-shape model.onnx is never modified.
    """

    def __init__(self, onnx_path: Path, batch_size: int, sequence_lengths: list[int], num_streams: int = 1,
                 num_cores: int | None = None) -> None:
        check_streams(num_streams, num_cores)
        try:
            from deepsparse import Engine
        except ImportError:
            raise SparsecoreError("engine='deepsparse' needs the deepsparse package, which is not importable here",
                                  "Pipeline.create", "run inside the DeepSparse environment "
                                  "(python -m sparsecore.cli.deepsparse_env builds .venv-deepsparse) or use "
                                  "engine='onnxruntime'") from None
        from sparsecore import onnx_proto

        self.input_names = [i.name for i in onnx_proto.read(onnx_path).graph.input]
        self.batch_size = batch_size
        self._scratch = tempfile.TemporaryDirectory(prefix="sparsecore-deepsparse-")
        self.engines = {}
        for length in sequence_lengths:
            private = Path(self._scratch.name) / f"model-{length}.onnx"
            shutil.copyfile(onnx_path, private)
            self.engines[length] = Engine(model=str(private), batch_size=batch_size, num_cores=num_cores,
                                          num_streams=num_streams,
                                          scheduler="multi_stream" if num_streams > 1 else "single_stream",
                                          input_shapes=[[batch_size, length]] * len(self.input_names))

    def __call__(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        arrays = [feeds[n] for n in self.input_names]
        n, length = arrays[0].shape
        if n < self.batch_size:  # static batch: pad with copies of row 0, drop their outputs
            arrays = [np.concatenate([a, np.repeat(a[:1], self.batch_size - n, axis=0)]) for a in arrays]
        return self.engines[length].run(arrays)[0][:n]


def make_engine(name: str, onnx_path: Path, batch_size: int, sequence_lengths: list[int], num_streams: int = 1,
                num_cores: int | None = None):
    """The engine named ``name`` (one of :data:`ENGINES`) for ``onnx_path``; ``SparsecoreError`` for any other name.

    ``sequence_lengths`` are the padded lengths the Pipeline will feed (DeepSparse compiles one engine per
    length); ``batch_size`` is the largest batch per call; ``num_streams``/``num_cores``: see the module.
    """
    if name == "onnxruntime":
        return OnnxRuntimeEngine(onnx_path, batch_size, sequence_lengths, num_streams, num_cores)
    if name == "deepsparse":
        return DeepSparseEngine(onnx_path, batch_size, sequence_lengths, num_streams, num_cores)
    if name == "sparsecore":
        from sparsecore.deploy.sparse_engine import SparsecoreEngine

        return SparsecoreEngine(onnx_path, batch_size, sequence_lengths, num_streams=num_streams,
                                num_cores=num_cores)
    raise SparsecoreError(f"unknown engine {name!r}", "Pipeline.create", f"use one of: {', '.join(ENGINES)}")
