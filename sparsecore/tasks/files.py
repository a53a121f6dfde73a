"""Read a data file into columns: ``read_table(path) -> {column: [values]}``.

Formats (by extension, case-insensitive):
  .csv / .tsv  header row + rows, standard CSV quoting (a quote inside a quoted
               field is doubled); values are str.
               Blank lines are skipped; a record may span lines inside quotes.
  .json        a list of objects, or an object whose "data" key holds that list.
  .jsonl       one object per line; blank lines are skipped.
JSON values keep their JSON type (str, int, float, bool, None, list, dict).
Every record must have exactly the columns of the first one.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from sparsecore.errors import SparsecoreError

ALLOWED_EXTENSIONS = (".csv", ".tsv", ".json", ".jsonl")


def read_table(path: str | Path) -> dict[str, list]:
    """Columns of the table in ``path``, in file order; at least one row."""
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in ALLOWED_EXTENSIONS:
        raise SparsecoreError(
            f"unsupported data file extension {p.suffix or '(none)'!r}",
            str(p),
            f"use one of {', '.join(ALLOWED_EXTENSIONS)}",
        )
    if not p.exists():
        raise SparsecoreError("data file not found", str(p), "check the path")
    if not p.is_file():
        raise SparsecoreError("data path is not a file", str(p), "give the path of a file, not a folder")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise SparsecoreError(
            "data file is not valid UTF-8", f"{p}, byte {e.start}", "save the file as UTF-8"
        ) from None
    if not text.strip():
        raise SparsecoreError("data file is empty", str(p), "give a file with a header and at least one row")
    if ext in (".csv", ".tsv"):
        return _read_delimited(text, p, "\t" if ext == ".tsv" else ",")
    if ext == ".json":
        return _read_json(text, p)
    return _read_jsonl(text, p)


def _no_rows(p: Path) -> SparsecoreError:
    return SparsecoreError("data file has no rows", str(p), "add at least one example after the header")


def _read_delimited(text: str, p: Path, delimiter: str) -> dict[str, list]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=csv.QUOTE_MINIMAL)
    header: list[str] | None = None
    columns: list[list[str]] = []
    start = 1  # line where the next record starts
    try:
        for row in reader:
            line, start = start, reader.line_num + 1
            if not row:  # blank line
                continue
            if header is None:
                header = row
                _check_header(header, p, line)
                columns = [[] for _ in header]
                continue
            if len(row) != len(header):
                raise SparsecoreError(
                    f"row has {len(row)} fields but the header has {len(header)}",
                    f"{p}, line {line}",
                    "fix the row; fields containing the delimiter or quotes must be quoted",
                )
            for col, value in zip(columns, row):
                col.append(value)
    except csv.Error as e:
        raise SparsecoreError(f"malformed {p.suffix} file: {e}", f"{p}, line {reader.line_num}",
                              "fix the quoting of that row") from None
    if header is None or not columns[0]:
        raise _no_rows(p)
    return dict(zip(header, columns))


def _check_header(header: list[str], p: Path, line: int) -> None:
    where = f"{p}, line {line}"
    if any(not h.strip() for h in header):
        raise SparsecoreError("header has an empty column name", where, "give every column a name")
    seen: set[str] = set()
    for h in header:
        if h in seen:
            raise SparsecoreError(f"duplicate column name {h!r} in header", where, "rename one of the columns")
        seen.add(h)


def _read_json(text: str, p: Path) -> dict[str, list]:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise SparsecoreError(f"invalid JSON: {e.msg}", f"{p}, line {e.lineno}", "fix the JSON syntax") from None
    if isinstance(obj, dict) and "data" in obj:
        obj = obj["data"]
    if not isinstance(obj, list):
        raise SparsecoreError(
            "JSON file must hold a list of objects or an object with a \"data\" list",
            str(p),
            'write [{"sentence": ..., "label": ...}, ...] or use .jsonl',
        )
    return _columns_from_records(((f"{p}, record {i + 1}", r) for i, r in enumerate(obj)), p)


def _read_jsonl(text: str, p: Path) -> dict[str, list]:
    def records():
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                yield f"{p}, line {n}", json.loads(line)
            except json.JSONDecodeError as e:
                raise SparsecoreError(f"invalid JSON: {e.msg}", f"{p}, line {n}",
                                      "each line must be one JSON object") from None

    return _columns_from_records(records(), p)


def _columns_from_records(records, p: Path) -> dict[str, list]:
    names: list[str] | None = None
    out: dict[str, list[Any]] = {}
    for where, rec in records:
        if not isinstance(rec, dict):
            raise SparsecoreError(f"expected a JSON object, got {type(rec).__name__}", where,
                                  "each example must be an object like {\"sentence\": ..., \"label\": ...}")
        if names is None:
            if not rec:
                raise SparsecoreError("first record has no fields", where, "give every example its columns")
            names = list(rec)
            out = {k: [] for k in names}
        elif rec.keys() != out.keys():
            missing = [k for k in names if k not in rec]
            extra = [k for k in rec if k not in out]
            detail = "; ".join(s for s in (
                f"missing {', '.join(missing)}" if missing else "",
                f"unexpected {', '.join(extra)}" if extra else "") if s)
            raise SparsecoreError(f"record does not have the columns of the first record ({detail})", where,
                                  f"give every record exactly the fields {', '.join(names)}")
        for k in names:
            out[k].append(rec[k])
    if names is None:
        raise _no_rows(p)
    return out
