"""Any data source → a memory-mapped ``datasets.Dataset`` (Arrow on disk), plus a key that changes with its content.

  .csv .tsv .json .jsonl  read and checked row by row by :mod:`sparsecore.tasks.files` (its one-line errors),
                          written once as an Arrow stream under ``<cache>/tables/`` in batches of
                          ``BATCH_ROWS`` rows, then memory-mapped. The file's key is its resolved path, size and
                          mtime, so an edited file is converted again and an unchanged one never is.
  .parquet                ``Dataset.from_parquet`` (datasets' own cache under ``<cache>/parquet``)
  .arrow                  an Arrow stream (what ``datasets`` writes) is memory-mapped in place; an Arrow IPC
                          *file* goes through datasets' ``arrow`` loader
  a folder                one written by ``Dataset.save_to_disk`` (a split; a DatasetDict folder is refused
                          here, see :mod:`sparsecore.tasks.hub`)

csv/tsv values are strings. JSON columns keep their type when every value has the same one (string, integer,
number, boolean; nulls anywhere); a column mixing types, or holding lists/objects, is stored as strings with
the non-string values written as JSON (``["a", "b"]``, ``1``, ``true``), which the label rules read back as
they read a TSV cell.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from sparsecore.errors import SparsecoreError
from sparsecore.tasks.files import ALLOWED_EXTENSIONS, TEXT_EXTENSIONS, check_file, rows

BATCH_ROWS = 20_000  # rows per Arrow record batch while converting: memory O(BATCH_ROWS · row)
FORMAT_VERSION = 1  # bump when the conversion changes, so old cached tables are not reused


def cache_root(cache_dir: str | Path | None) -> Path:
    """Where sparsecore keeps converted tables and tokenized features: ``<cache_dir>/sparsecore`` (default: the
    ``datasets`` cache, ``$HF_DATASETS_CACHE``)."""
    if cache_dir is None:
        import datasets

        cache_dir = datasets.config.HF_DATASETS_CACHE
    return Path(cache_dir).expanduser() / "sparsecore"


@dataclass(frozen=True)
class Table:
    """A source's rows as a ``datasets.Dataset``, and what the checks downstream need to know of it."""

    ds: Any  # datasets.Dataset, memory-mapped
    key: str  # changes whenever the source's content may have changed
    non_strings: dict = field(default_factory=dict)  # {column: [row, type name]}, see _json_types


def open_table(path: str | Path, cache: Path, overwrite: bool = False) -> Table:
    """The data file or saved folder at ``path`` as a :class:`Table`. See the module docstring."""
    p = Path(path)
    if p.is_dir():
        return _rows_checked(_saved_folder(p), p)
    p = check_file(p, ALLOWED_EXTENSIONS)
    if p.suffix.lower() in TEXT_EXTENSIONS:  # the reader has checked for rows
        return _converted(p, cache / "tables" / f"{p.stem}-{_file_key(p)}.arrow", overwrite)
    return _rows_checked(_binary(p, cache), p)


def _rows_checked(t: Table, p: Path) -> Table:
    if len(t.ds) == 0:
        raise SparsecoreError("data file has no rows", str(p), "add at least one example")
    return t


def _binary(p: Path, cache: Path) -> Table:
    """A .parquet or .arrow file through datasets' readers."""
    import datasets

    ext, key = p.suffix.lower(), _file_key(p)
    try:
        if ext == ".parquet":
            if pq.ParquetFile(str(p)).metadata.num_rows == 0:  # datasets' reader fails on it with no clear word
                return Table(datasets.Dataset.from_dict({}), key)
            return Table(datasets.Dataset.from_parquet(str(p), cache_dir=str(cache / "parquet")), key)
        try:
            return Table(datasets.Dataset.from_file(str(p)), key)  # memory-mapped in place
        except pa.ArrowInvalid:
            return Table(datasets.load_dataset("arrow", data_files=str(p), split="train",
                                               cache_dir=str(cache / "arrow")), key)
    except (pa.ArrowException, OSError, ValueError, datasets.exceptions.DatasetGenerationError) as e:
        how = "to_parquet" if ext == ".parquet" else "Arrow IPC"
        raise SparsecoreError(f"cannot read {ext} file: {first_line(e)}", str(p),
                              f"write it with pyarrow/pandas/datasets ({how})") from None


def first_line(e: BaseException, limit: int | None = None) -> str:
    """The first line of an exception's text (for a one-line error), at most ``limit`` characters."""
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:limit]


def content_key(*parts) -> str:
    """A short hash of ``parts`` (JSON-serialisable) and FORMAT_VERSION: the key of a source's content."""
    return hashlib.sha256(json.dumps([FORMAT_VERSION, *parts]).encode()).hexdigest()[:16]


