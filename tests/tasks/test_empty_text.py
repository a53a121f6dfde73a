"""Rows with an empty text: dropped from train/eval with a note, refused past 5%, kept in test."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sparsecore.errors import SparsecoreError
from sparsecore.tasks import load_data, sample_glue_dir
from sparsecore.tasks.empty_text import too_many


def sst2_rows(n: int) -> list[tuple[str, str]]:
    """The first ``n`` (sentence, label) rows of the bundled SST-2 sample."""
    with open(sample_glue_dir() / "sst2" / "train.tsv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t"))[1:n + 1]
    return [(s, label) for s, label in rows]


def write_csv(path: Path, header, rows) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def blanked(rows, empty: dict[int, str]):
    """``rows`` with the sentence of row i replaced by ``empty[i]``."""
    return [(empty.get(i, s), label) for i, (s, label) in enumerate(rows)]


def test_three_of_sixty_are_dropped_with_a_note(tmp_path):
    rows = sst2_rows(60)
    p = write_csv(tmp_path / "train.csv", ["sentence", "label"], blanked(rows, {4: "", 17: "   ", 40: "\t \u00a0"}))
    b = load_data(train_file=p, validation_file=p, cache_dir=tmp_path / "c")
    assert len(b.train) == 57 and len(b.evals["validation"]) == 57
    assert b.notes == (f"dropped 3 of 60 rows of train ({p}) whose sentence is empty",
                       f"dropped 3 of 60 rows of validation ({p}) whose sentence is empty")
    assert all(t[0].strip() for t in b.train.texts)
    kept = [r for i, r in enumerate(rows) if i not in (4, 17, 40)]
    assert [t[0] for t in b.train.texts] == [s for s, _ in kept]
    assert b.train.labels.tolist() == [int(label) for _, label in kept]  # labels stay with their rows


def test_half_empty_is_refused_naming_the_column(tmp_path):
    rows = blanked(sst2_rows(60), {i: "" for i in range(0, 60, 2)})
    p = write_csv(tmp_path / "train.csv", ["sentence", "label"], rows)
    with pytest.raises(SparsecoreError) as e:
        load_data(train_file=p, cache_dir=tmp_path / "c")
    msg = str(e.value)
    assert "30 of 60 rows of train have an empty sentence" in msg and "probably not the text column" in msg
    assert f"{p}, column 'sentence'" in msg and "--input_column_names" in msg and "\n" not in msg


def test_the_wrong_column_chosen_by_name_is_refused(tmp_path):
    """A `text` column that is mostly blank next to the real one: the error says to pick the column."""
    rows = [("" if i % 3 else "x", s, label) for i, (s, label) in enumerate(sst2_rows(30))]
    p = write_csv(tmp_path / "d.csv", ["text", "review", "label"], rows)
    with pytest.raises(SparsecoreError, match="20 of 30 rows of train have an empty text"):
        load_data(train_file=p, cache_dir=tmp_path / "c")
    b = load_data(train_file=p, input_column_names=["review"], cache_dir=tmp_path / "c")
    assert len(b.train) == 30 and b.notes == ()


@pytest.mark.parametrize("n_empty, n, refused", [
    (0, 60, False), (3, 60, False), (4, 60, True), (1, 2, False), (1, 1, True), (2, 2, True), (2, 10, True),
    (1, 19, False), (5, 100, False), (6, 100, True),
])
def test_the_rule_for_small_and_large_splits(n_empty, n, refused):
    assert too_many(n_empty, n) == refused


def test_missing_cells_count_as_empty_jsonl_and_parquet(tmp_path):
    rows = sst2_rows(60)
    records = [{"sentence": None if i == 7 else (" " if i == 8 else s), "label": int(label)}
               for i, (s, label) in enumerate(rows)]
    p = tmp_path / "d.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    b = load_data(train_file=p, cache_dir=tmp_path / "c")
    assert len(b.train) == 58 and b.notes == (f"dropped 2 of 60 rows of train ({p}) whose sentence is empty",)

    q = tmp_path / "d.parquet"  # pandas writes a missing string as null; NaN in a string column too
    frame = pd.DataFrame({"sentence": [float("nan") if i == 3 else r["sentence"] for i, r in enumerate(records)],
                          "label": [r["label"] for r in records]})
    pq.write_table(pa.Table.from_pandas(frame), q)
    b = load_data(train_file=q, cache_dir=tmp_path / "c")
    assert len(b.train) == 57 and "dropped 3 of 60 rows of train" in b.notes[0]


def test_pairs_drop_a_row_when_either_text_is_empty(tmp_path):
    rows = sst2_rows(41)
    pairs = [(a, b, la) for (a, la), (b, _) in itertools.pairwise(rows)]
    pairs[2] = ("", pairs[2][1], pairs[2][2])
    pairs[9] = (pairs[9][0], "  ", pairs[9][2])
    p = write_csv(tmp_path / "pairs.csv", ["sentence1", "sentence2", "label"], pairs)
    b = load_data(train_file=p, cache_dir=tmp_path / "c")
    assert b.text_columns == ("sentence1", "sentence2") and len(b.train) == 38
    assert b.notes == (f"dropped 2 of 40 rows of train ({p}) whose sentence1 or sentence2 is empty",)
    many = [(a, "" if i % 4 == 0 else b, la) for i, (a, b, la) in enumerate(pairs)]  # 10 more: 12 of 40
    with pytest.raises(SparsecoreError) as e:
        load_data(train_file=write_csv(tmp_path / "many.csv", ["sentence1", "sentence2", "label"], many),
                  cache_dir=tmp_path / "c")
    assert "12 of 40 rows of train have an empty sentence1 or sentence2" in e.value.what
    assert e.value.where.endswith("columns 'sentence1', 'sentence2'")


def test_test_split_keeps_its_rows(tmp_path):
    train = write_csv(tmp_path / "train.csv", ["sentence", "label"], sst2_rows(20))
    records = [{"sentence": None if i == 1 else ("" if i == 5 else s)} for i, (s, _) in enumerate(sst2_rows(40))]
    test = tmp_path / "test.jsonl"
    test.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    b = load_data(train_file=train, test_file=test, validation_file=train, cache_dir=tmp_path / "c")
    assert len(b.test) == 40 and b.test.texts[1] == ("",) and b.test.texts[5] == ("",)
    note = f"2 of 40 rows of test ({test}) have an empty sentence: kept, so predictions line up with the file's rows"
    assert b.notes == (note,)


def test_an_empty_text_row_with_an_empty_label_is_dropped_before_the_label_checks(tmp_path):
    rows = sst2_rows(40)
    rows[10] = ("", "")  # a trailing half-filled row: no text, no label
    p = write_csv(tmp_path / "d.csv", ["sentence", "label"], rows)
    assert len(load_data(train_file=p, cache_dir=tmp_path / "c").train) == 39
    rows[30] = (rows[30][0], "")  # a real label problem after the dropped row names its row in the file
    p = write_csv(tmp_path / "e.csv", ["sentence", "label"], rows)
    with pytest.raises(SparsecoreError) as e:
        load_data(train_file=p, cache_dir=tmp_path / "c")
    assert "empty label" in e.value.what and e.value.where.endswith("row 31")


def test_a_test_split_of_empty_texts_only_is_refused(tmp_path):
    train = write_csv(tmp_path / "train.csv", ["sentence", "label"], sst2_rows(20))
    test = write_csv(tmp_path / "test.csv", ["sentence", "label"], [("", ""), (" ", ""), ("", "")])
    with pytest.raises(SparsecoreError, match="all 3 rows of test have an empty sentence"):
        load_data(train_file=train, test_file=test, cache_dir=tmp_path / "c")
