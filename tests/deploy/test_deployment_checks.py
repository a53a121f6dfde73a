"""A deployment folder is untrusted input: every tensor an engine reads is checked against config.json, the family
and the tokenizer at Pipeline.create, on every engine, with one SparsecoreError naming the file, tensor and shapes."""

import json
import shutil

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from sparsecore import Pipeline
from sparsecore.cli.predict import main as predict_main
from sparsecore.errors import SparsecoreError

ENGINES = ("onnxruntime", "sparsecore", "deepsparse")  # the check runs before any engine is built


@pytest.fixture(scope="module")
def int8_deployment(tiny_deployment, tmp_path_factory):
    """The tiny pruned model quantized one-shot and exported in integer form (MatMulInteger, int8 tables)."""
    from tiny_models import export_quantized

    return export_quantized(tiny_deployment.parent, tmp_path_factory.mktemp("int8") / "m")


def _matmul_weight(model, node_suffix):
    return next(n.input[1] for n in model.graph.node if n.name.endswith(node_suffix))


def _edit(model, pick, change):
    """Replace the initializer ``pick(model)`` names by ``change(its array)``."""
    name = pick(model)
    tensor = next(i for i in model.graph.initializer if i.name == name)
    tensor.CopyFrom(numpy_helper.from_array(change(numpy_helper.to_array(tensor)), name))


def _by_name(part):
    return lambda model: next(i.name for i in model.graph.initializer if i.name.endswith(part))


def _tampered(source, tmp_path, graph=None, config=None):
    folder = tmp_path / "tampered"
    shutil.copytree(source, folder)
    if graph:
        model = onnx.load(str(folder / "model.onnx"))
        _edit(model, *graph)
        onnx.save(model, str(folder / "model.onnx"))
    if config:
        values = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**values, **config}))
    return folder


FLOAT_CASES = {
    "word table cut to 100 rows": (
        (_by_name("word_embeddings.weight"), lambda a: a[:100]), None,
        r"word embedding table \(model\.bert\.embeddings\.word_embeddings\.weight\) has shape \(100, 32\), "
        r"config\.json implies \(30522, 32\)"),
    "word table and config cut to 100": (
        (_by_name("word_embeddings.weight"), lambda a: a[:100]), {"vocab_size": 100},
        "the word-embedding table has 100 rows but tokenizer.json has 30,522 tokens"),
    "FFN output with 60,000 extra input rows": (
        (lambda m: _matmul_weight(m, "layer.1/output/dense/MatMul"),
         lambda a: np.concatenate([a, np.zeros((60000, a.shape[1]), a.dtype)])), None,
        r"layer 1 output\.dense weight \(onnx::MatMul_\d+\) has shape \(60064, 32\), config\.json implies \(64, 32\)"),
    "intermediate weight transposed": (
        (lambda m: _matmul_weight(m, "layer.0/intermediate/dense/MatMul"), lambda a: np.ascontiguousarray(a.T)), None,
        r"layer 0 intermediate\.dense weight .* has shape \(64, 32\), config\.json implies \(32, 64\)"),
    "LayerNorm of the wrong width": (
        (_by_name("embeddings.LayerNorm.weight"), lambda a: a[:16]), None,
        r"embeddings\.LayerNorm weight .* has shape \(16,\), config\.json implies \(32,\)"),
    "classifier with 3 rows": (
        (_by_name("classifier.weight"), lambda a: np.concatenate([a, a[:1]])), None,
        r"classifier weight \(model\.classifier\.weight\) has shape \(3, 32\), config\.json implies \(2, 32\)"),
    "hidden_size edited": (None, {"hidden_size": 64}, r"layer 0 attention\.self\.query weight .* implies \(64, 64\)"),
    "a layer more in config.json": (None, {"num_hidden_layers": 3},
                                    "block 2 of num_hidden_layers = 3 has no attention.self.query, "),
    "a layer less in config.json": (None, {"num_hidden_layers": 1},
                                    "the graph has a block 1 Linear .* but config.json has num_hidden_layers = 1"),
    "heads not dividing hidden": (None, {"num_attention_heads": 3},
                                  "config.json's hidden size 32 is not a multiple of its 3 attention heads"),
    "intermediate_size not a number": (None, {"intermediate_size": "64"},
                                       "config.json has intermediate_size = '64', not a positive integer"),
    "labels edited": (None, {"id2label": {"0": "a", "1": "b", "2": "c"}},
                      "the graph outputs 2 scores per example but config.json's id2label names 3 labels"),
}


