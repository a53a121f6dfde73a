"""``sparsecore.Pipeline``: serve an exported text classifier on ONNX Runtime, DeepSparse or our own engine.

    from sparsecore import Pipeline
    pipe = Pipeline.create(task="text-classification", model_path="out/sst2-gmp80/deployment")
    pipe("a gripping, beautifully acted film")        # [{'label': 'positive', 'score': 0.98...}]
    pipe([["A man is eating.", "Someone eats."]])     # sentence pairs
    pipe(["great", "awful"], top_k=2)                 # every label, best first
    two = Pipeline.create(model_path=..., engine="sparsecore", num_streams=2)
    future = two.submit(["great"])                    # runs alongside another call; future.result()

Inputs longer than the sequence length are truncated (pairs: longest-first). With a list of
``sequence_length`` buckets each batch is padded to the smallest bucket that fits its longest
example (the largest bucket truncates). Long input lists are split into ``batch_size`` batches.
Scores: softmax for classification, sigmoid for multi-label, the raw value for regression.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from sparsecore.deploy.engines import make_engine
from sparsecore.deploy.graph_checks import check_inputs
from sparsecore.deploy.model_folder import Deployment, locate
from sparsecore.errors import SparsecoreError

TASKS = ("text-classification", "sentiment-analysis", "glue")


class Pipeline:
    """Factory namespace, as in DeepSparse: ``Pipeline.create(task=..., model_path=...)``."""

    @staticmethod
    def create(task: str = "text-classification", model_path: str | Path = "", engine: str = "onnxruntime",
               batch_size: int = 1, sequence_length: int | list[int] | None = None, num_streams: int = 1,
               num_cores: int | None = None) -> "TextClassificationPipeline":
        """A :class:`TextClassificationPipeline` for ``model_path`` (a deployment folder, a trained folder
        holding ``deployment/``, or a ``.onnx`` file).

        ``task``: one of :data:`TASKS` (all mean text classification). ``engine``: ``"onnxruntime"``,
        ``"deepsparse"`` or ``"sparsecore"``. ``batch_size``: examples per engine call. ``sequence_length``:
        an int or a list of bucket lengths, each in 1..max_position_embeddings (None: the length the
        deployment was exported for). ``num_streams``: how many calls (from different threads, or
        :meth:`TextClassificationPipeline.submit`) run at once, sharing one copy of the weights; ``num_cores``:
        the cores they share (None: all).
        """
        if task not in TASKS:
            raise SparsecoreError(f"unknown task {task!r}", "Pipeline.create", f"use one of: {', '.join(TASKS)}")
        if not isinstance(model_path, (str, Path)) or not str(model_path):
            raise SparsecoreError(f"model_path is {model_path!r}", "Pipeline.create",
                                  "pass a deployment folder (from export_onnx) or its model.onnx")
        return TextClassificationPipeline(locate(model_path), engine, batch_size, sequence_length, num_streams,
                                          num_cores)


class TextClassificationPipeline:
    """Tokenize, pad to a bucket, run the engine in ``batch_size`` batches, turn logits into labels and scores.

    Built by :meth:`Pipeline.create`; ``deployment`` comes from :func:`sparsecore.deploy.model_folder.locate`.
    The tokenizer truncates to the largest bucket.
    """

    def __init__(self, deployment: Deployment, engine: str, batch_size: int,
                 sequence_length: int | list[int] | None, num_streams: int = 1, num_cores: int | None = None) -> None:
        from tokenizers import Tokenizer

        if not isinstance(batch_size, int) or batch_size < 1:
            raise SparsecoreError(f"batch_size is {batch_size!r}", "Pipeline.create", "use an integer >= 1")
        self.deployment = deployment
        self.batch_size = batch_size
        length = deployment.default_sequence_length if sequence_length is None else sequence_length
        self.buckets = _buckets(length, deployment.max_positions)
        try:
            self.tokenizer = Tokenizer.from_file(str(deployment.folder / "tokenizer.json"))
        except Exception as exc:  # the Rust tokenizers library raises plain Exception on bad files
            raise SparsecoreError(f"tokenizer.json cannot be read ({str(exc).splitlines()[0][:120]})",
                                  str(deployment.folder),
                                  "re-export the model (export_onnx writes tokenizer.json)") from None
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=self.buckets[-1])
        check_inputs(deployment.facts, self.tokenizer.get_vocab_size(with_added_tokens=True),
                     self.buckets[-1] + deployment.facts.position_offset,
                     deployment.text_pairs and deployment.pair_encoding == "cross", deployment.onnx_path)
        self.engine = make_engine(engine, deployment.onnx_path, batch_size, self.buckets, num_streams, num_cores)
        self.num_streams = num_streams
        self._executor = None
        self._executor_lock = threading.Lock()

    def __repr__(self) -> str:
        engine = type(self.engine).__name__
        if hasattr(self.engine, "describe"):
            info = self.engine.describe()
            engine = f"sparsecore on {info['cpu']} (integer path {info['integer_path']}, {info['threads']} threads)"
            if info["delegated"]:
                engine = f"sparsecore delegating to {info['delegated'].split()[0]} on {info['cpu']}"
        return (f"TextClassificationPipeline(model={str(self.deployment.folder)!r}, engine={engine}, "
                f"batch_size={self.batch_size}, sequence_length={self.buckets}, num_streams={self.num_streams})")

    def __call__(self, inputs, top_k: int | None = None):
        """Labels and scores for ``inputs``: a text, a list of texts, or a list of ``[text_a, text_b]`` pairs.

        Each result is ``{"label": str, "score": float}``. ``top_k=None``: the best label per example, one
        dict each (a single text gives a one-element list); ``top_k=k``: the ``k`` best labels per example,
        best first (a single text gives that list, a list of inputs a list of such lists).
        """
        single = isinstance(inputs, str)
        k = 1 if top_k is None else top_k
        if not isinstance(k, int) or k < 1:
            raise SparsecoreError(f"top_k is {top_k!r}", "Pipeline call", "use an integer >= 1")
        logits = self.logits(inputs)
        results = [self._labels(row, k) for row in logits]
        if top_k is None:
            results = [r[0] for r in results]
        return [results[0]] if single and top_k is None else (results[0] if single else results)

    def submit(self, inputs, top_k: int | None = None) -> Future:
        """``self(inputs, top_k)`` in the background: a :class:`concurrent.futures.Future` of its result. Up to
        ``num_streams`` submitted calls run at once; the rest queue."""
        with self._executor_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=self.num_streams,
                                                    thread_name_prefix="sparsecore-stream")
        return self._executor.submit(self, inputs, top_k)

    def logits(self, inputs) -> np.ndarray:
        """Raw model outputs ``(n, labels)`` for a list of texts or pairs."""
        _, examples = _normalize(inputs)
        if not self.deployment.text_pairs and any(not isinstance(e, str) for e in examples):
            raise SparsecoreError("this model was trained on single sentences but got sentence pairs", "Pipeline call",
                                  'pass "text" items (a pair model, e.g. one trained on MRPC, takes pairs)')
        if self.deployment.text_pairs and any(isinstance(e, str) for e in examples):
            raise SparsecoreError("this model was trained on sentence pairs but got single texts", "Pipeline call",
                                  'pass [["text a", "text b"], ...]')
        logits = np.concatenate([self.engine(self._features(examples[i:i + self.batch_size]))
                                 for i in range(0, len(examples), self.batch_size)])
        if not np.isfinite(logits).all():
            row = int(np.flatnonzero(~np.isfinite(logits).all(axis=1))[0])
            raise SparsecoreError(f"the model's output for input {row} is not finite (NaN or infinity)",
                                  str(self.deployment.onnx_path), "re-export the model: its weights overflow")
        return logits

    def _features(self, batch: list) -> dict[str, np.ndarray]:
        if self.deployment.pair_encoding == "siamese":  # each text alone; both sides padded to one bucket
            sides = [self.tokenizer.encode_batch([pair[i] for pair in batch]) for i in (0, 1)]
            length = self._bucket(max(len(e.ids) for side in sides for e in side))
            feeds = {}
            for side, suffix in zip(sides, ("", "_b")):
                ids, mask, _ = _padded(side, length)
                feeds.update({f"input_ids{suffix}": ids, f"attention_mask{suffix}": mask})
            return feeds
        encodings = self.tokenizer.encode_batch(batch)
        ids, mask, types = _padded(encodings, self._bucket(max(len(e.ids) for e in encodings)))
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.deployment.family.onnx_inputs:  # BERT, ELECTRA (not RoBERTa, DistilBERT)
            feeds["token_type_ids"] = types
        return feeds

    def _bucket(self, longest: int) -> int:
        return next((b for b in self.buckets if b >= longest), self.buckets[-1])

    def _labels(self, row: np.ndarray, k: int) -> list[dict]:
        kind = self.deployment.problem_type
        if kind == "regression":
            return [{"label": self.deployment.id2label.get(0, "LABEL_0"), "score": float(row.reshape(-1)[0])}]
        if kind == "multi_label_classification":
            scores = 1.0 / (1.0 + np.exp(-row))
        else:
            shifted = np.exp(row - row.max())
            scores = shifted / shifted.sum()
        order = np.argsort(-scores, kind="stable")[:k]
        return [{"label": self.deployment.id2label.get(int(i), f"LABEL_{int(i)}"), "score": float(scores[i])}
                for i in order]


def _padded(encodings, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Token ids, attention mask and token types of ``encodings``, padded with zeros to ``length``."""
    ids = np.zeros((len(encodings), length), dtype=np.int64)
    mask, types = np.zeros_like(ids), np.zeros_like(ids)
    for row, enc in enumerate(encodings):
        n = len(enc.ids)
        ids[row, :n], mask[row, :n], types[row, :n] = enc.ids, enc.attention_mask, enc.type_ids
    return ids, mask, types


