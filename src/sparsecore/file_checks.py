"""Checks on files a run reads (model weights, checkpoints) before anything is written: a truncated, corrupt or
hostile file is one clear error, never a traceback from deep inside a loader. Nothing is ever unpickled
beyond tensors (``torch.load(weights_only=True)``)."""

from __future__ import annotations

import errno
import json
import pickle
import tempfile
from collections.abc import Iterator
from pathlib import Path

from sparsecore.errors import SparsecoreError

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


def check_safetensors(path: Path, where: str, fix: str) -> None:
    """The file's header parses and its data covers every tensor (a truncated file fails here)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt"):
            pass
    except Exception as exc:  # SafetensorError (Rust) has no importable base in every version
        raise SparsecoreError(f"{path.name} is truncated or corrupt ({str(exc).splitlines()[0]})", where, fix) from None


def check_torch_file(path: Path, where: str) -> None:
    """A ``torch.save`` file that holds only tensors, plain containers and numpy arrays (what the HF Trainer's
    ``weights_only=True`` loads with its numpy allowlist for RNG states)."""
    import numpy as np
    import torch

    core = getattr(np, "_core", None) or np.core
    numpy_state = [core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]  # RNG states
    try:
        with torch.serialization.safe_globals(numpy_state):
            torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise SparsecoreError(f"refusing to unpickle {path.name}: it holds objects other than tensors ({first})",
                              where, "convert it to safetensors, or delete it if it is not needed") from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise SparsecoreError(f"{path.name} is truncated or corrupt ({type(exc).__name__})", where,
                              "replace it with a complete copy") from None


def read_json(path: Path, where: str, fix: str) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SparsecoreError(f"{path.name} is not valid JSON ({type(exc).__name__})", where, fix) from None


def read_json_object(path: Path, where: str, fix: str) -> dict:
    """:func:`read_json` of a file that must hold a JSON object (config.json, sparsecore records)."""
    data = read_json(path, where, fix)
    if not isinstance(data, dict):
        raise SparsecoreError(f"{path.name} is not a JSON object", where, fix)
    return data


def check_weights(folder: Path, where: str) -> None:
    """A model folder holds complete weights: safetensors (single or sharded) or a tensors-only ``.bin``."""
    fix = "pass a folder saved by save_pretrained (config.json + model.safetensors)"
    present = [name for name in WEIGHT_FILES if (folder / name).is_file()]
    if not present:
        raise SparsecoreError("model folder has no weights (model.safetensors or pytorch_model.bin)", where, fix)
    name = present[0]
    if name.endswith(".index.json"):
        index = read_json(folder / name, where, fix)
        shards = sorted(set((index.get("weight_map") or {}).values())) if isinstance(index, dict) else []
        if not shards:
            raise SparsecoreError(f"{name} lists no weight files", where, fix)
        for shard in shards:
            if not (folder / shard).is_file():
                raise SparsecoreError(f"weight shard {shard} is missing", where, fix)
            if shard.endswith(".safetensors"):
                check_safetensors(folder / shard, where, fix)
            else:
                check_torch_file(folder / shard, where)
    elif name.endswith(".safetensors"):
        check_safetensors(folder / name, where, fix)
    else:
        check_torch_file(folder / name, where)


TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "spiece.model", "sentencepiece.bpe.model", "vocab.json")


def check_tokenizer_files(folder: Path, where: str) -> None:
    """A local model folder holds a real tokenizer: without one, transformers quietly builds a 5-token
    tokenizer that maps every word to [UNK] (training then runs to the end at chance accuracy)."""
    if folder.is_dir() and not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise SparsecoreError(f"model folder has no tokenizer ({', '.join(TOKENIZER_FILES[:2])}, …)", where,
                              "save the tokenizer into the folder (tokenizer.save_pretrained) or pass --tokenizer_name")


def check_vocabulary(tokenizer_size: int, vocab_size: int | None, where: str) -> None:
    """The tokenizer fits the model's embedding table: no id beyond it, and not a placeholder a fraction of its
    size (the table would be mostly unreachable: the tokenizer belongs to another model)."""
    if vocab_size and (tokenizer_size > vocab_size or tokenizer_size < vocab_size // 2):
        raise SparsecoreError(f"the tokenizer has {tokenizer_size:,} tokens but the model's embedding table has "
                              f"{vocab_size:,}", where, "use the tokenizer the model was trained with")


def check_writable(path: Path, where: str, fix: str = "choose a place you can write to") -> None:
    """A file can be created at ``path`` (or inside it, for a folder): tried for real in the nearest existing
    folder, since permission bits say little when running as root."""
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() and parent != path:  # a file where a folder should be
        raise SparsecoreError(f"{path} is not writable ({parent} is a file)", where, fix)
    if not parent.is_dir():  # path is an existing file: it would be replaced inside its folder
        parent = parent.parent
    try:
        tempfile.TemporaryDirectory(dir=parent).cleanup()
    except OSError as exc:
        raise SparsecoreError(f"{path} is not writable ({parent}: {exc.strerror})", where, fix) from None


def _chain(exc: BaseException | None, depth: int = 8) -> Iterator[BaseException]:
    """``exc`` and what caused it (``__cause__``, else ``__context__``), at most ``depth`` of them."""
    while exc is not None and depth > 0:
        yield exc
        exc, depth = exc.__cause__ or exc.__context__, depth - 1


def is_disk_full(exc: BaseException) -> bool:
    """``exc`` (or what caused it) is "no space left on device" — writers wrap it as RuntimeError and others."""
    return any((isinstance(e, OSError) and e.errno == errno.ENOSPC) or "No space left on device" in str(e)
               for e in _chain(exc))


def write_refused(exc: BaseException) -> OSError | None:
    """The ``OSError`` in ``exc``'s chain that is a read-only file system or a refused permission, else None."""
    return next((e for e in _chain(exc) if isinstance(e, OSError) and e.errno in (errno.EROFS, errno.EACCES,
                                                                                  errno.EPERM)), None)


def snapshot(folder: Path) -> set[Path]:
    """Every path below ``folder`` now (to remove later only what a run added)."""
    return set(folder.rglob("*")) if folder.is_dir() else set()


def remove_added(folder: Path, before: set[Path]) -> None:
    """Delete what appeared below ``folder`` since :func:`snapshot` (deepest first), keeping what was there."""
    import shutil

    if not folder.exists():
        return
    for path in sorted(snapshot(folder) - before, key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    if not before and not any(folder.iterdir()):
        folder.rmdir()