def _file_key(p: Path) -> str:
    st = p.stat()
    return content_key(str(p.resolve()), st.st_size, st.st_mtime_ns)


def _saved_folder(p: Path) -> Table:
    import datasets

    if (p / "dataset_dict.json").is_file():
        raise SparsecoreError("folder holds several splits (a DatasetDict)", str(p),
                              "pass it as --dataset_name, or pass one split's folder (e.g. its train/)")
    if not (p / "state.json").is_file():
        raise SparsecoreError("data path is a folder, not a file or a datasets folder", str(p),
                              f"give a file ({', '.join(ALLOWED_EXTENSIONS)}) or a folder written by save_to_disk")
    ds = datasets.load_from_disk(str(p))
    stamp = [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in sorted(p.iterdir()) if f.is_file()]
    key = content_key(str(p.resolve()), stamp)
    return Table(ds, key)


def _converted(p: Path, target: Path, overwrite: bool) -> Table:
    """The Arrow copy of text file ``p`` at ``target`` (written now unless it is there already)."""
    import datasets

    if overwrite or not target.is_file() or not _sidecar(target).is_file():
        _write_arrow(p, target)
    return Table(datasets.Dataset.from_file(str(target)), target.stem.rsplit("-", 1)[1],
                 json.loads(_sidecar(target).read_text()))


def _write_arrow(p: Path, target: Path) -> None:
    names, it = rows(p)
    for name in names:
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in str(name)):
            raise SparsecoreError(f"column name {name!r} holds a control character", str(p),
                                  "rename the column in the file's header (letters, digits, _)")
    json_typed = p.suffix.lower() in (".json", ".jsonl")
    if json_typed:  # a first pass finds each column's type (a .json file is parsed twice; .jsonl streams twice)
        types, odd = _json_types(names, rows(p)[1])
        schema = pa.schema([(n, t) for n, t in zip(names, types)])
    else:
        schema, odd = pa.schema([(n, pa.string()) for n in names]), {}
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
    os.close(fd)
    try:
        with pa.OSFile(tmp, "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
            columns: list[list] = [[] for _ in names]
            for row in it:
                for col, value in zip(columns, row):
                    col.append(value)
                if len(columns[0]) >= BATCH_ROWS:
                    writer.write_batch(_batch(columns, schema, json_typed, str(p)))
                    columns = [[] for _ in names]
            if columns[0]:
                writer.write_batch(_batch(columns, schema, json_typed, str(p)))
        _sidecar(target).write_text(json.dumps(odd))
        os.replace(tmp, target)  # a run stopped midway leaves no table that looks complete
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _kind(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int" if -(2 ** 63) <= v < 2 ** 63 else "other"
    return {str: "str", float: "float"}.get(type(v), "other")


def _json_types(names: list[str], it) -> tuple[list[pa.DataType], dict[str, list]]:
    """Each column's Arrow type, and {column: [row, type name]} of the first non-string value of every column
    stored as strings (so a text column holding a number or a list is still an error, named by row)."""
    kinds: list[set] = [set() for _ in names]
    first: list[list | None] = [None] * len(names)
    for i, row in enumerate(it):
        for j, v in enumerate(row):
            k = _kind(v)
            if k is not None:
                kinds[j].add(k)
                if k != "str" and first[j] is None:
                    first[j] = [i, type(v).__name__]
    out = []
    for seen in kinds:
        if seen <= {"int"} and seen:
            out.append(pa.int64())
        elif seen <= {"int", "float"} and seen:
            out.append(pa.float64())
        elif seen == {"bool"}:
            out.append(pa.bool_())
        else:  # strings, nothing but nulls, lists/objects, or a mix: strings, non-strings as JSON
            out.append(pa.string())
    non_strings = {n: f for n, f, t in zip(names, first, out) if f is not None and t == pa.string()}
    return out, non_strings


def _sidecar(target: Path) -> Path:
    return target.with_suffix(".non_strings.json")


def _batch(columns: list[list], schema: pa.Schema, json_typed: bool, where: str) -> pa.RecordBatch:
    arrays = []
    for col, f in zip(columns, schema):
        if json_typed and f.type == pa.string():
            col = [v if v is None or isinstance(v, str) else json.dumps(v) for v in col]
        elif f.type == pa.float64():
            col = [None if v is None else float(v) for v in col]
        try:
            arrays.append(pa.array(col, type=f.type))
        except UnicodeEncodeError:  # a JSON "\udcff" escape: a lone surrogate, which is no Unicode text
            raise SparsecoreError(f"column {f.name!r} holds text that is not valid Unicode (a lone surrogate such as "
                                  "\\udcff)", where, "fix or drop those rows (the file's encoder wrote "
                                  "half of a character pair)") from None
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