@pytest.mark.parametrize("case", FLOAT_CASES)
def test_tampered_float_deployments_are_one_line_on_every_engine(case, tiny_deployment, tmp_path):
    graph, config, message = FLOAT_CASES[case]
    folder = _tampered(tiny_deployment, tmp_path, graph, config)
    for engine in ENGINES:
        with pytest.raises(SparsecoreError, match=message) as info:
            Pipeline.create(model_path=folder, engine=engine, sequence_length=32)
        assert "\n" not in str(info.value) and str(folder) in str(info.value)


INT8_CASES = {
    "activation scale 0": ((_by_name("layer.0/attention/self/query/Constant_output_0"), lambda a: np.float32(0)),
                           r"QuantizeLinear scale \(.*query/Constant_output_0\) must be finite and positive, found"),
    "rescale NaN": ((_by_name("layer.0/intermediate/dense/MatMul_int_scale"), lambda a: a * np.nan),
                    r"layer 0 intermediate\.dense rescale .* must be finite and positive, found \[nan\]"),
    "negative rescale": ((_by_name("layer.1/output/dense/MatMul_int_scale"), lambda a: -a),
                         "layer 1 output.dense rescale .* must be finite and positive"),
    "zero point widened to int32": (
        (_by_name("layer.0/attention/self/query/Constant_1_output_0"), lambda a: a.astype(np.int32)),
        r"QuantizeLinear zero point .* must be int8 or uint8 with 1 value\(s\), found int32"),
    "int8 word table cut": ((_by_name("word_embeddings/Constant_output_0"), lambda a: a[:100]),
                            r"word embedding table .* has shape \(100, 32\)"),
    "int8 FFN codes widened": (
        (lambda m: _matmul_weight(m, "layer.0/output/dense/MatMul_integer"),
         lambda a: np.concatenate([a, np.zeros((8, a.shape[1]), a.dtype)])),
        r"layer 0 output\.dense weight .* has shape \(72, 32\), config\.json implies \(64, 32\)"),
}


@pytest.mark.parametrize("case", INT8_CASES)
def test_tampered_integer_deployments(case, int8_deployment, tmp_path):
    graph, message = INT8_CASES[case]
    folder = _tampered(int8_deployment, tmp_path, graph)
    for engine in ENGINES:
        with pytest.raises(SparsecoreError, match=message):
            Pipeline.create(model_path=folder, engine=engine, sequence_length=32)


def test_untampered_deployments_still_run(tiny_deployment, int8_deployment):
    for folder in (tiny_deployment, int8_deployment):
        for engine in ("onnxruntime", "sparsecore"):
            pipe = Pipeline.create(model_path=folder, engine=engine, sequence_length=32)
            assert pipe.deployment.facts.word_rows == 30522 and len(pipe(["fine", "bad"])) == 2


def test_position_table_bounds_the_sequence_length(tiny_deployment, tmp_path):
    folder = _tampered(tiny_deployment, tmp_path, (_by_name("position_embeddings.weight"), lambda a: a[:16]),
                       {"max_position_embeddings": 16})
    assert Pipeline.create(model_path=folder, sequence_length=16)(["fine"])[0]["label"]
    with pytest.raises(SparsecoreError, match=r"sequence_length 32 is not within 1\.\.16"):
        Pipeline.create(model_path=folder, sequence_length=32)


def test_a_config_of_another_family_is_refused(tiny_deployment, tmp_path):
    folder = _tampered(tiny_deployment, tmp_path, config={"model_type": "distilbert"})
    with pytest.raises(SparsecoreError, match="the graph takes input_ids, attention_mask, token_type_ids but a "
                                              "distilbert model takes input_ids, attention_mask"):
        Pipeline.create(model_path=folder)


def test_cli_on_a_tampered_folder_is_exit_2_with_one_line(tiny_deployment, tmp_path, capsys):
    folder = _tampered(tiny_deployment, tmp_path, (_by_name("word_embeddings.weight"), lambda a: a[:100]))
    src = tmp_path / "in.txt"
    src.write_text("a fine film\n")
    with pytest.raises(SystemExit) as exit_info:
        predict_main(["--model_path", str(folder), "--input", str(src), "--output", str(tmp_path / "out.jsonl")])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1 and "word embedding table" in err[0]
    assert not (tmp_path / "out.jsonl").exists()
