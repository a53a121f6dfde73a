"""Panel widths timed on this host and kept on disk (sparsecore.kernels.panel_tuning)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sparsecore.kernels import panel_tuning
from sparsecore.kernels.fp32_packing import pack_rows, panel_columns
from sparsecore.kernels.fp32_rows import fp32_linear_t, token_blocks
from sparsecore.kernels.isa import float_path


def _sparse(n: int, k: int, density: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, k)) * (rng.random((n, k)) < density)).astype(np.float32)


def _timings(seconds):
    """A stand-in for ``time_panels``: ``seconds(width, tokens)`` per candidate."""
    return lambda w, kind, path, widths, tokens, *rounds: {x: seconds(x, tokens) for x in widths}


@pytest.fixture
def tuning(tmp_path, monkeypatch):
    """Timing on, the cache file in a fresh folder."""
    monkeypatch.setenv("SPARSECORE_TUNE", "1")
    monkeypatch.setenv("SPARSECORE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / panel_tuning.FILE


@pytest.mark.parametrize("k, per_row, kind", [(768, 154, "csr"), (3072, 614, "csr"), (384, 77, "block4"),
                                               (100, 30, "csr"), (4096, 100, "block4")])
def test_candidates_hold_the_rule_and_one_panel_and_stay_within_k(k, per_row, kind):
    from sparsecore.kernels.fp32_packing import TOKENS, l2_bytes

    widths = panel_tuning.candidates(k, per_row, kind)
    assert widths == sorted(set(widths))
    assert panel_columns(k, per_row, kind) in widths
    limit = max(128, l2_bytes() // 2 // (TOKENS * 4))
    assert (k in widths) == (k <= limit or panel_columns(k, per_row, kind) == k)
    assert all(0 < w <= k for w in widths)
    assert all(w <= limit or w == panel_columns(k, per_row, kind) for w in widths)


def test_off_and_small_linears_use_the_rule(tuning, monkeypatch):
    w = _sparse(1024, 768, 0.3)
    monkeypatch.setenv("SPARSECORE_TUNE", "off")
    assert panel_tuning.panel_for(w, "csr", float_path()) is None
    monkeypatch.setenv("SPARSECORE_TUNE", "1")
    assert panel_tuning.panel_for(_sparse(128, 768, 0.3), "csr", float_path()) is None  # under MIN_WORK
    assert not tuning.exists()


def test_timed_choice_is_cached_and_read_back(tuning, monkeypatch):
    w = _sparse(1024, 768, 0.3)
    path = float_path()
    seen = {}

    def fake(w_, kind, path_, widths, tokens, *rounds):  # a host where 192 columns are fastest
        seen["widths"] = widths
        seen.setdefault("tokens", []).append(tokens)
        return {width: 1.0 + abs(width - 192) for width in widths}

    monkeypatch.setattr(panel_tuning, "time_panels", fake)
    assert panel_tuning.panel_for(w, "csr", path) == 192
    assert seen["widths"] == panel_tuning.candidates(768, np.count_nonzero(w) / 1024, "csr")
    entry = json.loads(tuning.read_text())
    key = panel_tuning.shape_key(path, "csr", 1024, 768, np.count_nonzero(w) / 1024,
                                 __import__("numba").get_num_threads())
    assert seen["tokens"] == list(panel_tuning.TUNE_TOKENS)
    assert entry[key]["panel"] == 192 and set(entry[key]["ms"]) == {str(t) for t in panel_tuning.TUNE_TOKENS}
    assert all(set(ms) == {str(x) for x in seen["widths"]} for ms in entry[key]["ms"].values())

    def fail(*args, **kwargs):
        raise AssertionError("timed again although the choice is cached")

    monkeypatch.setattr(panel_tuning, "time_panels", fail)
    assert panel_tuning.panel_for(_sparse(1024, 768, 0.3, seed=1), "csr", path) == 192  # same shape, same density step
    monkeypatch.setattr(panel_tuning, "time_panels", fake)
    assert panel_tuning.panel_for(_sparse(1024, 768, 0.6), "csr", path) == 192  # another density: timed, added
    assert len(json.loads(tuning.read_text())) == 2


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"x": 1}'])
def test_a_damaged_file_is_timed_over(tuning, monkeypatch, content):
    tuning.parent.mkdir(parents=True)
    tuning.write_text(content)
    monkeypatch.setattr(panel_tuning, "time_panels", _timings(lambda x, t: float(x)))
    assert panel_tuning.panel_for(_sparse(1024, 768, 0.3), "csr", float_path()) == 64
    entries = json.loads(tuning.read_text()).values()
    assert any(v["panel"] == 64 for v in entries if isinstance(v, dict) and "panel" in v)


def test_a_cached_width_wider_than_k_is_ignored(tuning, monkeypatch):
    w = _sparse(1024, 768, 0.3)
    key = panel_tuning.shape_key(float_path(), "csr", 1024, 768, np.count_nonzero(w) / 1024,
                                 __import__("numba").get_num_threads())
    tuning.parent.mkdir(parents=True)
    tuning.write_text(json.dumps({key: {"panel": 4096}}))
    monkeypatch.setattr(panel_tuning, "time_panels", _timings(lambda x, t: float(x)))
    assert panel_tuning.panel_for(w, "csr", float_path()) == 64


def test_an_unwritable_cache_still_gives_a_choice(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("SPARSECORE_TUNE", "1")
    monkeypatch.setenv("SPARSECORE_CACHE_DIR", str(blocker / "below"))  # a folder under a file: cannot exist
    monkeypatch.setattr(panel_tuning, "time_panels", _timings(lambda x, t: 1.0 / x))
    assert panel_tuning.panel_for(_sparse(1024, 768, 0.3), "csr", float_path()) == 768


@pytest.mark.parametrize("kind", ["csr", "block4"])
def test_real_timing_picks_a_candidate_whose_products_match(tuning, kind):
    rng = np.random.default_rng(3)
    if kind == "block4":
        w = rng.standard_normal((768, 1024)).astype(np.float32) * np.repeat(rng.random((768, 256)) < 0.3, 4, axis=1)
    else:
        w = _sparse(768, 1024, 0.3)
    path = float_path()
    per_row = np.count_nonzero(w) / 768
    seconds = panel_tuning.time_panels(w, kind, path, panel_tuning.candidates(1024, per_row, kind), rounds=1)
    assert all(s > 0 for s in seconds.values())
    width = panel_tuning.panel_for(w, kind, path)
    assert width in panel_tuning.candidates(1024, per_row, kind)
    x = rng.standard_normal((1024, 100)).astype(np.float32)
    got = fp32_linear_t(pack_rows(w, kind, panel=width), token_blocks(x), 100, path=path)
    np.testing.assert_allclose(got, w.astype(np.float64) @ x, rtol=1e-4, atol=1e-3)


def test_linear_build_packs_with_the_tuned_width(tuning, monkeypatch):
    from sparsecore.deploy.linears import LinearT

    monkeypatch.setattr(panel_tuning, "time_panels", _timings(lambda x, t: 1.0 + abs(x - 256)))
    w = _sparse(1024, 768, 0.3)
    linear = LinearT.build(w, np.zeros(1024, np.float32))
    if linear.token_blocked:
        assert linear.weight.panel == 256
    monkeypatch.setenv("SPARSECORE_TUNE", "0")
    ruled = LinearT.build(w, np.zeros(1024, np.float32))
    if ruled.token_blocked:
        assert ruled.weight.panel == pack_rows(w, "csr").panel


def test_the_choice_weighs_both_token_counts(tuning, monkeypatch):
    """A width fastest for one sequence but slow for several loses to one close to the best at both."""
    one, many = panel_tuning.TUNE_TOKENS
    times = {one: {64: 3.0, 128: 1.15, 192: 1.2, 768: 1.0}, many: {64: 3.0, 128: 1.1, 192: 1.0, 768: 2.0}}
    monkeypatch.setattr(panel_tuning, "candidates", lambda k, per_row, kind: [64, 128, 192, 768])
    monkeypatch.setattr(panel_tuning, "panel_columns", lambda k, per_row, kind: 64)  # the rule's width: far behind
    monkeypatch.setattr(panel_tuning, "time_panels", _timings(lambda x, t: times[t][x]))
    # scores: 192 → 1.2 + 1.0, 128 → 1.15 + 1.1, 768 → 1.0 + 2.0
    assert panel_tuning.panel_for(_sparse(1024, 768, 0.3), "csr", float_path()) == 192


def test_the_rule_keeps_its_width_unless_clearly_beaten(tuning, monkeypatch):
    w = _sparse(1024, 768, 0.3)
    rule = panel_columns(768, np.count_nonzero(w) / 1024, "csr")
    monkeypatch.setattr(panel_tuning, "time_panels", _timings(lambda x, t: 1.0 if x == rule else 0.99))  # 1% apart
    assert panel_tuning.panel_for(w, "csr", float_path()) == rule
