"""Read a text data file row by row, checking it as it goes: ``rows(path)`` streams, ``read_table`` collects.

Formats (by extension, case-insensitive):
  .csv / .tsv  header row + rows, standard CSV quoting (a quote inside a quoted
               field is doubled); values are str.
               Blank lines are skipped; a record may span lines inside quotes.
  .json        a list of objects, or an object whose "data" key holds that list.
  .jsonl       one object per line; blank lines are skipped.
JSON values keep their JSON type (str, int, float, bool, None, list, dict).
Every record must have exactly the columns of the first one.
Streaming keeps memory at one row for csv/tsv/jsonl (a .json file is parsed whole).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sparsecore.errors import SparsecoreError

TEXT_EXTENSIONS = (".csv", ".tsv", ".json", ".jsonl")
ALLOWED_EXTENSIONS = (*TEXT_EXTENSIONS, ".parquet", ".arrow")  # the last two are read by ``tables``


def check_file(path: str | Path, allowed: tuple[str, ...] = ALLOWED_EXTENSIONS) -> Path:
    """``path`` as a Path after the checks every data file gets: known extension, exists, is a file."""
    p = Path(path)
    if p.suffix.lower() not in allowed:
        raise SparsecoreError(f"unsupported data file extension {p.suffix or '(none)'!r}", str(p),
                              f"use one of {', '.join(allowed)}")
    if not p.exists():
        raise SparsecoreError("data file not found", str(p), "check the path")
    if not p.is_file():
        raise SparsecoreError("data path is not a file", str(p), "give the path of a file, not a folder")
    return p


def rows(path: str | Path) -> tuple[list[str], Iterator[list]]:
    """(column names, an iterator of rows as lists in that order) of a csv/tsv/json/jsonl file.

    The header (or first record) is checked before this returns; each row is checked as it is read, and a
    problem raises ``SparsecoreError`` naming the file and line (or record)."""
    p = check_file(path, TEXT_EXTENSIONS)
    if not _has_text(p):
        raise _empty(p)
    ext = p.suffix.lower()
    if ext in (".csv", ".tsv"):
        return _delimited(p, "\t" if ext == ".tsv" else ",")
    records = _json_records(p) if ext == ".json" else _jsonl_records(p)
    return _record_rows(records, p)


def read_table(path: str | Path) -> dict[str, list]:
    """Columns of the table in ``path``, in file order; at least one row."""
    names, it = rows(path)
    columns: list[list] = [[] for _ in names]
    for row in it:
        for col, value in zip(columns, row):
            col.append(value)
    return dict(zip(names, columns))


def _open_text(p: Path):
    return open(p, encoding="utf-8-sig", newline="")


def _decoded(lines, p: Path):
    """``lines`` with a one-line error for bytes that are not UTF-8, naming the first bad line."""
    try:
        yield from lines
    except UnicodeDecodeError:
        with open(p, "rb") as f:  # the text layer decodes ahead in chunks: find the line itself
            n = next(n for n, raw in enumerate(f, start=1) if not _is_utf8(raw))
        raise SparsecoreError("data file is not valid UTF-8", f"{p}, line {n}", "save the file as UTF-8") from None


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _empty(p: Path) -> SparsecoreError:
    return SparsecoreError("data file is empty", str(p), "give a file with a header and at least one row")


def _no_rows(p: Path) -> SparsecoreError:
    return SparsecoreError("data file has no rows", str(p), "add at least one example after the header")


def _delimited(p: Path, delimiter: str) -> tuple[list[str], Iterator[list]]:
    f = _open_text(p)
    reader = csv.reader(_decoded(f, p), delimiter=delimiter, quoting=csv.QUOTE_MINIMAL)
    state = {"start": 1}  # line where the next record starts

    def records():
        try:
            for row in reader:
                line, state["start"] = state["start"], reader.line_num + 1
                if row:  # blank lines are skipped
                    yield line, row
        except csv.Error as e:
            raise SparsecoreError(f"malformed {p.suffix} file: {e}", f"{p}, line {reader.line_num}",
                                  "fix the quoting of that row") from None

    it = records()
    first = next(it, None)
    if first is None:
        f.close()
        raise _no_rows(p)
    line, header = first
    _check_header(header, p, line)

    def body():
        with f:
            n = 0
            for line, row in it:
                if len(row) != len(header):
                    raise SparsecoreError(f"row has {len(row)} fields but the header has {len(header)}",
                                          f"{p}, line {line}",
                                          "fix the row; fields containing the delimiter or quotes must be quoted")
                n += 1
                yield row
            if n == 0:
                raise _no_rows(p)

    return header, _checked_first(body(), p)


def _checked_first(it: Iterator[list], p: Path) -> Iterator[list]:
    """Read the first row now, so a file with a header and no rows fails when ``rows`` returns."""
    first = next(it)  # body() raises _no_rows itself when there is none

    def chained():
        yield first
        yield from it

    return chained()


def _has_text(p: Path) -> bool:
    with _open_text(p) as f:
        return any(line.strip() for line in _decoded(f, p))


def _check_header(header: list[str], p: Path, line: int) -> None:
    where = f"{p}, line {line}"
    if any(not h.strip() for h in header):
        raise SparsecoreError("header has an empty column name", where, "give every column a name")
    seen: set[str] = set()
    for h in header:
        if h in seen:
            raise SparsecoreError(f"duplicate column name {h!r} in header", where, "rename one of the columns")
        seen.add(h)


def _json_records(p: Path) -> Iterator[tuple[str, Any]]:
    with _open_text(p) as f:
        text = "".join(_decoded(f, p))
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
    return ((f"{p}, record {i + 1}", r) for i, r in enumerate(obj))


def _jsonl_records(p: Path) -> Iterator[tuple[str, Any]]:
    with _open_text(p) as f:
        for n, line in enumerate(_decoded(f, p), start=1):
            if not line.strip():
                continue
            try:
                yield f"{p}, line {n}", json.loads(line)
            except json.JSONDecodeError as e:
                raise SparsecoreError(f"invalid JSON: {e.msg}", f"{p}, line {n}",
                                      "each line must be one JSON object") from None


def _record_rows(records: Iterator[tuple[str, Any]], p: Path) -> tuple[list[str], Iterator[list]]:
    first = next(records, None)
    if first is None:
        raise _no_rows(p)
    where, rec = first
    _check_object(rec, where)
    if not rec:
        raise SparsecoreError("first record has no fields", where, "give every example its columns")
    names = list(rec)

    def body():
        yield [rec[k] for k in names]
        for where, r in records:
            _check_object(r, where)
            if r.keys() != rec.keys():
                missing = [k for k in names if k not in r]
                extra = [k for k in r if k not in rec]
                detail = "; ".join(s for s in (
                    f"missing {', '.join(missing)}" if missing else "",
                    f"unexpected {', '.join(extra)}" if extra else "") if s)
                raise SparsecoreError(f"record does not have the columns of the first record ({detail})", where,
                                      f"give every record exactly the fields {', '.join(names)}")
            yield [r[k] for k in names]

    return names, body()


def _check_object(rec: Any, where: str) -> None:
    if not isinstance(rec, dict):
        raise SparsecoreError(f"expected a JSON object, got {type(rec).__name__}", where,
                              "each example must be an object like {\"sentence\": ..., \"label\": ...}")
