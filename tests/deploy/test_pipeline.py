"""sparsecore.Pipeline on ONNX Runtime against PyTorch, input forms, and bad input."""

import json
import shutil

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from sparsecore import Pipeline
from sparsecore.errors import SparsecoreError
from sparsecore.tasks import load_data, sample_glue_dir


@pytest.fixture(scope="module")
def sst2_rows():
    split = load_data("sst2", sample_glue_dir()).evals["validation"]
    return [t[0] for t in split.texts], split.labels


def test_onnxruntime_matches_pytorch_on_real_sst2(pruned_minilm, sst2_rows, torch_logits):
    texts, _ = sst2_rows
    pipe = Pipeline.create(task="text-classification", model_path=pruned_minilm / "deployment", batch_size=32)
    ours = pipe.logits(texts[:300])
    ref = torch_logits(pruned_minilm, texts[:300])
    np.testing.assert_allclose(ours, ref, atol=1e-4)
    assert (ours.argmax(1) == ref.argmax(1)).all()


def test_call_forms_labels_and_scores(pruned_minilm):
    pipe = Pipeline.create(task="sentiment-analysis", model_path=pruned_minilm, batch_size=2)
    one = pipe("a gripping, beautifully acted film")
    assert isinstance(one, list) and len(one) == 1 and set(one[0]) == {"label", "score"}
    assert one[0]["label"] in ("negative", "positive") and 0.5 <= one[0]["score"] <= 1.0
    many = pipe(["great", "awful", "fine", "dull", "moving"])  # 5 items, batch 2: automatic batching
    assert len(many) == 5 and all(isinstance(r, dict) for r in many)
    both = pipe(["great", "awful"], top_k=2)
    for ranked in both:
        assert [r["score"] for r in ranked] == sorted((r["score"] for r in ranked), reverse=True)
        assert sum(r["score"] for r in ranked) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(SparsecoreError, match="trained on single sentences but got sentence pairs"):
        pipe([["A man is eating.", "Someone eats."], ("It rains.", "It is dry.")])  # SST-2 is single-sentence
    via_onnx_file = Pipeline.create(model_path=pruned_minilm / "deployment" / "model.onnx")
    assert via_onnx_file("great")[0]["label"] == pipe("great")[0]["label"]


def test_truncation_and_buckets_agree(pruned_minilm, sst2_rows, torch_logits):
    texts, _ = sst2_rows
    long_text = " ".join(texts[:40])  # far beyond 128 tokens: truncated, not an error
    fixed = Pipeline.create(model_path=pruned_minilm, sequence_length=128)
    buckets = Pipeline.create(model_path=pruned_minilm, sequence_length=[32, 64, 128])
    assert fixed(long_text)[0]["label"] == buckets(long_text)[0]["label"]
    np.testing.assert_allclose(fixed.logits(texts[:20]), buckets.logits(texts[:20]), atol=1e-4)
    short = Pipeline.create(model_path=pruned_minilm, sequence_length=8)
    np.testing.assert_allclose(short.logits([long_text]), torch_logits(pruned_minilm, [long_text], 8), atol=1e-4)


