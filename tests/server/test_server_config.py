"""Server settings: DeepSparse configs accepted, anything else one clear error; request bodies checked."""

import pytest

from sparsecore.errors import SparsecoreError
from sparsecore.server.app import BadRequest, parse_sequences
from sparsecore.server.config import from_file

DEEPSPARSE_CONFIG = """\
num_cores: 2
num_workers: 2
engine_thread_pinning: core
pytorch_num_threads: 1
endpoints:
  - task: text_classification
    model: {model}
    name: sst2-pruned
    route: /pruned/predict
    batch_size: 4
    bucketing:
      sequence_lengths: [32, 64, 128]
    kwargs:
      engine_type: onnxruntime
  - task: sentiment_analysis
    model: {model}
    batch_size: 1
"""


def test_a_deepsparse_server_config_is_read_as_deepsparse_read_it(tmp_path):
    path = tmp_path / "server.yaml"
    path.write_text(DEEPSPARSE_CONFIG.format(model="/models/sst2"))
    config = from_file(path)
    first, second = config.endpoints
    assert (config.num_cores, config.num_workers) == (2, 2)
    assert (first.name, first.path, first.engine) == ("sst2-pruned", "/pruned/predict", "onnxruntime")
    assert first.batch_size == 4
    assert first.sequence_lengths == [32, 64, 128]
    assert (second.name, second.path, second.engine) == ("endpoint-1", "/endpoint-1", "sparsecore")
    assert config.notes == ["pytorch_num_threads has no effect: the sparsecore runtime does not use torch"]


@pytest.mark.parametrize("text, pattern", [
    ("endpoints: []\n", "endpoints is missing or empty"),
    ("num_cores: 2\nendpoints: [{task: text_classification, model: m}]\nloggers: {}\n",
     "not supported by sparsecore.server key(s) loggers"),
    ("endpoints: [{task: text_classification, model: m, colour: blue}]\n", "unknown key(s) colour"),
    ("endpoints: [{task: image_classification, model: m}]\n", "task 'image_classification' is not served here"),
    ("endpoints: [{task: text_classification, model: m, batch_size: 0}]\n", "batch_size is 0"),
    ("endpoints: [{task: text_classification, model: m, kwargs: {engine_type: tensorrt}}]\n", "engine 'tensorrt'"),
    ("endpoints: [{task: text_classification, model: m, kwargs: {num_threads: 3}}]\n", "num_threads not supported"),
    ("endpoints: [{task: text_classification, model: m, bucketing: {image_sizes: [[1, 2]]}}]\n",
     "bucketing must hold sequence_lengths only"),
    ("endpoints: [{task: text_classification, model: a, route: /p},\n"
     "            {task: text_classification, model: b, route: p/}]\n",
     "both serve /v2/models/p"),
    ("endpoints: [{task: text_classification, model: m}]\nport: 70000\n", "port is 70000"),
    ("endpoints: [\n", "not valid YAML"),
])
def test_bad_configs_are_one_error_naming_the_problem(tmp_path, text, pattern):
    path = tmp_path / "server.yaml"
    path.write_text(text)
    with pytest.raises(SparsecoreError, match=pattern.replace("(", r"\(").replace(")", r"\)")):
        from_file(path)


@pytest.mark.parametrize("body, pairs, want", [
    (b'{"sequences": "one"}', False, ["one"]),
    (b'{"sequences": ["a", "b"]}', False, ["a", "b"]),
    (b'{"sequences": ["a", "b"]}', True, [["a", "b"]]),  # one pair
    (b'{"sequences": [["a", "b"], ["c", "d"]]}', True, [["a", "b"], ["c", "d"]]),
])
def test_request_bodies(body, pairs, want):
    assert parse_sequences(body, pairs) == want


@pytest.mark.parametrize("body, pairs, status", [
    (b"[", False, 400), (b'"x"', False, 422), (b'{"sequences": null}', False, 422),
    (b'{"sequences": [1]}', False, 422), (b'{"sequences": ["a"]}', True, 422),
    (b'{"sequences": [["a", "b"]]}', False, 422), (b'{"sequences": [["a", "b", "c"]]}', True, 422),
])
def test_bad_request_bodies(body, pairs, status):
    with pytest.raises(BadRequest) as exc:
        parse_sequences(body, pairs)
    assert exc.value.status == status
