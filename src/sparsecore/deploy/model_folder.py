"""Find and check what a deployment needs: model.onnx, config.json, tokenizer.json."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from sparsecore import onnx_proto
from sparsecore.deploy.graph_checks import GraphFacts, check_graph
from sparsecore.errors import SparsecoreError
from sparsecore.families import Family, family_of
from sparsecore.folders import DEPLOYMENT, DeploymentInfo

REQUIRED_INPUTS = ("input_ids", "attention_mask")
SIAMESE_INPUTS = ("input_ids", "attention_mask", "input_ids_b", "attention_mask_b")  # each text of a pair alone


@dataclass(frozen=True)
class Deployment:
    """A checked deployment folder: where its files are and how to feed and read its graph.

    ``id2label``/``problem_type`` come from ``config.json``; ``max_positions`` is the longest sequence its
    position table holds (RoBERTa-style positions start past the padding id); ``default_sequence_length`` and
    ``text_pairs`` from ``sparsecore_deployment.json`` (defaults when absent); ``input_names`` are the ONNX graph's
    inputs; ``facts`` the embedding table sizes and position offset :func:`sparsecore.deploy.graph_checks.check_inputs`
    checks; ``pair_encoding`` "siamese": the graph takes each text of a pair alone (:data:`SIAMESE_INPUTS`).
    """

    folder: Path
    onnx_path: Path
    id2label: dict[int, str]
    problem_type: str
    max_positions: int
    default_sequence_length: int
    input_names: tuple[str, ...]
    text_pairs: bool
    family: Family
    facts: GraphFacts = GraphFacts(None, None, None)
    pair_encoding: str = "cross"


def locate(model_path: str | Path) -> Deployment:
    """``model_path``: a deployment folder, a trained folder holding ``deployment/``, or a ``.onnx`` file.

    The graph is checked against ``config.json`` (:func:`sparsecore.deploy.graph_checks.check_graph`) before any
    engine reads it."""
    path = Path(model_path).expanduser()
    if path.is_file() and path.suffix == ".onnx":
        folder, onnx_path = path.parent, path
        meta = DeploymentInfo.read(folder) or DeploymentInfo()
    elif path.is_dir():
        folder = path / DEPLOYMENT if (path / DEPLOYMENT).is_dir() else path
        meta = DeploymentInfo.read(folder) or DeploymentInfo()  # a bare ONNX folder: the defaults
        onnx_path = folder / meta.onnx_file_name
    else:
        raise SparsecoreError("model path does not exist", str(model_path),
                              "pass a deployment folder (from export_onnx) or its model.onnx")
    if not onnx_path.is_file():
        raise SparsecoreError("no model.onnx in the folder", str(folder),
                              "run python -m sparsecore.transformers.export_onnx --model_path <trained folder>")
    for name in ("tokenizer.json", "config.json"):
        if not (folder / name).is_file():
            raise SparsecoreError(f"deployment folder has no {name}", str(folder),
                                  "re-export with sparsecore.transformers.export_onnx (it writes tokenizer and config)")
    config = _json(folder / "config.json")
    family = family_of(config.get("model_type"), str(folder / "config.json"))
    id2label = _labels(config, folder / "config.json")
    model = onnx_proto.read(onnx_path)
    try:
        inputs = _check_classifier(model, onnx_path, len(id2label) or None)
        if meta.pair_encoding not in ("cross", "siamese") or (meta.pair_encoding == "siamese" and not meta.text_pairs):
            raise SparsecoreError(f"sparsecore_deployment.json has pair_encoding {meta.pair_encoding!r} with text_pairs "
                                  f"{meta.text_pairs}", str(folder), "re-export the model with export_onnx")
        if "input_ids_b" in inputs and not (folder / DeploymentInfo.FILE).is_file():  # a bare siamese graph
            meta = replace(meta, pair_encoding="siamese", text_pairs=True)
        expected = SIAMESE_INPUTS if meta.pair_encoding == "siamese" else family.onnx_inputs
        if set(inputs) != set(expected):
            kind = "siamese pair classifier" if meta.pair_encoding == "siamese" else f"{family.name} model"
            raise SparsecoreError(f"the graph takes {', '.join(inputs)} but a {kind} takes {', '.join(expected)} "
                                  f"(config.json's model_type is {config.get('model_type')!r})", str(onnx_path),
                                  "re-export the model: its config.json and model.onnx come from different models")
        facts = check_graph(model, config, family, len(id2label) or None, onnx_path)
    except SparsecoreError:
        raise
    except Exception as exc:  # a damaged file can parse into names that are not text, odd dims, ...
        raise SparsecoreError(f"the ONNX file is damaged ({type(exc).__name__}: {str(exc)[:120]})", str(onnx_path),
                              "re-export the model with sparsecore.transformers.export_onnx") from None
    positions = facts.position_rows or int(config.get("max_position_embeddings") or 512)
    return Deployment(folder, onnx_path, id2label, config.get("problem_type") or "single_label_classification",
                      max(1, positions - facts.position_offset), meta.sequence_length, inputs, meta.text_pairs, family,
                      facts, meta.pair_encoding)


def random_feeds(deployment: Deployment, batch: int, seq: int, seed: int = 0) -> dict:
    """Engine inputs of shape (batch, seq): random token ids from the model's vocabulary (``config.json``'s
    ``vocab_size``), every token real, token types 0 — the fixed-shape workload benchmarks time."""
    import numpy as np

    vocab = int(_json(deployment.folder / "config.json").get("vocab_size", 30522))
    ids = np.random.default_rng(seed).integers(min(1000, vocab // 2), vocab, (batch, seq)).astype(np.int64)
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    feeds.update({"input_ids_b": ids[::-1].copy(), "attention_mask_b": np.ones_like(ids)})  # a siamese graph's
    return {name: feeds[name] for name in deployment.input_names}


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SparsecoreError(f"invalid JSON: {getattr(exc, 'msg', type(exc).__name__)}", str(path),
                              "re-export the model") from None
    if not isinstance(data, dict):
        raise SparsecoreError(f"{path.name} is not a JSON object", str(path), "re-export the model")
    return data


PROBLEM_TYPES = ("single_label_classification", "multi_label_classification", "regression")


def _labels(config: dict, path: Path) -> dict[int, str]:
    """``id2label`` as ``{0: name, …}`` (keys 0..n-1), after checking it and ``problem_type``."""
    raw = config.get("id2label") or {}
    fix = "re-export the model (config.json's id2label maps \"0\", \"1\", … to label names)"
    if not isinstance(raw, dict):
        raise SparsecoreError(f"config.json's id2label is {type(raw).__name__}, not a mapping", str(path), fix)
    try:
        labels = {int(k): v for k, v in raw.items()}
    except (TypeError, ValueError):
        raise SparsecoreError(f"config.json's id2label has keys that are not label numbers: {list(raw)[:4]}",
                              str(path), fix) from None
    if sorted(labels) != list(range(len(labels))) or not all(isinstance(v, str) for v in labels.values()):
        raise SparsecoreError("config.json's id2label must map 0..n-1 to label names", str(path), fix)
    kind = config.get("problem_type")
    if kind is not None and kind not in PROBLEM_TYPES:
        raise SparsecoreError(f"config.json's problem_type {kind!r} is not one of {', '.join(PROBLEM_TYPES)}",
                              str(path), "re-export the model")
    return labels


def _check_classifier(model, onnx_path: Path, num_labels: int | None) -> tuple[str, ...]:
    inputs = tuple(i.name for i in model.graph.input)
    outputs = model.graph.output
    missing = [n for n in REQUIRED_INPUTS if n not in inputs]
    dims = outputs[0].type.tensor_type.shape.dim if outputs else []
    last = dims[-1].dim_value if dims else 0
    if num_labels and not missing and len(outputs) == 1 and len(dims) == 2 and last and last != num_labels:
        raise SparsecoreError(f"the graph outputs {last} scores per example but config.json's id2label names "
                              f"{num_labels} labels", str(onnx_path), "re-export the model (its config.json and "
                              "model.onnx come from different models)")
    if missing or len(outputs) != 1 or len(dims) != 2:
        raise SparsecoreError("ONNX model is not a text classifier (inputs input_ids/attention_mask, one "
                              f"(batch, labels) output; found inputs {list(inputs)}, {len(outputs)} output(s))",
                              str(onnx_path), "export the classifier with sparsecore.transformers.export_onnx")
    return inputs
