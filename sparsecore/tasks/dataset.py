"""Load a GLUE task or a custom dataset into texts + label arrays.

``load_data`` reads files only (see ``files.read_table``); it does not tokenize.

GLUE: ``<glue_dir>/<task>/train.tsv`` (optional) and one ``<split>.tsv`` per eval split
(required); labels are the task's ids (names are accepted too), stsb labels are floats.
Explicit train/validation/test files replace the folder's files; a validation_file
replaces *all* eval splits with one split named "validation" (also for mnli).

Custom (no task): text columns are chosen as in ``columns``; the label kind (multi-label,
regression or classification) is inferred as in ``labels``.
Label names come from train (from validation when there is no train); eval/test labels
outside them are an error. A test split whose labels are all empty or all -1 (the GLUE
test convention) gets ``labels=None``, as does one without the label column.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sparsecore.errors import SparsecoreError
from sparsecore.tasks.columns import _check_same_columns, _require_columns, _text_columns, _texts
from sparsecore.tasks.files import read_table
from sparsecore.tasks.glue import TaskSpec, get_task
from sparsecore.tasks.labels import _custom_label_encoder, _encode_glue, _is_unlabeled

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


# ---------------------------------------------------------------- paths


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