def _buckets(value, max_positions: int) -> list[int]:
    lengths = [value] if isinstance(value, int) else list(value)
    if not lengths or any(not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= max_positions
                          for n in lengths):
        raise SparsecoreError(f"sequence_length {value!r} is not within 1..{max_positions}", "Pipeline.create",
                              f"use an int or a list of ints in 1..{max_positions} (the model's position limit)")
    return sorted(set(lengths))


def _normalize(inputs) -> tuple[bool, list]:
    """str | [str, ...] | [[a, b], ...] → (was it a single example?, list of str or (a, b) tuples)."""
    if isinstance(inputs, str):
        return True, [inputs]
    if not isinstance(inputs, (list, tuple)) or len(inputs) == 0:
        raise SparsecoreError(f"inputs must be a string or a non-empty list, got {type(inputs).__name__}"
                              + (" (empty)" if isinstance(inputs, (list, tuple)) else ""), "Pipeline call",
                              'pass "text", ["text", ...] or [["text a", "text b"], ...]')
    examples = []
    for i, item in enumerate(inputs):
        if isinstance(item, str):
            examples.append(item)
        elif isinstance(item, (list, tuple)) and len(item) == 2 and all(isinstance(t, str) for t in item):
            examples.append((item[0], item[1]))
        else:
            raise SparsecoreError(f"input {i} is {type(item).__name__} {item!r:.40}, not a string or a pair of "
                                  "strings", "Pipeline call", 'pass "text" or ["text a", "text b"] items')
    return False, examples
