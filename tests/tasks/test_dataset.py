"""load_data: GLUE folders, custom files, label kinds, errors, the bundled sample."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from sparsecore.errors import SparsecoreError
from sparsecore.tasks import (
    GLUE_TASKS,
    default_glue_dir,
    get_task,
    load_data,
    sample_glue_dir,
)


def tsv(path: Path, header, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    return path


def jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def err(**kw) -> SparsecoreError:
    with pytest.raises(SparsecoreError) as e:
        load_data(**kw)
    return e.value


def data_rows(path: Path) -> int:
    """Records by the csv module, cross-checked against wc -l (no multi-line records in GLUE)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    assert all(len(r) == len(rows[0]) for r in rows)
    wc = int(subprocess.run(["wc", "-l", str(path)], capture_output=True, text=True).stdout.split()[0])
    assert len(rows) == wc
    return len(rows) - 1


# ---------------------------------------------------------------- task table


def test_task_table():
    assert sorted(GLUE_TASKS) == ["cola", "mnli", "mrpc", "qnli", "qqp", "rte", "sst2", "stsb", "wnli"]
    assert get_task("SST2").label_names == ("negative", "positive")
    assert get_task("wnli").label_names == ("not_entailment", "entailment")
    assert get_task("rte").label_names == ("entailment", "not_entailment")
    assert get_task("mnli").eval_splits == ("validation_matched", "validation_mismatched")
    assert get_task("qqp").text_columns == ("question1", "question2")
    assert get_task("stsb").problem_type == "regression" and get_task("stsb").label_names == ()
    assert get_task("cola").metric_names == ("matthews_correlation",)
    with pytest.raises(SparsecoreError) as e:
        get_task("mnli-mm")
    assert "cola" in e.value.fix and "wnli" in e.value.fix


# ---------------------------------------------------------------- real GLUE


def test_real_sst2(glue_dir):
    b = load_data("sst2", glue_dir)
    assert b.task_name == "sst2" and b.text_columns == ("sentence",)
    assert b.label_names == ["negative", "positive"]
    assert len(b.train) == data_rows(glue_dir / "sst2" / "train.tsv") == 67349
    v = b.evals["validation"]
    assert list(b.evals) == ["validation"] and len(v) == 872
    assert v.texts[0] == ("it 's a charming and often affecting journey . ",)
    assert v.labels.dtype == np.int64 and set(np.unique(v.labels)) == {0, 1}
    assert b.test is None


def test_real_mrpc_pairs_and_quotes(glue_dir):
    b = load_data("mrpc", glue_dir)
    assert len(b.train) == data_rows(glue_dir / "mrpc" / "train.tsv")
    assert len(b.evals["validation"]) == data_rows(glue_dir / "mrpc" / "validation.tsv") == 408
    s1, s2 = b.train.texts[0]
    assert s1 == 'Amrozi accused his brother, whom he called "the witness", of deliberately distorting his evidence.'
    assert s2.startswith('Referring to him as only "the witness"')
    assert b.evals["validation"].texts[0][1] == '"The foodservice pie business does not fit our long-term growth strategy.'
    assert b.train.labels[:2].tolist() == [1, 0]


def test_real_stsb_regression(glue_dir):
    b = load_data("stsb", glue_dir)
    assert b.problem_type == "regression" and b.label_names == []
    y = b.evals["validation"].labels
    assert y.dtype == np.float32 and y.shape == (1500,)
    assert y[:2].tolist() == [5.0, 4.75] and 0.0 <= y.min() and y.max() <= 5.0
    assert len(np.unique(b.train.labels)) > 50


def test_real_qnli_has_no_train(glue_dir):
    if (glue_dir / "qnli" / "train.tsv").exists():
        pytest.skip("this GLUE folder has qnli train")
    b = load_data("qnli", glue_dir)
    assert b.train is None and len(b.evals["validation"]) == 5463
    assert b.text_columns == ("question", "sentence")


def test_explicit_file_overrides_glue_folder(glue_dir, tmp_path):
    v = tsv(tmp_path / "v.tsv", ["sentence", "label"], [["good", "positive"], ["bad", 0]])
    b = load_data("sst2", glue_dir, validation_file=v)
    assert len(b.train) == 67349 and b.evals["validation"].labels.tolist() == [1, 0]


