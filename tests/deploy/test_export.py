"""export_onnx on a real pruned MiniLM: files, validation, sparsity, atomicity, bad input."""

import json
import re

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from safetensors.torch import load_file

from sparsecore.cli.export_onnx import main as export_main


def test_deployment_folder_is_complete(pruned_minilm):
    dep = pruned_minilm / "deployment"
    for name in ("model.onnx", "config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
                 "special_tokens_map.json", "recipe.yaml", "validation.json", "sparsecore_deployment.json"):
        assert (dep / name).is_file(), name
    assert json.loads((dep / "config.json").read_text())["id2label"] == {"0": "negative", "1": "positive"}
    vocab = (dep / "vocab.txt").read_text().splitlines()
    assert len(vocab) == 30522 and vocab[101] == "[CLS]" and vocab[0] == "[PAD]"
    report = json.loads((dep / "validation.json").read_text())
    assert report["passed"] and report["max_abs_diff"] <= 1e-4 and report["checker"] == "passed"
    assert {c["sequence_length"] for c in report["cases"]} >= {16, 128}
    assert json.loads((dep / "sparsecore_deployment.json").read_text())["sequence_length"] == 128
    inputs = np.load(dep / "sample-inputs" / "inp-0000.npz")
    outputs = np.load(dep / "sample-outputs" / "out-0000.npz")
    assert inputs["input_ids"].shape == (1, 128) and outputs["logits"].shape == (1, 2)


def test_graph_is_dynamic_and_readable_by_onnx_1_14(pruned_minilm):
    model = onnx.load(str(pruned_minilm / "deployment" / "model.onnx"))
    assert model.ir_version <= 9 and model.opset_import[0].version == 14
    for graph_input in model.graph.input:
        dims = [d.dim_param for d in graph_input.type.tensor_type.shape.dim]
        assert dims == ["batch", "sequence"], graph_input.name


def test_pruned_zeros_survive_export_layer_by_layer(pruned_minilm):
    weights = load_file(pruned_minilm / "model.safetensors")
    model = onnx.load(str(pruned_minilm / "deployment" / "model.onnx"))
    inits = [numpy_helper.to_array(i) for i in model.graph.initializer if len(i.dims) == 2]
    pruned = {k: w.numpy() for k, w in weights.items() if "encoder.layer" in k and k.endswith("dense.weight")
              or re.search(r"attention\.self\.(query|key|value)\.weight$", k)}
    assert len(pruned) == 36
    for name, w in pruned.items():
        matches = [a for a in inits if a.shape == w.T.shape and np.array_equal(a, w.T)
                   or a.shape == w.shape and np.array_equal(a, w)]
        assert matches, name
        torch_sparsity = float((w == 0).mean())
        assert abs(torch_sparsity - 0.8) < 1e-3
        assert float((matches[0] == 0).mean()) == torch_sparsity


def test_failed_export_leaves_nothing(pruned_minilm, tmp_path, monkeypatch, capsys):
    import shutil

    import sparsecore.export

    model = tmp_path / "m"
    shutil.copytree(pruned_minilm, model, ignore=shutil.ignore_patterns("deployment"))

    def broken(*args, **kwargs):
        raise sparsecore.errors.SparsecoreError("ONNX Runtime logits differ from PyTorch by 1 > 0.0001", "x", "bug")

    monkeypatch.setattr(sparsecore.export, "validate_onnx", broken)
    with pytest.raises(SystemExit) as info:
        export_main(["--model_path", str(model)])
    assert info.value.code == 2
    assert "error: ONNX Runtime logits differ" in capsys.readouterr().err
    assert sorted(p.name for p in model.iterdir() if "deployment" in p.name) == []


@pytest.mark.parametrize("argv, pattern", [
    (["--model_path", "{tmp}/nowhere"], "not a model folder"),
    (["--model_path", "{model}", "--task", "translation"], "unknown task 'translation'"),
    (["--model_path", "{model}", "--sequence_length", "0"], "--sequence_length 0 is outside 1..512"),
    (["--model_path", "{model}", "--sequence_length", "600"], "--sequence_length 600 is outside 1..512"),
    (["--model_path", "{model}", "--opset", "9"], "--opset 9 is outside 11-17"),
    (["--model_path", "{model}", "--onnx_file_name", "model.bin"], "not a file name ending in .onnx"),
    (["--model_path", "{model}", "--num_export_samples", "-1"], "--num_export_samples is -1"),
    (["--model_path", "{model}", "--num_validation_rows", "8"], "--num_validation_rows is 8"),
    (["--model_path", "{model}", "--num_validation_rows", "1000"], "--num_validation_rows is 1000"),
    (["--modle_path", "x"], "unrecognized arguments|required"),
])
def test_export_bad_input(argv, pattern, pruned_minilm, tmp_path, capsys):
    argv = [a.format(tmp=tmp_path, model=pruned_minilm) for a in argv]
    with pytest.raises(SystemExit) as info:
        export_main(argv)
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert info.value.code == 2 and len(err) == 1 and re.search(pattern, err[0]), err


def test_reexport_replaces_the_folder_whole(pruned_minilm, tmp_path):
    import shutil

    model = tmp_path / "m"
    shutil.copytree(pruned_minilm, model)
    (model / "deployment" / "stale.txt").write_text("from an older export")
    export_main(["--model_path", str(model)])
    assert not (model / "deployment" / "stale.txt").exists() and (model / "deployment" / "model.onnx").is_file()
    assert [p.name for p in model.iterdir() if p.name.startswith(".deployment")] == []
    assert oct((model / "deployment").stat().st_mode & 0o777) != oct(0o700)
