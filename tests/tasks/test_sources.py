"""Sources through `datasets`: parquet, Arrow, save_to_disk folders, --dataset_name, the table cache, JSON types."""

from __future__ import annotations

import json
import os

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sparsecore.errors import SparsecoreError
from sparsecore.tasks import load_data
from sparsecore.tasks import tables as tables_mod
from sparsecore.tasks.tables import open_table

ROWS = {"sentence": ["a fine film", "dull , dull", "x \"quoted\"\tand tab", "multi\nline"],
        "label": ["1", "0", "1", "0"]}


def tsv_file(path, cols=ROWS):
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(cols)
        w.writerows(zip(*cols.values()))
    return path


def err(**kw) -> SparsecoreError:
    with pytest.raises(SparsecoreError) as e:
        load_data(**kw)
    return e.value


def expected(tmp_path):
    b = load_data(train_file=tsv_file(tmp_path / "ref.tsv"), cache_dir=tmp_path / "c")
    return b.train.texts, b.train.labels.tolist(), b.label_names


def test_parquet_arrow_stream_arrow_file_and_saved_folder_load_like_the_tsv(tmp_path):
    texts, labels, names = expected(tmp_path)
    table = pa.table({"sentence": ROWS["sentence"], "label": [int(v) for v in ROWS["label"]]})
    pq.write_table(table, tmp_path / "d.parquet")
    with pa.OSFile(str(tmp_path / "s.arrow"), "wb") as f, pa.ipc.new_stream(f, table.schema) as w:
        w.write_table(table)
    with pa.OSFile(str(tmp_path / "f.arrow"), "wb") as f, pa.ipc.new_file(f, table.schema) as w:
        w.write_table(table)
    datasets.Dataset(table).save_to_disk(str(tmp_path / "saved"))
    for source in ("d.parquet", "s.arrow", "f.arrow", "saved"):
        b = load_data(train_file=tmp_path / source, cache_dir=tmp_path / "c")
        assert b.train.texts == texts and b.train.labels.tolist() == labels and b.label_names == names, source


def test_text_files_become_a_memory_mapped_cached_table(tmp_path, monkeypatch):
    src = tsv_file(tmp_path / "d.tsv")
    writes = []
    real = tables_mod._write_arrow
    monkeypatch.setattr(tables_mod, "_write_arrow", lambda p, t: (writes.append(p), real(p, t)))
    first = open_table(src, tmp_path / "c")
    assert isinstance(first.ds.data, datasets.table.MemoryMappedTable) and first.ds.cache_files
    again = open_table(src, tmp_path / "c")
    assert len(writes) == 1 and again.key == first.key  # unchanged file: read from the cache
    open_table(src, tmp_path / "c", overwrite=True)
    assert len(writes) == 2
    tsv_file(src, {"sentence": ["changed"], "label": ["1"]})
    os.utime(src, ns=(1, 1))  # a different mtime even on a coarse clock
    edited = open_table(src, tmp_path / "c")
    assert len(writes) == 3 and edited.key != first.key and edited.ds["sentence"][:] == ["changed"]
    assert not list((tmp_path / "c" / "tables").glob("*.tmp"))


def test_conversion_streams_in_batches(tmp_path, monkeypatch):
    monkeypatch.setattr(tables_mod, "BATCH_ROWS", 3)
    src = tsv_file(tmp_path / "d.tsv", {"sentence": [f"s{i}" for i in range(10)], "label": ["0", "1"] * 5})
    t = open_table(src, tmp_path / "c")
    assert t.ds["sentence"][:] == [f"s{i}" for i in range(10)]
    assert t.ds.data.table.to_batches()[0].num_rows == 3
    b = load_data(train_file=src, cache_dir=tmp_path / "c")  # labels over 4 chunks, each with its own values
    assert b.train.labels.tolist() == [0, 1] * 5 and b.label_names == ["0", "1"]
    late = tsv_file(tmp_path / "late.tsv", {"sentence": [f"s{i}" for i in range(7)],
                                            "label": ["a", "a", "a", "a", "a", "a", "b"]})
    assert load_data(train_file=late, cache_dir=tmp_path / "c").train.labels.tolist() == [0] * 6 + [1]


def test_json_columns_keep_types_or_become_json_strings(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in [
        {"text": "a", "n": 1, "x": 1.5, "flag": True, "tags": ["a", "b"], "mixed": 1},
        {"text": "b", "n": None, "x": 2, "flag": False, "tags": [], "mixed": "one"}]))
    t = open_table(p, tmp_path / "c")
    assert {k: str(v.dtype) for k, v in t.ds.features.items()} == {
        "text": "string", "n": "int64", "x": "float64", "flag": "bool", "tags": "string", "mixed": "string"}
    assert t.ds[1] == {"text": "b", "n": None, "x": 2.0, "flag": False, "tags": "[]", "mixed": "one"}
    assert t.non_strings == {"tags": [0, "list"], "mixed": [0, "int"]}


