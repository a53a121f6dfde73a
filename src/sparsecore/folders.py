"""The two folder formats sparsecore writes, each with one owner: the trained folder and the deployment folder.

A **trained folder** (written by ``train``/``oneshot``) is a Hugging Face model folder (config.json, weights,
tokenizer) plus ``sparsecore_training.json`` (:class:`TrainingInfo`: what the model was trained on), the
recipe, the sparsity report and, when quantized, the quantization state. A **deployment folder** (written by
``export`` into ``<trained>/deployment/``) holds model.onnx, config.json, tokenizer files, validation.json and
``sparsecore_deployment.json`` (:class:`DeploymentInfo`: how to feed the graph).

Both JSON files carry ``format_version``. A reader accepts every version up to :data:`FORMAT_VERSION` (a file
without the field is version 1, what sparsecore wrote before the field existed) and refuses a newer one with
an error naming the upgrade, instead of misreading fields it does not know.
"""

from __future__ import annotations

import json
import os
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import ClassVar, TypeVar

from sparsecore.errors import SparsecoreError
from sparsecore.file_checks import read_json_object

FORMAT_VERSION = 1
DEPLOYMENT = "deployment"  # the deployment folder's name inside a trained folder

T = TypeVar("T", bound="_Record")


@dataclass(frozen=True)
class _Record:
    FILE: ClassVar[str]
    WRITER: ClassVar[str]  # what writes the file, for the error messages

    def write(self, folder: str | Path) -> Path:
        """Write the record into ``folder`` (through a temporary file: a reader never sees half of it)."""
        path = Path(folder) / self.FILE
        tmp = path.with_name(f".{self.FILE}.tmp")
        tmp.write_text(json.dumps({"format_version": FORMAT_VERSION, **asdict(self)}, indent=1))
        os.replace(tmp, path)
        return path

    @classmethod
    def read(cls: type[T], folder: str | Path) -> T | None:
        """The record in ``folder``, or None when the folder has no such file."""
        path = Path(folder) / cls.FILE
        if not path.is_file():
            return None
        fix = f"re-run {cls.WRITER}, or delete the file"
        data = read_json_object(path, str(path), fix)
        version = data.pop("format_version", 1)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise SparsecoreError(f"{cls.FILE} has format_version {version!r}", str(path), fix)
        if version > FORMAT_VERSION:
            raise SparsecoreError(f"{cls.FILE} has format_version {version}, written by a newer sparsecore (this one "
                                  f"reads up to {FORMAT_VERSION})", str(path), "upgrade sparsecore to read it")
        values = {}
        for f in fields(cls):
            if f.name not in data:
                if f.default is not MISSING:  # a field with a default: an older writer may have left it out
                    continue
                raise SparsecoreError(f"{cls.FILE} lacks {f.name!r}", str(path), fix)
            values[f.name] = _checked(data[f.name], f, path, fix)
        return cls(**values)


def _checked(value, f, path: Path, fix: str):
    """``value`` converted to the field's declared type (JSON lists become tuples), or a one-line error."""
    kind = str(f.type)
    ok = {"str": isinstance(value, str), "int": isinstance(value, int) and not isinstance(value, bool),
          "bool": isinstance(value, bool), "str | None": value is None or isinstance(value, str),
          "tuple[str, ...]": isinstance(value, list) and all(isinstance(v, str) for v in value)}[kind]
    if not ok:
        raise SparsecoreError(f"{f.name} in {path.name} is {value!r}, not {kind}", str(path), fix)
    return tuple(value) if kind.startswith("tuple") else value


@dataclass(frozen=True)
class TrainingInfo(_Record):
    """``sparsecore_training.json``: what a trained folder's model was trained on (read by export)."""

    FILE: ClassVar[str] = "sparsecore_training.json"
    WRITER: ClassVar[str] = "sparsecore.transformers.text_classification"
    task_name: str | None
    problem_type: str
    label_names: tuple[str, ...]
    text_columns: tuple[str, ...]
    max_seq_length: int
    recipe: str | None = None
    model_name_or_path: str | None = None
    pair_encoding: str = "cross"  # "siamese": each text of a pair encoded alone

    @property
    def text_pairs(self) -> bool:
        return len(self.text_columns) == 2


@dataclass(frozen=True)
class DeploymentInfo(_Record):
    """``sparsecore_deployment.json``: how a deployment's graph is fed (read by the Pipeline)."""

    FILE: ClassVar[str] = "sparsecore_deployment.json"
    WRITER: ClassVar[str] = "sparsecore.transformers.export_onnx"
    task: str = "text-classification"
    sequence_length: int = 128
    onnx_file_name: str = "model.onnx"
    text_pairs: bool = False
    pair_encoding: str = "cross"  # "siamese": the graph takes each text alone (input_ids_b, attention_mask_b)
