"""The trained- and deployment-folder records: round trip, versions, bad files, and every reader uses them."""

import json

import pytest

from sparsecore.errors import SparsecoreError
from sparsecore.folders import FORMAT_VERSION, DeploymentInfo, TrainingInfo

INFO = TrainingInfo(task_name="sst2", problem_type="single_label_classification", label_names=("negative", "positive"),
                    text_columns=("sentence",), max_seq_length=64, recipe="builtin:dense-finetune",
                    model_name_or_path="minilm")


def test_round_trip_and_version_field(tmp_path):
    path = INFO.write(tmp_path)
    assert json.loads(path.read_text())["format_version"] == FORMAT_VERSION
    assert TrainingInfo.read(tmp_path) == INFO and not INFO.text_pairs
    assert DeploymentInfo.read(tmp_path) is None  # no file: None, the caller decides
    DeploymentInfo(sequence_length=32, text_pairs=True).write(tmp_path)
    assert DeploymentInfo.read(tmp_path) == DeploymentInfo("text-classification", 32, "model.onnx", True)
    assert not list(tmp_path.glob(".*tmp"))  # written through a temporary file, none left


def test_a_file_without_version_is_version_1_and_may_lack_defaults(tmp_path):
    (tmp_path / TrainingInfo.FILE).write_text(json.dumps({  # what sparsecore wrote before format_version existed
        "task_name": None, "problem_type": "regression", "label_names": [], "text_columns": ["a", "b"],
        "max_seq_length": 128}))
    info = TrainingInfo.read(tmp_path)
    assert info.recipe is None and info.text_pairs and info.label_names == ()


@pytest.mark.parametrize("doc, message", [
    ({"format_version": FORMAT_VERSION + 1}, "format_version 2, written by a newer sparsecore"),
    ({"format_version": "1"}, "format_version '1'"),
    ({"sequence_length": "128"}, "sequence_length in sparsecore_deployment.json is '128', not int"),
    ({"text_pairs": 1}, "text_pairs in sparsecore_deployment.json is 1, not bool"),
    ([1, 2], "is not a JSON object"),
])
def test_bad_or_newer_files_are_one_clear_error(tmp_path, doc, message):
    (tmp_path / DeploymentInfo.FILE).write_text(json.dumps(doc))
    with pytest.raises(SparsecoreError) as err:
        DeploymentInfo.read(tmp_path)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_truncated_and_missing_fields(tmp_path):
    (tmp_path / TrainingInfo.FILE).write_text('{"task_name": "sst2", "problem_')
    with pytest.raises(SparsecoreError, match="not valid JSON .*re-run sparsecore.transformers.text_classification"):
        TrainingInfo.read(tmp_path)
    (tmp_path / TrainingInfo.FILE).write_text(json.dumps({"task_name": "sst2"}))
    with pytest.raises(SparsecoreError, match="lacks 'problem_type'"):
        TrainingInfo.read(tmp_path)


def test_pipeline_refuses_a_deployment_from_a_newer_version(pruned_minilm, tmp_path):
    import shutil

    from sparsecore import Pipeline

    dep = tmp_path / "deployment"
    shutil.copytree(pruned_minilm / "deployment", dep)
    doc = json.loads((dep / DeploymentInfo.FILE).read_text())
    assert doc["format_version"] == FORMAT_VERSION and doc["sequence_length"] == 128
    (dep / DeploymentInfo.FILE).write_text(json.dumps({**doc, "format_version": 99}))
    with pytest.raises(SparsecoreError, match="format_version 99, written by a newer sparsecore .* upgrade"):
        Pipeline.create(model_path=dep)
