"""SparseZoo model stubs and download folders, resolved offline against the models people already downloaded.

SparseZoo (shut down in 2025) downloaded a model to ``$SPARSEZOO_MODELS_PATH`` (default ``~/.cache/sparsezoo``):
``<cache>/<model id>/`` for path-style stubs (``zoo:nlp/masked_language_modeling/bert-base/pytorch/huggingface/
wikipedia_bookcorpus/pruned90-none``: domain/sub_domain/architecture[-sub_architecture]/framework/repo/
dataset[-training_scheme]/sparse_tag), ``<cache>/<namespace>/<name>/`` for name-style stubs
(``zoo:bert-base-wikipedia_bookcorpus-pruned90``). A download folder holds ``training/`` (``config.json``,
``pytorch_model.bin``, tokenizer files, ``recipe.yaml``), ``deployment/``, ``model.onnx`` and ``model.md``, whose
YAML front matter names the stub's fields. The model id came from the SparseZoo server, so a path-style stub is
found by reading each cached model's front matter; a name-style stub by its folder name.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

from sparsecore.errors import SparsecoreError

PATH_STUB = re.compile(
    r"^(?P<domain>[.\w]+)/(?P<sub_domain>[.\w]+)/(?P<architecture>[.\w]+?)(-(?P<sub_architecture>[.\w]+))?"
    r"/(?P<framework>[.\w]+)/(?P<repo>[.\w]+)/(?P<dataset>[.\w]+?)(-(?P<training_scheme>[.\w]+))?"
    r"/(?P<sparse_tag>[.\w-]+)$")
NAME_STUB = re.compile(r"^[.\w]+(-[.\w]+)+$")
FIELDS = ("domain", "sub_domain", "architecture", "sub_architecture", "framework", "repo", "dataset", "sparse_tag")


def cache_folders() -> list[Path]:
    """Where SparseZoo kept its downloads: ``$SPARSEZOO_MODELS_PATH`` when set, else ``~/.cache/sparsezoo``."""
    configured = os.environ.get("SPARSEZOO_MODELS_PATH")
    return [Path(configured).expanduser()] if configured else [Path("~/.cache/sparsezoo").expanduser()]


def parse_stub(stub: str) -> dict:
    """The fields of a model stub (``{"name": …}`` for a name-style stub); query parameters are dropped.
    ``SparsecoreError`` for text that is not a stub."""
    body = stub.removeprefix("zoo:").split("?", 1)[0].strip("/")
    match = PATH_STUB.match(body)
    if match:
        return {k: v for k, v in match.groupdict().items() if v is not None}
    if "/" not in body and NAME_STUB.match(body):
        return {"name": body}
    raise SparsecoreError(f"{stub!r} is not a SparseZoo model stub", "--model_name_or_path",
                          "a stub looks like zoo:nlp/masked_language_modeling/bert-base/pytorch/huggingface/"
                          "wikipedia_bookcorpus/pruned90-none")


def front_matter(model_card: Path) -> dict:
    """The YAML front matter of a ``model.md`` (between ``---`` lines, read as recipe cards are); {} when it has
    none or it is unreadable."""
    from sparsecore.recipe.parse import split_front_matter

    try:
        data = yaml.safe_load(split_front_matter(model_card.read_text(encoding="utf-8"), True, str(model_card)))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, SparsecoreError):
        return {}
    return data if isinstance(data, dict) else {}


def _norm(value) -> str:
    return str(value).strip().lower().removesuffix("-none")


def _matches(card: dict, fields: dict) -> bool:
    """Every stub field the card names is equal (a trailing ``-none`` tag ignored), and the card names at least
    the domain, sub-domain, architecture, dataset and sparse tag."""
    wanted = {k: v for k, v in fields.items() if k in FIELDS}
    named = all(k in card for k in ("domain", "sub_domain", "architecture", "dataset", "sparse_tag"))
    return named and all(_norm(card[k]) == _norm(v) for k, v in wanted.items() if k in card)


def _downloads(root: Path) -> list[Path]:
    """Download folders under a cache root: ``<root>/<id>/`` and ``<root>/<namespace>/<name>/``."""
    found = []
    if not root.is_dir():
        return found
    for child in sorted(root.iterdir()):
        if is_download(child):
            found.append(child)
        elif child.is_dir():
            found += [grandchild for grandchild in sorted(child.iterdir()) if is_download(grandchild)]
    return found


def is_download(folder: Path) -> bool:
    """A SparseZoo download folder: ``training/`` with a ``config.json``, or a ``model.md`` beside ``deployment/``."""
    return folder.is_dir() and ((folder / "training" / "config.json").is_file()
                                or ((folder / "model.md").is_file() and (folder / "deployment").is_dir()))


def resolve_stub(stub: str) -> Path:
    """The cached download folder of ``stub``. ``SparsecoreError`` naming the folders looked in when absent."""
    fields = parse_stub(stub)
    roots = cache_folders()
    for root in roots:
        for folder in _downloads(root):
            if "name" in fields:
                if folder.name == fields["name"]:
                    return folder
            elif _matches(front_matter(folder / "model.md"), fields):
                return folder
    looked = ", ".join(str(r) for r in roots)
    raise SparsecoreError(f"{stub!r} is not in the local SparseZoo cache (looked in {looked}; SparseZoo itself is "
                          "gone)", "--model_name_or_path",
                          "point SPARSEZOO_MODELS_PATH at the folder your SparseZoo downloads are in, pass the "
                          "download folder itself, or a local model folder")


def training_folder(folder: Path) -> Path:
    """The loadable model of a download folder: its ``training/`` subfolder when that holds ``config.json``."""
    training = folder / "training"
    return training if (training / "config.json").is_file() and not (folder / "config.json").is_file() else folder
