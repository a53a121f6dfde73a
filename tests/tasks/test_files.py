"""read_table: every format and every error."""

from __future__ import annotations

import json

import pytest

from sparsecore.errors import SparsecoreError
from sparsecore.tasks.files import read_table


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def err(path) -> SparsecoreError:
    with pytest.raises(SparsecoreError) as e:
        read_table(path)
    return e.value


def test_tsv_with_quotes_tabs_and_multiline(tmp_path):
    p = write(tmp_path / "d.tsv", 'sentence\tlabel\n"say ""hi"""\t1\n"a\tb"\t0\n\n"two\nlines"\t1\nplain "inner" quote\t0\n')
    assert read_table(p) == {
        "sentence": ['say "hi"', "a\tb", "two\nlines", 'plain "inner" quote'],
        "label": ["1", "0", "1", "0"],
    }


def test_csv_with_bom_and_crlf(tmp_path):
    p = tmp_path / "d.csv"
    p.write_bytes("\ufefftext,label\r\n\"x, y\",pos\r\nz,neg\r\n".encode("utf-8"))
    assert read_table(p) == {"text": ["x, y", "z"], "label": ["pos", "neg"]}


def test_uppercase_extension(tmp_path):
    p = write(tmp_path / "d.TSV", "a\tb\n1\t2\n")
    assert read_table(p) == {"a": ["1"], "b": ["2"]}


def test_json_list_and_data_object_keep_types(tmp_path):
    rows = [{"text": "a", "label": 1, "tags": ["x"]}, {"text": "b", "label": 2.5, "tags": []}]
    expect = {"text": ["a", "b"], "label": [1, 2.5], "tags": [["x"], []]}
    assert read_table(write(tmp_path / "l.json", json.dumps(rows))) == expect
    assert read_table(write(tmp_path / "o.json", json.dumps({"version": 1, "data": rows}))) == expect


def test_jsonl_skips_blank_lines(tmp_path):
    p = write(tmp_path / "d.jsonl", '{"text": "a", "label": "p"}\n\n{"text": "b", "label": "q"}\n')
    assert read_table(p) == {"text": ["a", "b"], "label": ["p", "q"]}


def test_missing_file(tmp_path):
    e = err(tmp_path / "nope.tsv")
    assert "not found" in e.what and "nope.tsv" in e.where


def test_directory_is_not_a_file(tmp_path):
    (tmp_path / "d.csv").mkdir()
    assert "not a file" in err(tmp_path / "d.csv").what


def test_unsupported_extension_lists_allowed(tmp_path):
    e = err(write(tmp_path / "d.txt", "a\n1\n"))
    assert ".txt" in e.what
    for ext in (".csv", ".tsv", ".json", ".jsonl"):
        assert ext in e.fix


@pytest.mark.parametrize("name,text", [
    ("e.tsv", ""), ("e.csv", "\n\n"), ("e.jsonl", "  \n"), ("e.json", ""),
])
def test_empty_file(tmp_path, name, text):
    assert "empty" in err(write(tmp_path / name, text)).what


@pytest.mark.parametrize("name,text", [
    ("h.tsv", "sentence\tlabel\n"), ("h.csv", "a,b\n\n"), ("h.json", "[]"), ("h.json", '{"data": []}'),
])
def test_header_only_or_empty_list_has_no_rows(tmp_path, name, text):
    assert "no rows" in err(write(tmp_path / name, text)).what


def test_ragged_row_names_line(tmp_path):
    p = write(tmp_path / "r.tsv", 'a\tb\n1\t2\n"multi\nline"\t3\n\n4\t5\t6\n')
    e = err(p)
    assert "3 fields" in e.what and "2" in e.what
    assert e.where.endswith("line 6")


def test_short_row_names_line(tmp_path):
    assert err(write(tmp_path / "r.csv", "a,b\n1,2\n3\n")).where.endswith("line 3")


def test_duplicate_and_empty_header_names(tmp_path):
    assert "duplicate" in err(write(tmp_path / "d.csv", "a,a\n1,2\n")).what
    assert "empty column name" in err(write(tmp_path / "e.csv", "a,\n1,2\n")).what


def test_invalid_json_line_number(tmp_path):
    e = err(write(tmp_path / "bad.json", '[\n{"a": 1},\n{"a": }\n]'))
    assert "invalid JSON" in e.what and e.where.endswith("line 3")


def test_invalid_jsonl_line_number(tmp_path):
    e = err(write(tmp_path / "bad.jsonl", '{"a": 1}\n\n{"a": 2\n'))
    assert "invalid JSON" in e.what and e.where.endswith("line 3")


def test_json_wrong_top_level(tmp_path):
    assert "list of objects" in err(write(tmp_path / "w.json", '{"rows": []}')).what
    assert "JSON object" in err(write(tmp_path / "w.jsonl", '[1, 2]\n')).what


def test_json_records_with_different_keys(tmp_path):
    e = err(write(tmp_path / "k.jsonl", '{"a": 1, "b": 2}\n{"a": 1, "c": 3}\n'))
    assert "missing b" in e.what and "unexpected c" in e.what and e.where.endswith("line 2")
    e = err(write(tmp_path / "k.json", '[{"a": 1}, {"a": 1}, {}]'))
    assert "missing a" in e.what and e.where.endswith("record 3")


def test_not_utf8(tmp_path):
    p = tmp_path / "l.csv"
    p.write_bytes(b"a\n\xff\xfe\n")
    assert "UTF-8" in err(p).what


def test_error_message_is_one_line(tmp_path):
    msg = str(err(write(tmp_path / "r.tsv", "a\tb\n1\n")))
    assert "\n" not in msg and " — " in msg and "(" in msg
