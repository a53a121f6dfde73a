"""Load a GLUE task, a custom dataset or a ``datasets`` dataset into Arrow-backed splits + label arrays.

``load_data`` reads sources (files, saved folders, ``--dataset_name``) through ``tables``/``hub``; it does not
tokenize (``sparsecore.workflows.features`` does, cached).

GLUE: ``<glue_dir>/<task>/train.tsv`` (optional) and one ``<split>.tsv`` per eval split
(required); labels are the task's ids (names are accepted too), stsb labels are floats.
Explicit train/validation/test files replace the folder's files; a validation_file
replaces *all* eval splits with one split named "validation" (also for mnli).

Custom (no task): text columns are chosen as in ``columns``; the label kind (multi-label,
regression or classification) is inferred as in ``labels``.
Label names come from train (from validation when there is no train); eval/test labels
outside them are an error. A test split whose labels are all empty or all -1 (the GLUE
test convention) gets ``labels=None``, as does one without the label column. A label column that is a
``datasets.ClassLabel`` (hub and saved datasets) gives the class names.
``validation_ratio`` / ``eval_on_test`` choose the evaluation split (``splitting.choose_eval``).
Rows with an empty text are dropped from train and eval splits before labels are read, kept in test
(``empty_text``); ``DataBundle.notes`` says so.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from sparsecore.errors import SparsecoreError
from sparsecore.tasks.columnar import check_texts, encode_labels, infer, texts, unlabeled
from sparsecore.tasks.columns import _check_same_columns, _require_columns, _text_columns
from sparsecore.tasks.empty_text import check_share, dropped_note, empty_rows, filled, kept_note, renumbered
from sparsecore.tasks.glue import SINGLE_LABEL, TaskSpec, get_task
from sparsecore.tasks.hub import load_splits
from sparsecore.tasks.labels import _custom_label_encoder, _encode_class_ids, _encode_glue
from sparsecore.tasks.splitting import choose_eval
from sparsecore.tasks.tables import Table, cache_root, open_table

GLUE_DIR_ENV = "SPARSECORE_GLUE_DIR"
DEFAULT_LABEL_COLUMN = "label"


@dataclass
class Split:
    """One split: its rows (a memory-mapped ``datasets.Dataset``), text columns and encoded labels."""

    table: Any  # datasets.Dataset of the source's columns
    columns: tuple[str, ...]  # the 1 or 2 text columns
    labels: np.ndarray | None  # int64 (n,) | float32 (n,) regression | float32 (n, L) multi-hot | None
    key: str = ""  # changes with the source's content: part of the tokenization cache's fingerprint

    def __len__(self) -> int:
        return len(self.table)

    @property
    def texts(self) -> list[tuple[str, ...]]:
        """Every row's texts as a tuple (reads the whole column: use ``head`` first on large splits)."""
        return texts(self.table, self.columns)

    def select(self, indices) -> Split:
        """The rows at ``indices`` (a new split; its key says which rows)."""
        indices = np.asarray(indices, dtype=np.int64)
        digest = hashlib.sha256(indices.tobytes()).hexdigest()[:16]
        return Split(self.table.select(indices), self.columns,
                     None if self.labels is None else self.labels[indices], f"{self.key}[{digest}]")

    def head(self, n: int | None) -> Split:
        """The first ``n`` rows (all when ``n`` is None or not smaller)."""
        if n is None or n >= len(self):
            return self
        return Split(self.table.select(range(n)), self.columns, None if self.labels is None else self.labels[:n],
                     f"{self.key}[:{n}]")


@dataclass
class DataBundle:
    task_name: str | None  # GLUE name, or None for custom files
    problem_type: str
    label_names: list[str]  # [] for regression
    text_columns: tuple[str, ...]
    train: Split | None
    evals: dict[str, Split]  # split name -> Split
    test: Split | None
    notes: tuple[str, ...] = ()  # what loading decided (rows dropped), for the caller to show as notes


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
    dataset_name: str | None = None,
    dataset_config_name: str | None = None,
    validation_ratio: float | None = None,
    eval_on_test: bool = False,
    cache_dir: str | Path | None = None,
    overwrite_cache: bool = False,
) -> DataBundle:
    """Read a GLUE task (``task_name`` + ``glue_dir`` and/or files), a custom dataset (files only) or a whole
    dataset (``dataset_name``: a save_to_disk folder, a folder of data files, a hub id). Sources become
    memory-mapped Arrow tables (:mod:`sparsecore.tasks.tables`, cached under ``cache_dir``)."""
    spec = get_task(task_name) if task_name is not None else None
    cache = cache_root(cache_dir)
    if dataset_name is not None:
        sources = _dataset_sources(spec, dataset_name, dataset_config_name, cache_dir,
                                   glue_dir, train_file, validation_file, test_file)
    else:
        train_path, eval_paths = _resolve_paths(spec, glue_dir, train_file, validation_file)
        paths = {**({"train": train_path} if train_path else {}), **eval_paths,
                 **({"test": Path(test_file)} if test_file is not None else {})}
        sources = {name: (str(p), open_table(p, cache, overwrite_cache)) for name, p in paths.items()}
    train_src = sources.pop("train", None)
    test_src = sources.pop("test", None)
    eval_srcs = sources

    label_col = DEFAULT_LABEL_COLUMN if label_column_name is None else str(label_column_name)
    ref_name, (ref_path, ref) = ("train", train_src) if train_src is not None else next(iter(eval_srcs.items()))
    for name, (path, t) in eval_srcs.items():
        if train_src is not None:
            _check_same_columns(train_src[1].ds.column_names, train_src[0], t.ds.column_names, path, name)

    text_cols = _text_columns(spec, input_column_names, ref.ds, ref_path, label_col)
    labeled = [("train", train_src)] if train_src is not None else []
    labeled += list(eval_srcs.items())
    for name, (path, t) in labeled:
        _require_columns(t.ds.column_names, path, (*text_cols, label_col), name)
    if test_src is not None:
        _require_columns(test_src[1].ds.column_names, test_src[0], text_cols, "test")

    notes: list[str] = []
    kept: dict[str, np.ndarray] = {}  # split name -> the source rows kept, where empty rows were dropped
    train_src = _without_empty(train_src, "train", text_cols, notes, kept) if train_src is not None else None
    eval_srcs = {n: _without_empty(src, n, text_cols, notes, kept) for n, src in eval_srcs.items()}
    test_src = _without_empty(test_src, "test", text_cols, notes, kept) if test_src is not None else None
    ref = (train_src if train_src is not None else eval_srcs[ref_name])[1]

    with _source_rows(kept.get(ref_name)):
        problem_type, names, encode = _label_encoder(spec, ref.ds, label_col, f"{ref_path}, column {label_col!r}",
                                                     ref_name)

    def split(src: tuple[str, Table], name: str) -> Split:
        path, t = src
        if label_col not in t.ds.column_names or (name == "test" and unlabeled(t.ds, label_col, names)):
            return Split(t.ds, text_cols, None, t.key)
        with _source_rows(kept.get(name)):
            labels = encode_labels(t.ds, label_col, encode, f"{path}, column {label_col!r}")
        return Split(t.ds, text_cols, labels, t.key)

    train = split(train_src, "train") if train_src is not None else None
    evals = {n: split(src, n) for n, src in eval_srcs.items()}
    test = split(test_src, "test") if test_src is not None else None
    train, evals = choose_eval(train, evals, test, problem_type, validation_ratio, eval_on_test)
    return DataBundle(task_name=spec.name if spec else None, problem_type=problem_type, label_names=names,
                      text_columns=text_cols, train=train, evals=evals, test=test, notes=tuple(notes))


