"""Load a GLUE task or a custom dataset into texts + label arrays.

``load_data`` reads files only (see ``files.read_table``); it does not tokenize.

GLUE: ``<glue_dir>/<task>/train.tsv`` (optional) and one ``<split>.tsv`` per eval split
(required); labels are the task's ids (names are accepted too), stsb labels are floats.
Explicit train/validation/test files replace the folder's files; a validation_file
replaces *all* eval splits with one split named "validation" (also for mnli).

Custom (no task): text columns = ``input_column_names``, else sentence1+sentence2, else
sentence, else text, else the first one or two non-label text columns. Label kind:
  JSON lists (JSON value or a cell like ``["a","b"]``) -> multi-label, names = sorted union;
  all numbers, some not integral                     -> regression;
  otherwise                                          -> classification, names = sorted unique
                                                        values (integral numbers numerically,
                                                        "1.0" counts as the class "1").
Label names come from train (from validation when there is no train); eval/test labels
outside them are an error. A test split whose labels are all empty or all -1 (the GLUE
test convention) gets ``labels=None``, as does one without the label column.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sparsecore.errors import SparsecoreError
from sparsecore.tasks.files import read_table
from sparsecore.tasks.glue import MULTI_LABEL, REGRESSION, SINGLE_LABEL, TaskSpec, get_task

GLUE_DIR_ENV = "SPARSECORE_GLUE_DIR"
DEFAULT_LABEL_COLUMN = "label"


@dataclass
class Split:
    texts: list[tuple[str, ...]]  # 1 or 2 strings per example
    labels: np.ndarray | None  # int64 (n,) | float32 (n,) regression | float32 (n, L) multi-hot | None

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class DataBundle:
    task_name: str | None  # GLUE name, or None for custom files
    problem_type: str
    label_names: list[str]  # [] for regression
    text_columns: tuple[str, ...]
    train: Split | None
    evals: dict[str, Split]  # split name -> Split
    test: Split | None


def sample_glue_dir() -> Path:
    """The bundled demo data, a folder laid out like a GLUE dir (``sst2/{train,validation}.tsv``)."""
    return Path(__file__).resolve().parent / "samples"


def default_glue_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """``$SPARSECORE_GLUE_DIR`` as a Path (it must exist), or None when unset/empty."""
    env = os.environ if environ is None else environ
    value = env.get(GLUE_DIR_ENV, "").strip()
    if not value:
        return None
    p = Path(value).expanduser()
    if not p.is_dir():
        raise SparsecoreError(
            f"{GLUE_DIR_ENV} points to a folder that does not exist",
            value,
            f"set {GLUE_DIR_ENV} to a folder laid out like <dir>/<task>/train.tsv, or unset it",
        )
    return p


def load_data(
    task_name: str | None = None,
    glue_dir: str | Path | None = None,
    train_file: str | Path | None = None,
    validation_file: str | Path | None = None,
    test_file: str | Path | None = None,
    input_column_names: list[str] | None = None,
    label_column_name: str | None = None,
) -> DataBundle:
    """Read a GLUE task (``task_name`` + ``glue_dir`` and/or files) or a custom dataset (files only)."""
    spec = get_task(task_name) if task_name is not None else None
    train_path, eval_paths = _resolve_paths(spec, glue_dir, train_file, validation_file)
    test_path = Path(test_file) if test_file is not None else None

    train_t = read_table(train_path) if train_path else None
    eval_ts = {name: read_table(p) for name, p in eval_paths.items()}
    test_t = read_table(test_path) if test_path else None

    label_col = DEFAULT_LABEL_COLUMN if label_column_name is None else str(label_column_name)
    ref_name, ref_path, ref_t = (
        ("train", train_path, train_t) if train_t is not None
        else next((n, eval_paths[n], t) for n, t in eval_ts.items())
    )
    for name, t in eval_ts.items():
        if train_t is not None:
            _check_same_columns(train_t, train_path, t, eval_paths[name], name)

    text_cols = _text_columns(spec, input_column_names, ref_t, ref_path, label_col)
    labeled = [(n, eval_paths[n], t) for n, t in eval_ts.items()]
    if train_t is not None:
        labeled.insert(0, ("train", train_path, train_t))
    for name, p, t in labeled:
        _require_columns(t, p, (*text_cols, label_col), name)
    if test_t is not None:
        _require_columns(test_t, test_path, text_cols, "test")

    if spec is not None:
        problem_type, names = spec.problem_type, list(spec.label_names)
        encode = lambda vals, where: _encode_glue(spec, vals, where)  # noqa: E731
    else:
        problem_type, names, encode = _custom_label_encoder(ref_t[label_col], f"{ref_path}, column {label_col!r}", ref_name)

    def split(t: dict[str, list], p: Path, name: str) -> Split:
        texts = _texts(t, text_cols, p)
        vals = t.get(label_col)
        if name == "test" and (vals is None or _is_unlabeled(vals, names)):
            return Split(texts, None)
        return Split(texts, encode(vals, f"{p}, column {label_col!r}"))

    return DataBundle(
        task_name=spec.name if spec else None,
        problem_type=problem_type,
        label_names=names,
        text_columns=text_cols,
        train=split(train_t, train_path, "train") if train_t is not None else None,
        evals={n: split(t, eval_paths[n], n) for n, t in eval_ts.items()},
        test=split(test_t, test_path, "test") if test_t is not None else None,
    )


# ---------------------------------------------------------------- paths and columns


def _resolve_paths(spec: TaskSpec | None, glue_dir, train_file, validation_file) -> tuple[Path | None, dict[str, Path]]:
    train = Path(train_file) if train_file is not None else None
    evals = {"validation": Path(validation_file)} if validation_file is not None else {}
    if spec is None:
        if glue_dir is not None:
            raise SparsecoreError("glue_dir was given without a task name", str(glue_dir),
                                  "also give the GLUE task name, or use train/validation files alone")
        if train is None and not evals:
            raise SparsecoreError("no data given", "load_data",
                                  "give a GLUE task name with a GLUE folder, or train/validation files")
        return train, evals
    if glue_dir is None:
        if train is None and not evals:
            raise SparsecoreError(f"no data for GLUE task {spec.name!r}", "load_data",
                                  f"give a GLUE folder (or set {GLUE_DIR_ENV}), or train/validation files")
        return train, evals
    root = Path(glue_dir)
    if not root.is_dir():
        raise SparsecoreError("GLUE folder not found", str(root),
                              "give a folder laid out like <dir>/<task>/train.tsv")
    task_dir = root / spec.name
    if train is None and (task_dir / "train.tsv").is_file():
        train = task_dir / "train.tsv"
    if not evals:
        for s in spec.eval_splits:
            p = task_dir / f"{s}.tsv"
            if not p.is_file():
                raise SparsecoreError(f"{spec.name} {s} file not found", str(p),
                                      f"put {s}.tsv in {task_dir}, or pass validation_file")
            evals[s] = p
    return train, evals


def _available(t: Mapping[str, list]) -> str:
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


def _require_columns(t: Mapping[str, list], path: Path, cols: Sequence[str], name: str) -> None:
    for c in cols:
        if c not in t:
            raise SparsecoreError(
                f"column {c!r} not found in {name} file",
                str(path),
                f"available columns: {_available(t)}; choose others with input_column_names / label_column_name",
            )


def _text_columns(spec, given, ref_t, ref_path, label_col) -> tuple[str, ...]:
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
    names = [c for c in ref_t if c != label_col]
    if "sentence1" in names and "sentence2" in names:
        return ("sentence1", "sentence2")
    for c in ("sentence", "text"):
        if c in names:
            return (c,)
    texty = [c for c in names if _is_text_column(ref_t[c])]
    if not texty:
        raise SparsecoreError("no text column found", str(ref_path),
                              f"pass input_column_names (available columns: {_available(ref_t)})")
    return tuple(texty[:2])


def _is_text_column(values: list) -> bool:
    return all(isinstance(v, str) for v in values) and not all(_number(v) is not None for v in values)


def _texts(t: Mapping[str, list], cols: tuple[str, ...], path: Path) -> list[tuple[str, ...]]:
    for c in cols:
        for i, v in enumerate(t[c]):
            if not isinstance(v, str):
                raise SparsecoreError(f"text column {c!r} holds a {type(v).__name__}, not a string",
                                      f"{path}, row {i + 1}", "make every text value a string")
    return list(zip(*(t[c] for c in cols)))


# ---------------------------------------------------------------- label values


def _number(v: Any) -> float | None:
    """A finite number from a JSON number or a numeric string; None otherwise (bools too)."""
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        f = float(v)
    elif isinstance(v, str):
        try:
            f = float(v.strip())
        except ValueError:
            return None
    else:
        return None
    return f if math.isfinite(f) else None


def _as_list(v: Any) -> list | None:
    if isinstance(v, list):
        return v
    if isinstance(v, str) and v.lstrip().startswith("["):
        try:
            out = json.loads(v)
        except json.JSONDecodeError:
            return None
        return out if isinstance(out, list) else None
    return None


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _is_unlabeled(values: list, names: list[str]) -> bool:
    """All labels empty, or all -1 where -1 is not a class (GLUE test files)."""
    if all(_is_missing(v) for v in values):
        return True
    return "-1" not in names and all(_number(v) == -1.0 for v in values)


def _row_error(what: str, where: str, i: int, fix: str) -> SparsecoreError:
    return SparsecoreError(what, f"{where}, row {i + 1}", fix)


def _class_key(v: Any) -> str | None:
    """Canonical class name of a scalar label: integral numbers as ints, strings as-is."""
    if isinstance(v, str):
        f = _number(v)
        return str(int(f)) if f is not None and f.is_integer() else v
    if isinstance(v, bool) or v is None:
        return None if v is None else str(v).lower()
    f = _number(v)
    if f is None:
        return None
    return str(int(f)) if f.is_integer() else repr(f)


def _sorted_names(keys: set[str]) -> list[str]:
    nums = {k: _number(k) for k in keys}
    if all(n is not None and n.is_integer() for n in nums.values()):
        return sorted(keys, key=lambda k: int(nums[k]))
    return sorted(keys)


def _unseen_error(unseen: list[str], names: list[str], where: str) -> SparsecoreError:
    shown = ", ".join(repr(u) for u in unseen[:5]) + (" ..." if len(unseen) > 5 else "")
    known = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "")
    return SparsecoreError(f"labels not seen in the training data: {shown}", where,
                           f"use only known labels ({known}) or add examples of them to train")


def _custom_label_encoder(ref_values: list, where: str, ref_name: str):
    """(problem_type, label_names, encode(values, where)) inferred from the reference split."""
    fix_missing = "give every example a label"
    for i, v in enumerate(ref_values):
        if _is_missing(v):
            raise _row_error(f"empty label in {ref_name} data", where, i, fix_missing)
    lists = [_as_list(v) for v in ref_values]
    if any(x is not None for x in lists):
        i = next(i for i, x in enumerate(lists) if x is None) if None in lists else -1
        if i >= 0:
            raise _row_error("label column mixes lists and single labels", where, i,
                             'write every multi-label value as a JSON list, e.g. ["a","b"] or []')
        names = _sorted_names({k for i, x in enumerate(lists) for k in _list_keys(x, where, i)})
        return MULTI_LABEL, names, lambda vals, w: _encode_multi(vals, names, w)
    nums = [_number(v) for v in ref_values]
    if all(n is not None for n in nums) and not all(n.is_integer() for n in nums):
        return REGRESSION, [], _encode_regression
    keys = []
    for i, v in enumerate(ref_values):
        k = _class_key(v)
        if k is None:
            raise _row_error(f"label of type {type(v).__name__} is not a class", where, i,
                             "use strings or integers as class labels")
        keys.append(k)
    names = _sorted_names(set(keys))
    return SINGLE_LABEL, names, lambda vals, w: _encode_classes(vals, names, w)


def _list_keys(x: list, where: str, i: int) -> list[str]:
    keys = []
    for e in x:
        k = _class_key(e) if isinstance(e, (str, int)) else None
        if k is None or isinstance(e, bool):
            raise _row_error(f"multi-label entry {e!r} is not a string or integer", where, i,
                             'write labels like ["sports", "politics"]')
        keys.append(k)
    return keys


def _encode_classes(values: list, names: list[str], where: str) -> np.ndarray:
    index = {n: j for j, n in enumerate(names)}
    out = np.empty(len(values), dtype=np.int64)
    unseen: list[str] = []
    for i, v in enumerate(values):
        if _is_missing(v):
            raise _row_error("empty label", where, i, "give every example a label")
        k = _class_key(v)
        j = index.get(k) if k is not None else None
        if j is None:
            if str(v) not in unseen:
                unseen.append(str(v))
            continue
        out[i] = j
    if unseen:
        raise _unseen_error(unseen, names, where)
    return out


def _encode_multi(values: list, names: list[str], where: str) -> np.ndarray:
    index = {n: j for j, n in enumerate(names)}
    out = np.zeros((len(values), len(names)), dtype=np.float32)
    unseen: list[str] = []
    for i, v in enumerate(values):
        x = _as_list(v)
        if x is None:
            raise _row_error(f"multi-label value {v!r} is not a JSON list", where, i,
                             'write every label as a JSON list, e.g. ["a","b"] or []')
        for k in _list_keys(x, where, i):
            if k in index:
                out[i, index[k]] = 1.0
            elif k not in unseen:
                unseen.append(k)
    if unseen:
        raise _unseen_error(unseen, names, where)
    return out


def _encode_regression(values: list, where: str) -> np.ndarray:
    out = np.empty(len(values), dtype=np.float32)
    for i, v in enumerate(values):
        f = _number(v)
        if f is None:
            raise _row_error(f"regression label {v!r} is not a finite number", where, i,
                             "give every example a numeric label")
        out[i] = f
    return out


def _encode_glue(spec: TaskSpec, values: list, where: str) -> np.ndarray:
    if spec.problem_type == REGRESSION:
        return _encode_regression(values, where)
    names = spec.label_names
    out = np.empty(len(values), dtype=np.int64)
    for i, v in enumerate(values):
        f = _number(v)
        if f is not None and f.is_integer() and 0 <= f < len(names):
            out[i] = int(f)
        elif isinstance(v, str) and v in names:
            out[i] = names.index(v)
        else:
            raise _row_error(
                f"label {v!r} is not valid for {spec.name}", where, i,
                f"use ids 0..{len(names) - 1} or names ({', '.join(names)})",
            )
    return out
