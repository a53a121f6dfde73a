"""The Python API (train / oneshot / export) is the CLI's twin: same arguments, same results, result objects."""

import json
from dataclasses import fields

import pytest
import torch

from sparsecore.adapters.arguments import DataTrainingArguments, ExportArguments, ModelArguments
from sparsecore.errors import SparsecoreError
from sparsecore.workflows import ExportResult, TrainResult, export, oneshot, train

PRUNE = ("modifiers:\n  - !GMPruningModifier\n    params: ['re:.*encoder.layer.*.(query|key|value|dense).weight']\n"
         "    final_sparsity: 0.7\n    end_epoch: 1\n")
GRADUAL = PRUNE.replace("end_epoch: 1", "start_epoch: 0\n    end_epoch: 0.5\n    update_frequency: 0.25") + (
    "  - !EpochRangeModifier\n    end_epoch: 1\n")
FAST = dict(task_name="sst2", max_train_samples=32, max_eval_samples=32, max_seq_length=32, disable_tqdm=True,
            per_device_eval_batch_size=32)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A random-init 2-layer BERT with MiniLM's tokenizer: the workflows in seconds."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from sparsecore.adapters.models import minilm_path

    folder = tmp_path_factory.mktemp("tiny") / "bert"
    torch.manual_seed(0)
    config = BertConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=64, num_labels=2)
    BertForSequenceClassification(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(str(minilm_path())).save_pretrained(folder)
    return folder


def test_oneshot_equals_the_cli_and_returns_what_it_wrote(tiny_bert, tmp_path, capsys):
    from sparsecore.cli.text_classification import main

    result = oneshot(model_name_or_path=tiny_bert, recipe=PRUNE, output_dir=tmp_path / "api", **FAST)
    argv = ["--model_name_or_path", tiny_bert, "--recipe", PRUNE, "--one_shot", "--output_dir", tmp_path / "cli"]
    argv += [x for k, v in FAST.items() for x in (f"--{k}", str(v).lower() if isinstance(v, bool) else v)]
    main([str(a) for a in argv])
    out = capsys.readouterr().out
    printed = json.loads(out[out.index("{\n"):])  # the CLI's JSON (the Trainer logs a dict line before it)
    assert isinstance(result, TrainResult) and result.output_dir == tmp_path / "api"
    assert result.metrics["eval_accuracy"] == printed["eval_accuracy"]
    assert result.metrics["encoder_sparsity"] == printed["encoder_sparsity"] == pytest.approx(0.7, abs=1e-3)
    assert result.sparsity == json.loads((tmp_path / "cli" / "sparsity_report.json").read_text())
    assert "--one_shot applies the recipe without training: --do_train ignored" in result.notes
    for name in ("model", "recipe", "sparsity_report", "eval_results", "training_info"):
        assert result.files[name].exists(), name
    assert json.loads(result.files["eval_results"].read_text())["eval_accuracy"] == printed["eval_accuracy"]


def test_train_then_export_then_pipeline(tiny_bert, tmp_path):
    from sparsecore import Pipeline

    result = train(model_name_or_path=tiny_bert, recipe=GRADUAL, output_dir=tmp_path / "m", do_train=True,
                   do_eval=True, per_device_train_batch_size=16, save_strategy="no", **FAST)
    assert result.metrics["epoch"] == 1.0 and result.metrics["encoder_sparsity"] == pytest.approx(0.7, abs=1e-3)
    exported = export(model_path=result.output_dir, sequence_length=32, num_export_samples=1)
    assert isinstance(exported, ExportResult) and not exported.quantized
    assert exported.onnx_path == tmp_path / "m" / "deployment" / "model.onnx" and exported.onnx_path.is_file()
    assert exported.report["passed"] and exported.report["sparsity_preserved"]
    assert exported.report == json.loads((exported.deployment / "validation.json").read_text()) | {
        "deployment": str(exported.deployment)}
    pipe = Pipeline.create(model_path=exported.deployment)
    assert pipe.deployment.default_sequence_length == 32
    assert pipe(["a fine film", "dull"])[0]["label"] in ("negative", "positive")


@pytest.mark.parametrize("call, kwargs, message", [
    (train, {"modle_name_or_path": "minilm"}, "unknown argument 'modle_name_or_path' (train())"),
    (train, {"max_seq_length": "64"}, "max_seq_length='64' is not int (train())"),
    (train, {"pad_to_max_length": 0}, "pad_to_max_length=0 is not bool"),
    (train, {"num_train_epochs": 7, "recipe": "dense-finetune"}, "--num_train_epochs 7 conflicts with the recipe"),
    (train, {"learning_rate": "fast"}, "learning_rate"),
    (oneshot, {"one_shot": False}, "oneshot() with one_shot=False"),
    (oneshot, {}, "--one_shot needs a recipe to apply"),
    (export, {}, "export() needs model_path="),
    (export, {"model_path": ".", "quantized_format": "int4"}, "quantized_format='int4'"),
    (export, {"model_path": ".", "opset": 14.0}, "opset=14.0 is not int"),
])
def test_bad_arguments_are_one_line_errors_and_write_nothing(tmp_path, call, kwargs, message):
    out = tmp_path / "out"
    with pytest.raises(SparsecoreError) as err:
        call(**({"output_dir": out} if call is not export else {}), **kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not out.exists()


def test_every_cli_flag_is_a_keyword():
    from transformers import TrainingArguments

    from sparsecore.cli.args import OneLineParser

    for groups, accepted in (((ModelArguments, DataTrainingArguments, TrainingArguments), None),
                             ((ExportArguments,), None)):
        parser = OneLineParser(groups)
        dests = {a.dest for a in parser._actions if a.dest != "help"}
        names = {f.name for g in groups for f in fields(g) if f.init}
        assert dests <= names, sorted(dests - names)  # each flag is a field, so a keyword of train()/export()


def test_docs_python_api_example_runs_and_is_in_docs(tmp_path, monkeypatch, capsys):
    import runpy
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    path = root / "examples" / "python_api.py"
    monkeypatch.chdir(tmp_path)  # the example writes out/… relative to the working folder
    runpy.run_path(str(path), run_name="__main__")
    lines = capsys.readouterr().out.strip().splitlines()
    accuracy, sparsity, report = lines[-3].split()
    assert 0.5 < float(accuracy) <= 1.0 and abs(float(sparsity) - 0.8) < 1e-3 and report.endswith(".png")
    assert float(lines[-2].split()[0]) <= 1e-4 and lines[-2].split()[1].endswith("deployment/model.onnx")
    assert "'label': 'positive'" in lines[-1]
    assert (tmp_path / "out" / "api-oneshot" / "sparsecore_training.json").is_file()
    assert path.read_text().split('"""', 2)[2].strip() in (root / "docs" / "python-api.md").read_text()
