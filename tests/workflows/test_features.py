"""Tokenization through Dataset.map: cached by fingerprint, rebuilt when anything it depends on changes."""

from __future__ import annotations

import pytest

from sparsecore.adapters.models import load_tokenizer, minilm_path
from sparsecore.tasks import load_data, sample_glue_dir
from sparsecore.workflows.features import cached_features, tokenize_split, tokenizer_fingerprint


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(str(minilm_path()))


@pytest.fixture()
def split(tmp_path):
    return load_data("sst2", sample_glue_dir(), cache_dir=tmp_path).evals["validation"]


def test_features_match_a_direct_tokenizer_call(split, tokenizer, tmp_path):
    ds = tokenize_split(split, tokenizer, 32, False, 50, cache_dir=tmp_path)
    direct = tokenizer([t for (t,) in split.head(50).texts], truncation=True, max_length=32)
    assert ds["input_ids"][:] == direct["input_ids"] and ds["attention_mask"][:] == direct["attention_mask"]
    assert ds["labels"][:] == split.labels[:50].tolist()
    padded = tokenize_split(split, tokenizer, 32, True, 5, cache_dir=tmp_path)
    direct = tokenizer([t for (t,) in split.head(5).texts], truncation=True, max_length=32, padding="max_length")
    assert {len(x) for x in padded["input_ids"][:]} == {32} and padded["input_ids"][:] == direct["input_ids"]
    assert padded["attention_mask"][:] == direct["attention_mask"]


def test_sentence_pairs_match_a_direct_tokenizer_call(tokenizer, tmp_path, glue_dir):
    pairs = load_data("mrpc", glue_dir, cache_dir=tmp_path).evals["validation"].head(64)
    ds = tokenize_split(pairs, tokenizer, 40, False, cache_dir=tmp_path)  # truncation cuts the longer side
    a, b = zip(*pairs.texts)
    direct = tokenizer(list(a), list(b), truncation=True, max_length=40)
    for name in ("input_ids", "token_type_ids", "attention_mask"):
        assert ds[name][:] == direct[name], name


def test_same_settings_reuse_the_cache_and_changes_never_do(split, tokenizer, tmp_path):
    calls = []
    fp = tokenizer_fingerprint(tokenizer)

    def run(**kw):
        before = set(cached_features(tmp_path))
        args = dict(split=split, tokenizer=tokenizer, max_seq_length=32, pad_to_max_length=False, limit=100,
                    tokenizer_fp=fp, cache_dir=tmp_path) | kw
        ds = tokenize_split(**args)
        calls.append(set(cached_features(tmp_path)) - before)
        return ds

    first = run()
    assert len(calls[-1]) == 1  # built
    run()
    assert calls[-1] == set()  # same settings: read back, nothing new written
    for change in (dict(max_seq_length=16), dict(pad_to_max_length=True), dict(limit=99),
                   dict(split=split.select(range(100, 0, -1))), dict(tokenizer_fp="another tokenizer")):
        run(**change)
        assert len(calls[-1]) == 1, change  # a changed setting: a new cache file
    cased = load_tokenizer(str(minilm_path()))
    cased.backend_tokenizer.normalizer = type(cased.backend_tokenizer.normalizer)(lowercase=False)
    assert tokenizer_fingerprint(cased) != fp
    stamp = next(iter(calls[0])).stat().st_mtime_ns
    run(overwrite_cache=True)
    assert next(iter(calls[0])).stat().st_mtime_ns != stamp  # rebuilt in place
    assert run()["input_ids"][:] == first["input_ids"][:]


def test_fingerprint_ignores_the_truncation_state(tokenizer):
    before = tokenizer_fingerprint(tokenizer)
    tokenizer(["a sentence"], truncation=True, max_length=7)
    assert tokenizer_fingerprint(tokenizer) == before


def test_two_workers_give_the_same_features(split, tokenizer, tmp_path):
    one = tokenize_split(split, tokenizer, 64, False, None, cache_dir=tmp_path / "a")
    two = tokenize_split(split, tokenizer, 64, False, None, cache_dir=tmp_path / "b", num_proc=2)
    assert len(two) == len(split) and two["input_ids"][:] == one["input_ids"][:]
    assert two["labels"][:] == one["labels"][:]