# ---------------------------------------------------------------- synthetic GLUE folders


def make_mnli(root: Path) -> Path:
    hdr = ["premise", "hypothesis", "label"]
    tsv(root / "mnli" / "train.tsv", hdr, [["p1", "h1", 0], ["p2", "h2", 1], ["p3", "h3", 2]])
    tsv(root / "mnli" / "validation_matched.tsv", hdr, [["m", "mh", 2]])
    tsv(root / "mnli" / "validation_mismatched.tsv", hdr, [["x", "xh", 1], ["y", "yh", 0]])
    return root


def test_mnli_two_eval_splits(tmp_path):
    b = load_data("mnli", make_mnli(tmp_path))
    assert list(b.evals) == ["validation_matched", "validation_mismatched"]
    assert b.evals["validation_matched"].texts == [("m", "mh")]
    assert b.evals["validation_mismatched"].labels.tolist() == [1, 0]
    assert b.label_names == ["entailment", "neutral", "contradiction"]
    assert b.text_columns == ("premise", "hypothesis")


def test_missing_eval_file_is_named(tmp_path):
    make_mnli(tmp_path)
    (tmp_path / "mnli" / "validation_mismatched.tsv").unlink()
    e = err(task_name="mnli", glue_dir=tmp_path)
    assert e.where.endswith("validation_mismatched.tsv")


def test_missing_glue_dir_and_task_folder(tmp_path):
    assert "GLUE folder not found" in err(task_name="sst2", glue_dir=tmp_path / "nope").what
    assert err(task_name="qqp", glue_dir=tmp_path).where.endswith(str(Path("qqp") / "validation.tsv"))


def test_glue_label_out_of_range(tmp_path):
    tsv(tmp_path / "rte" / "train.tsv", ["sentence1", "sentence2", "label"], [["a", "b", 1]])
    tsv(tmp_path / "rte" / "validation.tsv", ["sentence1", "sentence2", "label"], [["a", "b", 0], ["c", "d", 2]])
    e = err(task_name="rte", glue_dir=tmp_path)
    assert "'2'" in e.what and e.where.endswith("row 2") and "0..1" in e.fix


def test_glue_wrong_columns_lists_available(tmp_path):
    tsv(tmp_path / "cola" / "validation.tsv", ["text", "label"], [["a", 1]])
    e = err(task_name="cola", glue_dir=tmp_path)
    assert "'sentence'" in e.what and "text, label" in e.fix


def test_glue_test_file_with_minus_one_labels(tmp_path):
    tsv(tmp_path / "sst2" / "validation.tsv", ["sentence", "label"], [["a", 1]])
    t = tsv(tmp_path / "test.tsv", ["idx", "sentence", "label"], [[0, "x", -1], [1, "y", -1]])
    b = load_data("sst2", tmp_path, test_file=t)
    assert b.test.labels is None and b.test.texts == [("x",), ("y",)]


def test_task_with_files_only(tmp_path):
    tr = jsonl(tmp_path / "t.jsonl", [{"question1": "a", "question2": "b", "label": 1}])
    b = load_data("qqp", train_file=tr)
    assert b.train.texts == [("a", "b")] and b.evals == {}
    assert "no data" in err(task_name="qqp").what


# ---------------------------------------------------------------- custom data: label kinds


def test_custom_string_classes_sorted(tmp_path):
    tr = tsv(tmp_path / "tr.tsv", ["text", "label"], [["a", "pos"], ["b", "neg"], ["c", "neutral"], ["d", "pos"]])
    va = tsv(tmp_path / "va.tsv", ["text", "label"], [["e", "neutral"], ["f", "pos"]])
    b = load_data(train_file=tr, validation_file=va)
    assert b.task_name is None and b.problem_type == "single_label_classification"
    assert b.label_names == ["neg", "neutral", "pos"]
    assert b.train.labels.tolist() == [2, 0, 1, 2] and b.train.labels.dtype == np.int64
    assert b.evals["validation"].labels.tolist() == [1, 2]


def test_custom_int_classes_sorted_numerically(tmp_path):
    tr = tsv(tmp_path / "tr.tsv", ["sentence", "label"], [["a", 10], ["b", 2], ["c", -1], ["d", "2.0"]])
    b = load_data(train_file=tr)
    assert b.label_names == ["-1", "2", "10"]
    assert b.train.labels.tolist() == [2, 1, 0, 1]