def _without_empty(src: tuple[str, Table], name: str, cols: tuple[str, ...], notes: list[str],
                   kept: dict[str, np.ndarray]) -> tuple[str, Table]:
    """``src`` after its texts are checked: rows with an empty text dropped (the test split: kept, nulls read as
    ``""``, refused only when every row is empty), a note in ``notes`` when there were any, the kept rows in
    ``kept[name]``. See ``empty_text``."""
    path, t = src
    check_texts(t.ds, cols, path, t.non_strings)
    empty = empty_rows(t.ds, cols)
    n_empty, n = int(empty.sum()), len(empty)
    if n_empty == 0:
        return src
    if name == "test":
        check_share(n_empty, n, cols, name, path, everything=True)
        notes.append(kept_note(n_empty, n, cols, path))
        return path, replace(t, ds=filled(t.ds, cols), key=f"{t.key}[nulls as empty]")
    check_share(n_empty, n, cols, name, path)
    notes.append(dropped_note(n_empty, n, cols, name, path))
    kept[name] = keep = np.flatnonzero(~empty)
    return path, replace(t, ds=t.ds.select(keep), key=f"{t.key}[non-empty {','.join(cols)}]")


@contextmanager
def _source_rows(kept: np.ndarray | None):
    """Errors raised inside name the source's row rather than the row among the ``kept`` ones."""
    try:
        yield
    except SparsecoreError as e:
        if kept is None:
            raise
        raise renumbered(e, kept) from None


def _label_encoder(spec: TaskSpec | None, ds, label_col: str, where: str, ref_name: str):
    """(problem_type, label names, encode(values, where)) from the task, the column's ClassLabel, or its values."""
    if spec is not None:
        return spec.problem_type, list(spec.label_names), lambda vals, w: _encode_glue(spec, vals, w)
    feature = ds.features.get(label_col)
    names = getattr(feature, "names", None)  # a datasets.ClassLabel: the dataset names its classes
    if names:
        return SINGLE_LABEL, list(names), lambda vals, w: _encode_class_ids(vals, list(names), w)
    return infer(ds, label_col, _custom_label_encoder, where, ref_name)


def _dataset_sources(spec, name, config, cache_dir, glue_dir, *files) -> dict[str, tuple[str, Table]]:
    """Split name → (where, Table) of ``--dataset_name``: train, the eval splits, test."""
    if glue_dir is not None or any(f is not None for f in files):
        raise SparsecoreError("--dataset_name was given with data files or a GLUE folder", f"--dataset_name {name}",
                              "give the data one way: --dataset_name, or --glue_dir/--train_file/...")
    splits = load_splits(name, config, cache_dir)
    where = lambda s: f"{name}[{s}]"  # noqa: E731
    wanted = spec.eval_splits if spec is not None else tuple(s for s in ("validation",) if s in splits)
    missing = [s for s in wanted if s not in splits]
    if missing:
        raise SparsecoreError(f"dataset has no {missing[0]} split (it has {', '.join(splits)})",
                              f"--dataset_name {name}",
                              "use a dataset that has it, or give the task's files with --glue_dir")
    out = {"train": (where("train"), splits["train"])} if "train" in splits else {}
    out.update({s: (where(s), splits[s]) for s in wanted})
    test = next((s for s in ("test", "test_matched") if s in splits), None)
    if test is not None:
        out["test"] = (where(test), splits[test])
    if not out.keys() - {"test"}:
        raise SparsecoreError(f"dataset has no train or validation split (it has {', '.join(splits)})",
                              f"--dataset_name {name}", "give a dataset with a train and/or validation split")
    return out


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

