"""Fuzzing deployment folders: whatever a tampered folder holds, ``Pipeline.create`` and a first call end in success
or one ``SparsecoreError`` on every engine (``fuzz_support.outcome``) — never an exception from ONNX Runtime, the
kernels or the tokenizer library, a hang or a crash.

A folder starts from a real export of the tiny test model (float, or quantized to the integer form) and is damaged
in one or more ways: an initializer's shape (rows or columns cut or added, transposed, flattened, emptied), dtype
(float64/float16/int32/int8/uint8) or values (NaN, ±inf, 0, negative, huge); a node removed, renamed or rewired;
config.json fields set to odd values or removed, or its bytes damaged; tokenizer.json and
sparsecore_deployment.json damaged as JSON or as bytes.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from fuzz_support import SLOW, outcome
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import numpy_helper

from sparsecore import Pipeline

CONFIG_KEYS = ["hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size", "vocab_size",
               "max_position_embeddings", "type_vocab_size", "pad_token_id", "layer_norm_eps", "hidden_act",
               "model_type", "id2label", "problem_type", "embedding_size", "dim", "n_layers"]
ODD = [0, 1, -1, 2, 3, 7, 31, 33, 64, 100, 2 ** 31, 2 ** 63, 1.5, float("nan"), "32", "", None, True, [], {},
       [32], {"0": "a"}, "gelu_new", "roberta", "distilbert", "electra", "bert", "regression",
       "multi_label_classification", 1e-300, -1e9]
DTYPES = [np.float64, np.float16, np.int32, np.int8, np.uint8, np.int64]


def _reshape(a: np.ndarray, how: int, rng: random.Random) -> np.ndarray:
    if a.ndim == 0:
        return np.stack([a, a])
    if how == 0:
        return a[: rng.randint(0, max(0, a.shape[0] - 1))]
    if how == 1:
        return np.concatenate([a, np.zeros((rng.randint(1, 70),) + a.shape[1:], a.dtype)])
    if how == 2 and a.ndim == 2:
        return np.ascontiguousarray(a[:, : rng.randint(0, max(0, a.shape[1] - 1))])
    if how == 3 and a.ndim == 2:
        return np.ascontiguousarray(a.T)
    if how == 4:
        return a.reshape(-1)
    return a.reshape(a.shape + (1,))


def _values(a: np.ndarray, how: int, rng: random.Random) -> np.ndarray:
    if how == 0:
        return a.astype(rng.choice(DTYPES))
    out = a.copy()
    flat = out.reshape(-1)
    if flat.size == 0:
        return out
    pick = rng.randrange(flat.size)
    if out.dtype.kind == "f":
        flat[pick] = rng.choice([np.nan, np.inf, -np.inf, 0.0, -1.0, 1e38])
        if how == 2:
            flat[:] = rng.choice([0.0, -1.0, np.nan])
    else:
        info = np.iinfo(out.dtype)
        flat[pick] = rng.choice([info.min, info.max, 0, -1 if info.min < 0 else 1])
    return out


def damage_graph(path: Path, seed: int, kinds: list[str]) -> None:
    rng = random.Random(seed)
    model = onnx.load(str(path))
    inits = list(model.graph.initializer)
    for kind in kinds:
        if kind in ("shape", "values") and inits:
            tensor = rng.choice(inits)
            a = numpy_helper.to_array(tensor)
            a = _reshape(a, rng.randrange(6), rng) if kind == "shape" else _values(a, rng.randrange(3), rng)
            tensor.CopyFrom(numpy_helper.from_array(np.asarray(a), tensor.name))
        elif kind == "node" and len(model.graph.node):
            node = rng.choice(list(model.graph.node))
            how = rng.randrange(3)
            if how == 0:
                model.graph.node.remove(node)
            elif how == 1:
                node.name = node.name.replace("layer.", "layer.9") if "layer." in node.name else node.name + "_x"
            elif node.input:
                node.input[rng.randrange(len(node.input))] = rng.choice(
                    [i.name for i in inits] + [n.output[0] for n in model.graph.node if n.output] or ["missing"])
        elif kind == "drop" and inits:
            model.graph.initializer.remove(rng.choice(inits))
            inits = list(model.graph.initializer)
    onnx.save(model, str(path))


def damage_json(path: Path, seed: int, keys: list[str]) -> None:
    rng = random.Random(seed)
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        data = {}
    for key in keys:
        if rng.random() < 0.2 and key in data:
            del data[key]
        else:
            data[key] = rng.choice(ODD)
    path.write_text(json.dumps(data, allow_nan=True))


def damage_bytes(path: Path, seed: int) -> None:
    rng = random.Random(seed)
    raw = bytearray(path.read_bytes())
    how = rng.randrange(4)
    if how == 0:
        raw = raw[: rng.randrange(len(raw) + 1)]
    elif how == 1 and raw:
        for _ in range(rng.randint(1, 16)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
    elif how == 2:
        raw = b"\xff\xfe" + raw
    else:
        raw = b""
    path.write_bytes(bytes(raw))


def make_sources(root: Path, float_deployment: Path | None = None) -> dict[str, Path]:
    """A float deployment (``float_deployment``, else a 2-layer random BERT with MiniLM's tokenizer, 50% pruned, built
    under ``root``) and its integer-form quantized export."""
    from tiny_models import export_half_pruned, export_quantized, save_tiny_bert

    if float_deployment is None:
        float_deployment = export_half_pruned(save_tiny_bert(root / "tiny"), root / "pruned")
    return {"float": float_deployment, "int8": export_quantized(float_deployment.parent, root / "int8")}


@pytest.fixture(scope="module")
def sources(tiny_deployment, tmp_path_factory):
    """The tiny model's float deployment and an integer-form quantized one."""
    return make_sources(tmp_path_factory.mktemp("fuzz-deployments"), tiny_deployment)


