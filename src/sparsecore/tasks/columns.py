"""Column checks (on column-name lists) and text-column selection for ``load_data``.

Custom (no task) text columns = ``input_column_names``, else sentence1+sentence2, else
sentence, else text, else the first one or two non-label text columns.
"""

from __future__ import annotations

from collections.abc import Sequence

from sparsecore.errors import SparsecoreError
from sparsecore.tasks.columnar import is_text_column


def _available(t: Sequence[str]) -> str:
    return ", ".join(t) or "(none)"


def _check_same_columns(train_t, train_path, t, path, name: str) -> None:
    if set(t) == set(train_t):
        return
    missing = [c for c in train_t if c not in t]
    extra = [c for c in t if c not in train_t]
    parts = [f"missing {', '.join(missing)}" if missing else "", f"extra {', '.join(extra)}" if extra else ""]
    raise SparsecoreError(
        f"{name} columns do not match train ({'; '.join(x for x in parts if x)})",
        str(path),
        f"give {name} the same columns as {train_path}: {_available(train_t)}",
    )


def _require_columns(t: Sequence[str], path, cols: Sequence[str], name: str) -> None:
    for c in cols:
        if c not in t:
            raise SparsecoreError(
                f"column {c!r} not found in {name} file",
                str(path),
                f"available columns: {_available(t)}; choose others with input_column_names / label_column_name",
            )


def _text_columns(spec, given, ref_ds, ref_path, label_col) -> tuple[str, ...]:
    if given is not None:
        if isinstance(given, str):
            given = [given]
        cols = tuple(str(c) for c in given)
        if not 1 <= len(cols) <= 2:
            raise SparsecoreError(f"need 1 or 2 input columns, got {len(cols)}", "input_column_names",
                                  "give one text column, or two for sentence pairs")
        if len(set(cols)) != len(cols) or label_col in cols:
            raise SparsecoreError("input columns must be distinct and differ from the label column",
                                  f"input_column_names={list(cols)}, label={label_col!r}",
                                  "choose different columns")
        return cols
    if spec is not None:
        return spec.text_columns
    names = [c for c in ref_ds.column_names if c != label_col]
    if "sentence1" in names and "sentence2" in names:
        return ("sentence1", "sentence2")
    for c in ("sentence", "text"):
        if c in names:
            return (c,)
    texty = [c for c in names if is_text_column(ref_ds, c)]
    if not texty:
        raise SparsecoreError("no text column found", str(ref_path),
                              f"pass input_column_names (available columns: {_available(ref_ds.column_names)})")
    return tuple(texty[:2])