def test_onnxruntime_drops_the_padding_every_row_of_a_batch_shares(pruned_minilm, sst2_rows, monkeypatch):
    from sparsecore.deploy.engines import trim_padding

    texts, _ = sst2_rows
    pipe = Pipeline.create(model_path=pruned_minilm, batch_size=8)  # one bucket: 128
    feeds = pipe._features(texts[:8])
    longest = int(feeds["attention_mask"].sum(axis=1).max())
    assert feeds["input_ids"].shape[1] == 128 > longest
    padded = pipe.engine.session.run(None, feeds)[0]
    shapes, run = [], pipe.engine.session.run
    monkeypatch.setattr(pipe.engine.session, "run", lambda out, f: shapes.append(f["input_ids"].shape) or run(out, f))
    np.testing.assert_allclose(pipe.engine(feeds), padded, atol=1e-5)
    assert shapes == [(8, longest)]
    mask = np.array([[0, 1, 1, 0], [0, 1, 0, 0]])  # left padding stays; the shared tail goes
    assert trim_padding({"attention_mask": mask, "x": mask + 5})["x"].tolist() == [[5, 6, 6], [5, 6, 5]]
    assert trim_padding({"attention_mask": np.zeros((2, 4), int)})["attention_mask"].shape == (2, 1)
    full = {"attention_mask": np.ones((1, 3), int)}
    assert trim_padding(full) is full
    pair = trim_padding({"attention_mask": np.array([[1, 1, 0, 0]]), "input_ids": np.array([[1, 2, 0, 0]]),
                         "attention_mask_b": np.array([[1, 1, 1, 0]]), "input_ids_b": np.array([[3, 4, 5, 0]])})
    assert pair["input_ids"].tolist() == [[1, 2]] and pair["input_ids_b"].tolist() == [[3, 4, 5]]  # each side alone


def _tiny_onnx(path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]), str(path))


def test_bad_inputs_are_clear_errors(pruned_minilm, tmp_path):
    dep = pruned_minilm / "deployment"
    pipe = Pipeline.create(model_path=dep)
    cases = [
        (lambda: pipe(42), "must be a string or a non-empty list"),
        (lambda: pipe([]), r"non-empty list.*\(empty\)"),
        (lambda: pipe(["fine", 3]), "input 1 is int"),
        (lambda: pipe("ok", top_k=0), "top_k is 0"),
        (lambda: Pipeline.create(model_path=dep, sequence_length=0), r"sequence_length 0 is not within 1\.\.512"),
        (lambda: Pipeline.create(model_path=dep, sequence_length=1000), r"not within 1\.\.512"),
        (lambda: Pipeline.create(model_path=dep, batch_size=0), "batch_size is 0"),
        (lambda: Pipeline.create(task="summarization", model_path=dep), "unknown task 'summarization'"),
        (lambda: Pipeline.create(model_path=tmp_path / "missing"), "model path does not exist"),
        (lambda: Pipeline.create(model_path=dep, engine="tensorrt"), "unknown engine 'tensorrt'"),
        (lambda: Pipeline.create(model_path=dep, engine="deepsparse"), "needs the deepsparse package"),
    ]
    no_tok = tmp_path / "no-tokenizer"
    shutil.copytree(dep, no_tok)
    (no_tok / "tokenizer.json").unlink()
    cases.append((lambda: Pipeline.create(model_path=no_tok), "has no tokenizer.json"))
    not_clf = tmp_path / "not-a-classifier"
    shutil.copytree(dep, not_clf)
    _tiny_onnx(not_clf / "model.onnx")
    cases.append((lambda: Pipeline.create(model_path=not_clf), "not a text classifier"))
    garbage = tmp_path / "garbage"
    shutil.copytree(dep, garbage)
    (garbage / "model.onnx").write_bytes(b"not onnx at all")
    cases.append((lambda: Pipeline.create(model_path=garbage), "not a readable ONNX file"))
    for call, pattern in cases:
        with pytest.raises(SparsecoreError, match=pattern) as info:
            call()
            pytest.fail(f"no error for the case expecting {pattern!r}")
        assert "\n" not in str(info.value)


def test_regression_and_multilabel_scores(pruned_minilm, tmp_path):
    """Score rules follow config.problem_type: raw value (regression), sigmoid (multi-label)."""
    multi = tmp_path / "multi"
    shutil.copytree(pruned_minilm / "deployment", multi)
    config = json.loads((multi / "config.json").read_text())
    config["problem_type"] = "multi_label_classification"
    (multi / "config.json").write_text(json.dumps(config))
    logits = Pipeline.create(model_path=multi).logits(["great"])[0]
    scores = Pipeline.create(model_path=multi)("great", top_k=2)
    assert sorted(s["score"] for s in scores) == pytest.approx(sorted(1 / (1 + np.exp(-logits))), abs=1e-6)