def test_custom_regression(tmp_path):
    tr = jsonl(tmp_path / "tr.jsonl", [{"text": "a", "score": 1}, {"text": "b", "score": 2.5}])
    va = jsonl(tmp_path / "va.jsonl", [{"text": "c", "score": "3"}])
    b = load_data(train_file=tr, validation_file=va, label_column_name="score")
    assert b.problem_type == "regression" and b.label_names == []
    assert b.train.labels.dtype == np.float32 and b.train.labels.tolist() == [1.0, 2.5]
    assert b.evals["validation"].labels.tolist() == [3.0]


def test_custom_regression_bad_eval_value(tmp_path):
    tr = tsv(tmp_path / "tr.tsv", ["text", "label"], [["a", "0.5"], ["b", "1"]])
    va = tsv(tmp_path / "va.tsv", ["text", "label"], [["a", "0.5"], ["b", "high"]])
    e = err(train_file=tr, validation_file=va)
    assert "'high'" in e.what and e.where.endswith("row 2")


def test_custom_multilabel_json_and_tsv_cells(tmp_path):
    tr = jsonl(tmp_path / "tr.jsonl", [
        {"text": "a", "label": ["sports", "politics"]}, {"text": "b", "label": []}, {"text": "c", "label": ["art"]},
    ])
    va = tsv(tmp_path / "va.tsv", ["text", "label"], [["d", '["politics"]'], ["e", '["art", "sports"]']])
    b = load_data(train_file=tr, validation_file=va)
    assert b.problem_type == "multi_label_classification"
    assert b.label_names == ["art", "politics", "sports"]
    assert b.train.labels.dtype == np.float32
    assert b.train.labels.tolist() == [[0, 1, 1], [0, 0, 0], [1, 0, 0]]
    assert b.evals["validation"].labels.tolist() == [[0, 1, 0], [1, 0, 1]]


def test_multilabel_mixed_with_scalars_is_an_error(tmp_path):
    tr = jsonl(tmp_path / "tr.jsonl", [{"text": "a", "label": ["x"]}, {"text": "b", "label": "y"}])
    e = err(train_file=tr)
    assert "mixes" in e.what and e.where.endswith("row 2")


def test_unseen_validation_label(tmp_path):
    tr = tsv(tmp_path / "tr.tsv", ["text", "label"], [["a", "pos"], ["b", "neg"]])
    va = tsv(tmp_path / "va.tsv", ["text", "label"], [["c", "pos"], ["d", "meh"]])
    e = err(train_file=tr, validation_file=va)
    assert "not seen" in e.what and "'meh'" in e.what and "va.tsv" in e.where and "neg, pos" in e.fix


def test_unseen_multilabel_in_test(tmp_path):
    tr = jsonl(tmp_path / "tr.jsonl", [{"text": "a", "label": ["x"]}])
    te = jsonl(tmp_path / "te.jsonl", [{"text": "a", "label": ["z"]}])
    assert "'z'" in err(train_file=tr, test_file=te).what


def test_empty_label_in_train(tmp_path):
    tr = tsv(tmp_path / "tr.tsv", ["text", "label"], [["a", "1"], ["b", ""]])
    e = err(train_file=tr)
    assert "empty label" in e.what and e.where.endswith("row 2")


def test_test_without_label_column(tmp_path):
    tr = tsv(tmp_path / "tr.tsv", ["text", "label"], [["a", "x"], ["b", "y"]])
    te = tsv(tmp_path / "te.tsv", ["text"], [["c"]])
    b = load_data(train_file=tr, test_file=te)
    assert b.test.labels is None and b.test.texts == [("c",)]
    te2 = tsv(tmp_path / "te2.tsv", ["text", "label"], [["c", "y"]])
    assert load_data(train_file=tr, test_file=te2).test.labels.tolist() == [1]


# ---------------------------------------------------------------- custom data: columns


