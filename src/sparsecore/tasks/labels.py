"""Label kinds and label encoding for ``load_data``.

Custom datasets (no GLUE task) get their label kind from the reference split:
  JSON lists (JSON value or a cell like ``["a","b"]``) -> multi-label, names = sorted union;
  all numbers, some not integral                     -> regression;
  otherwise                                          -> classification, names = sorted unique
                                                        values (integral numbers numerically,
                                                        "1.0" counts as the class "1").
GLUE tasks use the task's ids (names are accepted too); stsb labels are floats.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from sparsecore.errors import SparsecoreError
from sparsecore.tasks.glue import MULTI_LABEL, REGRESSION, SINGLE_LABEL, TaskSpec


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
    _check_one_kind(keys, ref_values, where)
    names = _sorted_names(set(keys))
    if len(names) == 1:  # a 1-label classifier trains to loss 0.0 and accuracy 1.0: useless, and silent
        raise SparsecoreError(f"the label column holds one value ({names[0]!r}) in all {len(keys)} {ref_name} rows",
                              where, "a classifier needs examples of at least two classes")
    return SINGLE_LABEL, names, lambda vals, w: _encode_classes(vals, names, w)


def _kind(key: str) -> str:
    if key.lower() in ("true", "false"):
        return "booleans"
    return "numbers" if _number(key) is not None else "words"


def _check_one_kind(keys: list[str], values: list, where: str) -> None:
    """Class labels are all numbers, all words or all booleans: a mix (``0``, ``positive``, ``true``) is almost
    always two encodings of the same classes, which would silently train as extra classes."""
    first: dict[str, int] = {}
    for i, key in enumerate(keys):
        first.setdefault(_kind(key), i)
    if len(first) > 1:
        kinds = sorted(first, key=first.get)
        shown = ", ".join(repr(str(values[first[k]])) for k in kinds)
        raise _row_error(f"label column mixes {' and '.join(kinds)} ({shown})", where, first[kinds[1]],
                         "use one encoding for every class, e.g. all 0/1 or all negative/positive")


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


def _encode_class_ids(values: list, names: list[str], where: str) -> np.ndarray:
    """Labels of a ``datasets.ClassLabel`` column: ids 0..L-1 (names are accepted too)."""
    out = np.empty(len(values), dtype=np.int64)
    for i, v in enumerate(values):
        if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < len(names):
            out[i] = v
        elif isinstance(v, str) and v in names:
            out[i] = names.index(v)
        else:
            raise _row_error(f"label {v!r} is not one of the dataset's {len(names)} classes", where, i,
                             f"use ids 0..{len(names) - 1} or names ({', '.join(names[:20])})")
    return out