DAMAGE = st.lists(st.sampled_from(["shape", "values", "node", "drop", "config", "config-bytes", "tokenizer",
                                   "tokenizer-bytes", "deployment-json", "onnx-bytes"]), min_size=1, max_size=3)


@settings(SLOW)
@given(source=st.sampled_from(["float", "int8"]), damage=DAMAGE, seed=st.integers(0, 2 ** 32 - 1),
       keys=st.lists(st.sampled_from(CONFIG_KEYS), min_size=1, max_size=3),
       engine=st.sampled_from(["onnxruntime", "sparsecore"]), length=st.sampled_from([None, 8, 32, 64]))
def test_damaged_deployment_folders(sources, source, damage, seed, keys, engine, length):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "deployment"
        shutil.copytree(sources[source], folder)
        graph = [d for d in damage if d in ("shape", "values", "node", "drop")]
        if graph:
            damage_graph(folder / "model.onnx", seed, graph)
        for i, what in enumerate(damage):
            if what == "config":
                damage_json(folder / "config.json", seed + i, keys)
            elif what == "config-bytes":
                damage_bytes(folder / "config.json", seed + i)
            elif what == "tokenizer":
                damage_json(folder / "tokenizer.json", seed + i, ["model", "truncation", "added_tokens", "version"])
            elif what == "tokenizer-bytes":
                damage_bytes(folder / "tokenizer.json", seed + i)
            elif what == "deployment-json":
                damage_json(folder / "sparsecore_deployment.json", seed + i,
                            ["sequence_length", "text_pairs", "onnx_file_name"])
            elif what == "onnx-bytes":
                damage_bytes(folder / "model.onnx", seed + i)

        def create_and_call():
            pipe = Pipeline.create(model_path=folder, engine=engine, sequence_length=length)
            return pipe(["a gripping, beautifully acted film", "awful"], top_k=2)

        result = outcome("deployment-folders", create_and_call)
        if not isinstance(result, Exception):
            assert len(result) == 2 and all(np.isfinite(r["score"]) for row in result for r in row)