def test_text_column_with_a_number_names_the_row(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text('{"text": "a", "label": 0}\n{"text": "b", "label": 1}\n{"text": 7, "label": 1}\n')
    e = err(train_file=p, cache_dir=tmp_path / "c")
    assert "holds a int" in e.what and e.where.endswith("row 3")


def test_bad_binary_files_are_one_line_errors(tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    e = err(train_file=tmp_path / "bad.parquet", cache_dir=tmp_path / "c")
    assert "cannot read .parquet" in e.what and "\n" not in str(e)
    pq.write_table(pa.table({"sentence": pa.array([], pa.string()), "label": pa.array([], pa.int64())}),
                   tmp_path / "empty.parquet")
    assert "no rows" in err(train_file=tmp_path / "empty.parquet", cache_dir=tmp_path / "c").what
    (tmp_path / "folder").mkdir()
    assert "save_to_disk" in err(train_file=tmp_path / "folder", cache_dir=tmp_path / "c").fix


def test_not_utf8_names_the_line(tmp_path):
    p = tmp_path / "d.csv"
    p.write_bytes(b"text,label\n" + b"fine,1\n" * 5000 + b"bad \xff,0\n")
    e = err(train_file=p, cache_dir=tmp_path / "c")
    assert "UTF-8" in e.what and e.where.endswith("line 5002")


# ---------------------------------------------------------------- --dataset_name


def _saved_dict(tmp_path):
    names = datasets.ClassLabel(names=["bad", "good"])
    features = datasets.Features({"review": datasets.Value("string"), "label": names})
    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"review": ["great", "awful", "fine"], "label": [1, 0, 1]}, features),
        "validation": datasets.Dataset.from_dict({"review": ["meh", "superb"], "label": [0, 1]}, features),
        "test": datasets.Dataset.from_dict({"review": ["??", "!!"], "label": [-1, -1]}, features)})
    dd.save_to_disk(str(tmp_path / "dd"))
    return tmp_path / "dd"


def test_dataset_name_saved_dict_uses_class_names_and_unlabeled_test(tmp_path):
    b = load_data(dataset_name=str(_saved_dict(tmp_path)), cache_dir=tmp_path / "c")
    assert b.label_names == ["bad", "good"] and b.text_columns == ("review",)
    assert b.train.labels.tolist() == [1, 0, 1] and b.evals["validation"].labels.tolist() == [0, 1]
    assert b.test.labels is None and b.test.texts == [("??",), ("!!",)]
    e = err(train_file=tmp_path / "dd", cache_dir=tmp_path / "c")
    assert "DatasetDict" in e.what and "--dataset_name" in e.fix


def test_dataset_name_folder_of_data_files(tmp_path):
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "train.csv").write_text("text,label\nnice,pos\nbad,neg\nok,pos\n")
    (folder / "validation.csv").write_text("text,label\nfine,pos\nugly,neg\n")
    b = load_data(dataset_name=str(folder), cache_dir=tmp_path / "c")
    assert b.label_names == ["neg", "pos"] and b.evals["validation"].labels.tolist() == [1, 0]
    assert b.train.texts == [("nice",), ("bad",), ("ok",)]


def test_dataset_name_offline_names_the_local_alternatives(tmp_path):
    e = err(dataset_name="nyu-mll/glue", dataset_config_name="sst2", cache_dir=tmp_path / "c")
    assert "could not be loaded" in e.what and "--glue_dir" in e.fix and "save_to_disk" in e.fix
    assert "\n" not in str(e)


def test_dataset_name_with_files_or_missing_splits(tmp_path):
    dd = _saved_dict(tmp_path)
    assert "one way" in err(dataset_name=str(dd), train_file=tmp_path / "x.tsv", cache_dir=tmp_path / "c").fix
    e = err(task_name="mnli", dataset_name=str(dd), cache_dir=tmp_path / "c")
    assert "no validation_matched split" in e.what


# ---------------------------------------------------------------- --validation_ratio / --eval_on_test


def test_validation_ratio_is_stratified_seeded_and_disjoint(tmp_path):
    labels = ["pos"] * 70 + ["neg"] * 30
    src = tsv_file(tmp_path / "d.tsv", {"text": [f"row {i}" for i in range(100)], "label": labels})
    b = load_data(train_file=src, validation_ratio=0.2, cache_dir=tmp_path / "c")
    val, train = b.evals["validation"], b.train
    assert len(val) == 20 and len(train) == 80
    assert np.bincount(val.labels).tolist() == [6, 14]  # neg, pos: 20% of each class
    seen = {t for (t,) in val.texts} | {t for (t,) in train.texts}
    assert len(seen) == 100
    again = load_data(train_file=src, validation_ratio=0.2, cache_dir=tmp_path / "c")
    assert again.evals["validation"].texts == val.texts and again.evals["validation"].key == val.key
    other = load_data(train_file=src, validation_ratio=0.3, cache_dir=tmp_path / "c")
    assert other.evals["validation"].key != val.key


def test_validation_ratio_and_eval_on_test_errors(tmp_path):
    src = tsv_file(tmp_path / "d.tsv")
    c = tmp_path / "c"
    assert "between 0 and 1" in err(train_file=src, validation_ratio=1.5, cache_dir=c).fix
    assert "has a validation split" in err(train_file=src, validation_file=src, validation_ratio=0.5, cache_dir=c).what
    assert "drop one" in err(train_file=src, validation_ratio=0.5, eval_on_test=True, cache_dir=c).fix
    assert "needs a test split" in err(train_file=src, eval_on_test=True, cache_dir=c).what
    unlabeled = tsv_file(tmp_path / "t.tsv", {"sentence": ["q"]})
    assert "no labels" in err(train_file=src, test_file=unlabeled, eval_on_test=True, cache_dir=c).what


def test_eval_on_test_evaluates_the_test_split(tmp_path):
    src = tsv_file(tmp_path / "d.tsv")
    test = tsv_file(tmp_path / "t.tsv", {"sentence": ["good", "bad"], "label": ["1", "0"]})
    b = load_data(train_file=src, validation_file=src, test_file=test, eval_on_test=True, cache_dir=tmp_path / "c")
    assert list(b.evals) == ["test"] and b.evals["test"].labels.tolist() == [1, 0]