def test_column_inference(tmp_path):
    cases = [
        (["idx", "sentence2", "sentence1", "label"], ("sentence1", "sentence2")),
        (["idx", "title", "sentence", "label"], ("sentence",)),
        (["text", "source", "label"], ("text",)),
        (["id", "review", "label"], ("review",)),
        (["id", "head", "body", "note", "label"], ("head", "body")),
    ]
    for i, (hdr, expect) in enumerate(cases):
        row = [str(j) if h in ("idx", "id") else f"{h} words" for j, h in enumerate(hdr[:-1])]
        p = tsv(tmp_path / f"c{i}.tsv", hdr, [row + ["a"], row + ["b"]])
        b = load_data(train_file=p)
        assert b.text_columns == expect, hdr
        assert b.train.texts[0] == tuple(f"{c} words" for c in expect)


def test_no_text_column(tmp_path):
    p = tsv(tmp_path / "n.tsv", ["id", "label"], [["1", "a"]])
    e = err(train_file=p)
    assert "no text column" in e.what and "input_column_names" in e.fix


def test_explicit_columns(tmp_path):
    p = jsonl(tmp_path / "d.jsonl", [{"q": "a", "a": "b", "y": "t"}, {"q": "c", "a": "d", "y": "f"}])
    b = load_data(train_file=p, input_column_names=["a", "q"], label_column_name="y")
    assert b.text_columns == ("a", "q") and b.train.texts == [("b", "a"), ("d", "c")]
    assert b.label_names == ["f", "t"]
    e = err(train_file=p, input_column_names=["question"], label_column_name="y")
    assert "'question'" in e.what and "q, a, y" in e.fix
    assert "'label'" in err(train_file=p, input_column_names=["q"]).what
    assert "1 or 2" in err(train_file=p, input_column_names=["q", "a", "y"]).what
    assert "distinct" in err(train_file=p, input_column_names=["q", "y"], label_column_name="y").what


def test_train_validation_columns_must_match(tmp_path):
    tr = tsv(tmp_path / "tr.tsv", ["text", "label"], [["a", "x"]])
    va = tsv(tmp_path / "va.tsv", ["text", "idx", "label"], [["a", "0", "x"]])
    e = err(train_file=tr, validation_file=va)
    assert "extra idx" in e.what and "va.tsv" in e.where


def test_non_string_text_in_json(tmp_path):
    p = jsonl(tmp_path / "d.jsonl", [{"text": "a", "label": 0}, {"text": ["b"], "label": 1}])
    e = err(train_file=p)
    assert "holds a list" in e.what and e.where.endswith("row 2")


def test_glue_dir_without_task_and_no_data(tmp_path):
    assert "without a task" in err(glue_dir=tmp_path).what
    assert "no data" in err().what


# ---------------------------------------------------------------- bundled sample and env


def test_bundled_sample_loads():
    b = load_data("sst2", sample_glue_dir())
    assert len(b.train) == 2000 and len(b.evals["validation"]) == 872
    assert np.bincount(b.train.labels).tolist() == [1000, 1000]
    assert len(set(b.train.texts)) > 1990


def test_bundled_sample_is_reproducible(glue_dir):
    """Regenerate the sample from the full data (procedure in samples/README.md), byte for byte."""
    src = glue_dir / "sst2"
    with open(src / "train.tsv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_MINIMAL))
    labels = np.array([int(r[1]) for r in rows[1:]])
    rng = np.random.default_rng(0)
    chosen = np.sort(np.concatenate([rng.choice(np.flatnonzero(labels == c), 1000, replace=False) for c in (0, 1)]))
    out = io.StringIO()
    w = csv.writer(out, delimiter="\t", quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    w.writerow(rows[0])
    w.writerows(rows[1 + i] for i in chosen)
    sample = sample_glue_dir() / "sst2"
    assert (sample / "train.tsv").read_text(encoding="utf-8") == out.getvalue()
    assert (sample / "validation.tsv").read_bytes() == (src / "validation.tsv").read_bytes()


def test_default_glue_dir(tmp_path):
    assert default_glue_dir({}) is None
    assert default_glue_dir({"SPARSECORE_GLUE_DIR": ""}) is None
    assert default_glue_dir({"SPARSECORE_GLUE_DIR": str(tmp_path)}) == tmp_path
    with pytest.raises(SparsecoreError) as e:
        default_glue_dir({"SPARSECORE_GLUE_DIR": str(tmp_path / "missing")})
    assert "SPARSECORE_GLUE_DIR" in e.value.what
