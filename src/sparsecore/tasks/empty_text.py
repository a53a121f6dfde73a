"""Rows whose text is empty: dropped from training and evaluation splits, kept in the test split.

A row is empty when any of its text columns (one, or both of a pair) is a null cell (JSON ``null``, a missing
parquet/pandas value, NaN) or a string of whitespace only. Training and evaluation splits lose such rows, and the
caller gets one note per split saying how many; a split with more empty rows than ``MAX_EMPTY_SHARE`` of its
rows (and more than one), or with no other rows, is refused: its text column is most likely the wrong one. The
test split keeps its empty rows (``--do_predict`` writes one prediction per row of the file), its nulls read as
``""``, with a note; it is refused only when every row is empty.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sparsecore.errors import SparsecoreError
from sparsecore.tasks.columnar import arrow_column, not_utf8

MAX_EMPTY_SHARE = 0.05  # more empty rows than this share of a split (and more than one) is an error


def empty_rows(ds, cols: Sequence[str]) -> np.ndarray:
    """bool (n,): the rows where any of ``cols`` is null or whitespace only."""
    mask = np.zeros(len(ds), dtype=bool)
    for c in cols:
        arr = arrow_column(ds, c)
        if pa.types.is_null(arr.type):  # a column of nothing but nulls (parquet, datasets)
            return np.ones(len(ds), dtype=bool)
        try:
            blank = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(arr)), 0)
        except pa.ArrowInvalid:  # "Invalid UTF8 sequence": a parquet/Arrow string column of other bytes
            raise not_utf8(c) from None
        mask |= pc.fill_null(blank, True).to_numpy(zero_copy_only=False)
    return mask


def too_many(n_empty: int, n: int) -> bool:
    """Whether ``n_empty`` of ``n`` rows is beyond what is dropped with a note."""
    return n_empty == n or (n_empty > 1 and n_empty > MAX_EMPTY_SHARE * n)


def _which(cols: Sequence[str]) -> str:
    return " or ".join(cols)


def check_share(n_empty: int, n: int, cols: Sequence[str], name: str, path: str, everything: bool = False) -> None:
    """The one-line error when ``too_many(n_empty, n)`` (with ``everything``: when every row is empty)."""
    if not (n_empty == n if everything else too_many(n_empty, n)):
        return
    share = f"all {n}" if n_empty == n else f"{n_empty} of {n}"
    plural = "s" if len(cols) > 1 else ""
    raise SparsecoreError(
        f"{share} rows of {name} have an empty {_which(cols)}: probably not the text column{plural}",
        f"{path}, column{plural} {', '.join(map(repr, cols))}",
        "name the text column(s) with --input_column_names (one, or two comma-separated for pairs), or remove "
        f"the empty rows (up to {MAX_EMPTY_SHARE:.0%} of a split's rows are dropped with a note)")


def dropped_note(n_empty: int, n: int, cols: Sequence[str], name: str, path: str) -> str:
    return f"dropped {n_empty} of {n} rows of {name} ({path}) whose {_which(cols)} is empty"


def kept_note(n_empty: int, n: int, cols: Sequence[str], path: str) -> str:
    return (f"{n_empty} of {n} rows of test ({path}) have an empty {_which(cols)}: kept, so predictions line up "
            "with the file's rows")


def filled(ds, cols: Sequence[str]):
    """``ds`` with the null cells of ``cols`` read as ``""`` (an in-memory copy; ``ds`` itself when none are null)."""
    import datasets

    if not any(arrow_column(ds, c).null_count for c in cols):
        return ds
    table = ds.with_format("arrow")[:]
    for c in cols:
        col = table.column(c)  # a string column: a column of nulls only is refused before (check_share)
        table = table.set_column(table.schema.get_field_index(c), c, pc.fill_null(col, pa.scalar("", col.type)))
    return datasets.Dataset(datasets.table.InMemoryTable(table), info=ds.info.copy())


def renumbered(e: SparsecoreError, kept: np.ndarray) -> SparsecoreError:
    """``e`` with the ``row N`` its place names (N counts the kept rows from 1) turned into the source's row."""
    m = re.search(r"row (\d+)$", e.where)
    if m is None or not 1 <= int(m.group(1)) <= len(kept):
        return e
    where = f"{e.where[:m.start(1)]}{int(kept[int(m.group(1)) - 1]) + 1}"
    return SparsecoreError(e.what, where, e.fix)
