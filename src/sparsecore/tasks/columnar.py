"""Checks and label encoding on Arrow columns, with the messages the list-based rules give.

The label rules (:mod:`sparsecore.tasks.labels`) run on a column's *distinct* values (Arrow's dictionary
encoding), then every row takes its value's code: O(rows) in C++, Python work O(distinct values). When a rule
fails on the distinct values it is run again on the whole column, so the error names the same first bad row
a row-by-row pass would.
"""

from __future__ import annotations

import json

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sparsecore.errors import SparsecoreError
from sparsecore.tasks.labels import _is_unlabeled, _number

SCAN_ROWS = 10_000  # rows per batch when a rule has to look at values in Python


def arrow_column(ds, col: str) -> pa.ChunkedArray:
    """Column ``col`` of ``ds`` in its row order: the memory-mapped chunks themselves (no copy) unless an index
    mapping (``select``) has to be applied."""
    if getattr(ds, "_indices", None) is None:
        arr = ds.data.column(col)
    else:
        arr = ds.select_columns([col]).with_format("arrow")[:][col]
    return arr if isinstance(arr, pa.ChunkedArray) else pa.chunked_array([arr])


def values(ds, col: str) -> list:
    """Every value of ``col`` as Python objects (the slow path: error messages and small splits)."""
    try:
        return arrow_column(ds, col).to_pylist()
    except UnicodeDecodeError:
        raise not_utf8(col) from None


def not_utf8(col: str) -> SparsecoreError:
    """The error for a string column holding bytes that are not UTF-8 (possible in parquet and Arrow files)."""
    return SparsecoreError(f"column {col!r} holds bytes that are not UTF-8 text", f"column {col!r}",
                           "re-encode the file's text as UTF-8")


def distinct(ds, col: str) -> tuple[list, np.ndarray]:
    """(distinct values in order of first appearance, each row's index into them)."""
    try:
        encoded = pc.dictionary_encode(arrow_column(ds, col), null_encoding="encode").unify_dictionaries()
        if encoded.num_chunks == 0:
            return [], np.empty(0, dtype=np.int64)
        index = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in encoded.chunks])
        return encoded.chunk(0).dictionary.to_pylist(), index
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):  # nested values (lists), dictionaries Arrow cannot unify
        pass
    except UnicodeDecodeError:
        raise not_utf8(col) from None
    uniques, index, seen = [], [], {}
    for value in values(ds, col):
        key = (type(value).__name__, json.dumps(value, sort_keys=True, default=str))
        if key not in seen:
            seen[key] = len(uniques)
            uniques.append(value)
        index.append(seen[key])
    return uniques, np.asarray(index, dtype=np.int64)


def _on_distinct(ds, col: str, rule: Callable[[list], Any]) -> tuple[Any, np.ndarray]:
    """(``rule`` of the distinct values, each row's index into them); when the rule raises, it runs once more on
    every value, so the error names the first bad row."""
    uniques, index = distinct(ds, col)
    try:
        return rule(uniques), index
    except SparsecoreError:
        rule(values(ds, col))  # raises the same error, naming the first bad row
        raise


def encode_labels(ds, col: str, encode: Callable[[list, str], np.ndarray], where: str) -> np.ndarray:
    """``encode`` applied to every value of ``col``, computed once per distinct value."""
    table, index = _on_distinct(ds, col, lambda vals: encode(vals, where))
    return table[index]


def infer(ds, col: str, rule: Callable[[list, str, str], tuple], where: str, name: str) -> tuple:
    """``rule`` (the custom label inference) on the distinct values; on an error, again on every value."""
    return _on_distinct(ds, col, lambda vals: rule(vals, where, name))[0]


def unlabeled(ds, col: str, names: list[str]) -> bool:
    """All labels of ``col`` are empty, or all -1 where -1 is not a class (GLUE test files)."""
    return _is_unlabeled(distinct(ds, col)[0], names)


def check_texts(ds, cols: Sequence[str], path, non_strings: dict) -> None:
    """Every value of the text columns is a string or null (an empty cell); else the one-line error naming the
    first row that is not."""
    for c in cols:
        arr = arrow_column(ds, c)
        bad = None
        if not (is_string_type(arr.type) or pa.types.is_null(arr.type)):
            first = int(np.flatnonzero(pc.is_valid(arr).to_numpy(zero_copy_only=False))[0]) if len(arr) else 0
            bad = (first, type(arr[first].as_py()).__name__) if len(arr) else None
        elif c in non_strings:
            bad = tuple(non_strings[c])
        if bad is not None:
            raise SparsecoreError(f"text column {c!r} holds a {bad[1]}, not a string", f"{path}, row {bad[0] + 1}",
                                  "make every text value a string")


def is_string_type(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def is_text_column(ds, col: str) -> bool:
    """All values are strings or null, and some string is not a number (a column of ids is not text)."""
    arr = arrow_column(ds, col)
    if not is_string_type(arr.type):
        return False
    it = iter(arr.to_pylist() if len(arr) <= SCAN_ROWS else _batches(arr))
    return any(v is not None and _number(v) is None for v in it)


def _batches(arr: pa.ChunkedArray):
    for start in range(0, len(arr), SCAN_ROWS):
        yield from arr.slice(start, SCAN_ROWS).to_pylist()


def texts(ds, cols: Sequence[str]) -> list[tuple[str, ...]]:
    """The rows' texts as tuples (one or two strings each)."""
    return list(zip(*(values(ds, c) for c in cols)))
