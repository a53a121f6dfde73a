"""Tokenize a :class:`sparsecore.tasks.Split` with ``Dataset.map(batched=True)``, cached on disk.

The cache file is ``<cache>/features/<fingerprint>.arrow``; the fingerprint hashes everything the features
depend on: the split's content key (source file/stamp, which rows), the tokenizer (its vocabulary, rules and
special tokens, hashed once when loaded), ``max_seq_length``, padding, the text columns, the labels and this
module's ``FEATURES_VERSION`` — so a changed setting never reuses a stale cache, and an unchanged one always
does. ``overwrite_cache`` rebuilds it; ``num_proc`` tokenizes in that many processes (one cache shard each).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from sparsecore.tasks import Split
from sparsecore.tasks.tables import cache_root

FEATURES_VERSION = 1
MAP_BATCH = 1000  # rows per tokenizer call


def tokenizer_fingerprint(tokenizer) -> str:
    """A hash of what makes the tokenizer's output: its class, its backend rules/vocabulary (tokenizer.json,
    with truncation and padding state left out) and its special tokens. Take it before tokenizing anything."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        truncation, padding = backend.truncation, backend.padding  # per-call state, not part of the rules
        backend.no_truncation()
        backend.no_padding()
        try:
            body = backend.to_str()
        finally:
            if truncation:
                backend.enable_truncation(**truncation)
            if padding:
                backend.enable_padding(**padding)
    else:  # a slow tokenizer: its vocabulary
        body = json.dumps(sorted(tokenizer.get_vocab().items()))
    extra = json.dumps([type(tokenizer).__name__, tokenizer.model_input_names, tokenizer.padding_side,
                        tokenizer.truncation_side, str(tokenizer.all_special_tokens),
                        getattr(tokenizer, "do_lower_case", None)])
    return hashlib.sha256((body + extra).encode()).hexdigest()[:16]


def features_fingerprint(split: Split, tokenizer_fp: str, max_seq_length: int, pad_to_max_length: bool,
                         separate: bool = False) -> str:
    """The cache key of a split's features (24 hex digits): a SHA-256 over ``FEATURES_VERSION``, the split's
    content key and length, ``tokenizer_fp`` (:func:`tokenizer_fingerprint`), length and padding settings, the
    text columns, the labels' dtype and bytes and, for ``separate`` features, that mark."""
    labels = b"" if split.labels is None else np.ascontiguousarray(split.labels).tobytes()
    ident = json.dumps([FEATURES_VERSION, split.key, len(split), tokenizer_fp, max_seq_length, pad_to_max_length,
                        list(split.columns), None if split.labels is None else str(split.labels.dtype),
                        hashlib.sha256(labels).hexdigest(), *(["separate", "length"] if separate else [])])
    return hashlib.sha256(ident.encode()).hexdigest()[:24]


def tokenize_split(split: Split, tokenizer, max_seq_length: int, pad_to_max_length: bool,
                   limit: int | None = None, *, tokenizer_fp: str | None = None, cache_dir=None,
                   overwrite_cache: bool = False, num_proc: int | None = None, separate: bool = False):
    """A ``datasets.Dataset`` of input_ids / attention_mask (/ token_type_ids) / labels for the first ``limit``
    rows of ``split``, memory-mapped from the cache (built now unless a matching one is there). ``separate``
    (text pairs of a siamese classifier): each text tokenized alone, the second as input_ids_b /
    attention_mask_b, no token types, and ``length``: the longer text's tokens (what length grouping sorts by)."""
    split = split.head(limit)
    fp = features_fingerprint(split, tokenizer_fp or tokenizer_fingerprint(tokenizer), max_seq_length,
                              pad_to_max_length, separate)
    target = cache_root(cache_dir) / "features" / f"{fp}.arrow"
    target.parent.mkdir(parents=True, exist_ok=True)
    columns, labels = list(split.columns), split.labels
    tokenize = _encoder(tokenizer, max_seq_length, pad_to_max_length)

    def encode(batch: dict, indices: list[int]) -> dict:
        if separate:
            first, second = (tokenize([batch[c]]) for c in columns)
            out = {k: first[k] for k in ("input_ids", "attention_mask")}
            out.update({f"{k}_b": second[k] for k in ("input_ids", "attention_mask")})
            out["length"] = [max(len(a), len(b)) for a, b in zip(first["input_ids"], second["input_ids"])]
        else:
            out = tokenize([batch[c] for c in columns])
        if labels is not None:
            out["labels"] = labels[np.asarray(indices)].tolist()
        return out

    table = split.table
    ds = table.map(encode, batched=True, batch_size=MAP_BATCH, with_indices=True, remove_columns=table.column_names,
                   cache_file_name=str(target), load_from_cache_file=not overwrite_cache, new_fingerprint=fp,
                   num_proc=num_proc if num_proc and num_proc > 1 else None, desc="tokenizing",
                   keep_in_memory=False)
    return ds


def _encoder(tokenizer, max_seq_length: int, pad_to_max_length: bool):
    """``encode(columns) -> {input name: [ids per row]}``, what ``tokenizer(*columns, truncation=True,
    max_length=…, padding=…)`` returns. A fast tokenizer's Rust backend is called directly: the same encodings,
    without the per-row Python dicts the wrapper builds (a third of the tokenization time)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    padding = "max_length" if pad_to_max_length else False
    if backend is None:
        return lambda columns: dict(tokenizer(*columns, truncation=True, max_length=max_seq_length, padding=padding))
    names = tokenizer.model_input_names

    def encode(columns: list[list[str]]) -> dict:
        backend.enable_truncation(max_seq_length, strategy="longest_first", direction=tokenizer.truncation_side)
        if pad_to_max_length:
            backend.enable_padding(length=max_seq_length, pad_id=tokenizer.pad_token_id, pad_token=tokenizer.pad_token,
                                   pad_type_id=tokenizer.pad_token_type_id, direction=tokenizer.padding_side)
        else:
            backend.no_padding()
        inputs = columns[0] if len(columns) == 1 else list(zip(*columns))
        encodings = backend.encode_batch(inputs, add_special_tokens=True)
        out = {"input_ids": [e.ids for e in encodings]}
        if "token_type_ids" in names:
            out["token_type_ids"] = [e.type_ids for e in encodings]
        if "attention_mask" in names:
            out["attention_mask"] = [e.attention_mask for e in encodings]
        return out

    return encode


def cached_features(cache_dir) -> list[Path]:
    """The tokenized feature files in the cache (for tests and ``--overwrite_cache`` checks)."""
    return sorted((cache_root(cache_dir) / "features").glob("*.arrow"))
