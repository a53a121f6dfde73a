"""Exact k-smallest selection over one or many float32 arrays (radix select on the float bits).

Contract:
- exactly ``k`` elements are selected, the k smallest;
- ties are broken by the lowest index — for several arrays by array order, then index;
- NaN ranks above +inf (selected last, NumPy/torch sort order); -0.0 equals +0.0;
- k = 0 selects nothing, k = n everything.

Fast path (n ≥ 4M). A 131,072-value random sample gives a window [lo, hi] around the k/n quantile
(± 6 standard deviations of a sample quantile). One vectorised parallel pass per array writes
``value < lo`` into the mask and marks the window; when the counts prove the k-th value lies in the
window, only the window's values (≈ 2% of the data) go through the exact finish below. Otherwise
(heavy ties, NaN around the k-th value, a rare sample miss) the exact path runs.

Exact path. A float32 maps to a uint32 key whose unsigned order is the float order. The arrays
form one global index space (array order, then index), cut into one contiguous span per thread.
Pass 1: each thread histograms the high 16 key bits of its span; the summed histogram names the
bucket holding the k-th key. Pass 2: each thread writes ``high < bucket`` into the masks and copies
the keys that fall in the bucket (and their global positions) to its slot of a candidate buffer,
sized exactly from pass 1's per-thread counts, so candidates stay in global order. Finish: a
histogram of the candidates' low 16 bits gives the exact k-th key T; candidates below T are
selected, then the first ones equal to T in global order. Two reads of the data and one write of
the masks; extra memory O(threads · 65,536) counts + O(bucket size) candidates.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from sparsecore.kernels._config import NJIT, NJIT_PARALLEL

_BINS = 1 << 16


@nb.njit(**NJIT)
def _key(x: np.float32) -> np.uint32:
    """Order-preserving uint32 of a float32, branch-free: positives (and ±0) get the top bit set,
    negatives have their magnitude bits inverted, NaN maps to the largest key."""
    bits = np.float32(x).view(np.uint32)
    magnitude = bits & np.uint32(0x7FFFFFFF)
    negative = np.uint32((bits >> np.uint32(31)) & np.uint32(magnitude != 0))  # -0.0 counts as +0.0
    key = magnitude ^ (np.uint32(0x80000000) - negative)
    return np.uint32(0xFFFFFFFF) if magnitude > np.uint32(0x7F800000) else key


_LANES = 4  # interleaved sub-histograms: consecutive values in one bin update different counters, not one in series


@nb.njit(**NJIT_PARALLEL)
def _high_histograms(arrays, spans) -> np.ndarray:
    # spans: (threads, parts, 3) rows of (array, start, stop); stop == start marks an unused row
    hist = np.zeros((spans.shape[0], _BINS), dtype=np.int64)
    for t in nb.prange(spans.shape[0]):
        lanes = np.zeros((_LANES, _BINS), dtype=np.int32)  # int32: a span holds < 2**31 values per lane
        for p in range(spans.shape[1]):
            a = arrays[spans[t, p, 0]]
            start, stop = spans[t, p, 1], spans[t, p, 2]
            i = start
            while i + _LANES <= stop:
                for lane in range(_LANES):
                    lanes[lane, _key(a[i + lane]) >> np.uint32(16)] += 1
                i += _LANES
            while i < stop:
                lanes[0, _key(a[i]) >> np.uint32(16)] += 1
                i += 1
        for lane in range(_LANES):
            for b in range(_BINS):
                hist[t, b] += lanes[lane, b]
    return hist


@nb.njit(**NJIT_PARALLEL)
def _split(arrays, masks, spans, offsets, bases, bucket: np.uint32, cand_key, cand_pos) -> None:
    for t in nb.prange(spans.shape[0]):
        c = offsets[t]
        for p in range(spans.shape[1]):
            j = spans[t, p, 0]
            a, m, base = arrays[j], masks[j], bases[j]
            for i in range(spans[t, p, 1], spans[t, p, 2]):
                key = _key(a[i])
                high = key >> np.uint32(16)
                m[i] = high < bucket
                if high == bucket:
                    cand_key[c] = key
                    cand_pos[c] = base + i
                    c += 1


@nb.njit(**NJIT)
def _crossing(counts: np.ndarray, k: int) -> tuple[int, int]:
    """First bin where the running count reaches k (k >= 1), and the count strictly before it."""
    before = 0
    for b in range(counts.shape[0]):
        if before + counts[b] >= k:
            return b, before
        before += counts[b]
    return counts.shape[0] - 1, before


@nb.njit(**NJIT)
def _finish(masks, bases, cand_key, cand_pos, needed: int) -> None:
    """Select the ``needed`` smallest candidates (ties: global order, which is buffer order)."""
    low = np.zeros(_BINS, dtype=np.int64)
    for c in range(cand_key.shape[0]):
        low[cand_key[c] & np.uint32(0xFFFF)] += 1
    t_low, before = _crossing(low, needed)
    ties = needed - before
    for c in range(cand_key.shape[0]):
        k_low = cand_key[c] & np.uint32(0xFFFF)
        take = k_low < t_low
        if k_low == t_low and ties > 0:
            take = True
            ties -= 1
        if take:
            j = np.searchsorted(bases, cand_pos[c], side="right") - 1
            masks[j][cand_pos[c] - bases[j]] = True


@nb.njit(**NJIT_PARALLEL)
def _window_pass(a, m, window, lo: np.float32, hi: np.float32) -> tuple[int, int]:
    """m = a < lo, window = lo <= a <= hi (NaN in neither); returns both counts. Flat prange: vectorises."""
    below = 0
    inside = 0
    for i in nb.prange(a.shape[0]):
        x = a[i]
        lt = x < lo
        w = (x >= lo) & (x <= hi)
        m[i] = lt
        window[i] = w
        below += lt
        inside += w
    return below, inside


@nb.njit(**NJIT)
def _keys(values) -> np.ndarray:
    out = np.empty(values.shape[0], dtype=np.uint32)
    for i in range(values.shape[0]):
        out[i] = _key(values[i])
    return out


_SAMPLED_MIN = 1 << 22  # below ~4M values the exact path is already cheap
_SAMPLE = 1 << 17


def _sampled(flat: list[np.ndarray], masks: list[np.ndarray], bases: np.ndarray, n: int, k: int) -> bool:
    """The fast path; returns False (masks then fully rewritten by the exact path) when it cannot prove k."""
    rng = np.random.default_rng(n * 31 + k)
    picks = np.sort(rng.integers(0, n, _SAMPLE))
    cuts = np.searchsorted(picks, np.append(bases, n))
    sample = np.concatenate([a[picks[cuts[j]:cuts[j + 1]] - bases[j]] for j, a in enumerate(flat)])
    q = k / n
    spread = 6.0 * np.sqrt(q * (1.0 - q) / _SAMPLE) + 2.0 / _SAMPLE
    ranks = [r for r in (int((q - spread) * _SAMPLE), int((q + spread) * _SAMPLE)) if 0 <= r < _SAMPLE]
    sample = np.partition(sample, ranks) if ranks else sample  # NaN sorts last
    lo = sample[int((q - spread) * _SAMPLE)] if q - spread > 0 else np.float32(-np.inf)
    hi = sample[int((q + spread) * _SAMPLE)] if q + spread < 1 else np.float32(np.inf)
    if np.isnan(lo) or np.isnan(hi):
        return False
    window = np.empty(max(a.size for a in flat), dtype=np.bool_)
    below, positions, values = 0, [], []
    for a, m in zip(flat, masks):
        idx = np.empty(0, dtype=np.int64)
        if a.size:
            b, w = _window_pass(a, m, window[:a.size], np.float32(lo), np.float32(hi))
            below += b
            idx = np.flatnonzero(window[:a.size]) if w else idx
        positions.append(idx)
        values.append(a[idx])
    if not below < k <= below + sum(p.size for p in positions):
        return False
    chosen = _select_smallest(_keys(np.concatenate(values)), int(k - below))  # candidates in global order
    for m, idx, pick in zip(masks, positions, np.split(chosen, np.cumsum([p.size for p in positions])[:-1])):
        m[idx[pick]] = True
    return True


@nb.njit(**NJIT)
def _select_smallest(keys, needed: int) -> np.ndarray:
    """Bool over ``keys``: the ``needed`` smallest, ties by position (two 16-bit radix levels)."""
    high = np.zeros(_BINS, dtype=np.int64)
    for c in range(keys.shape[0]):
        high[keys[c] >> np.uint32(16)] += 1
    bucket, before = _crossing(high, needed)
    low = np.zeros(_BINS, dtype=np.int64)
    for c in range(keys.shape[0]):
        if keys[c] >> np.uint32(16) == bucket:
            low[keys[c] & np.uint32(0xFFFF)] += 1
    t_low, before_low = _crossing(low, needed - before)
    threshold = np.uint32((bucket << 16) | t_low)
    ties = needed - before - before_low
    chosen = np.empty(keys.shape[0], dtype=np.bool_)
    for c in range(keys.shape[0]):
        take = keys[c] < threshold
        if keys[c] == threshold and ties > 0:
            take = True
            ties -= 1
        chosen[c] = take
    return chosen


def _spans(sizes: list[int], threads: int) -> np.ndarray:
    """Cut the global index space into ``threads`` contiguous spans of (array, start, stop) rows."""
    total = sum(sizes)
    per = -(-total // threads) if total else 0
    rows: list[list[tuple[int, int, int]]] = [[] for _ in range(threads)]
    t, room = 0, per
    for j, n in enumerate(sizes):
        start = 0
        while start < n:
            take = min(room, n - start)
            rows[t].append((j, start, start + take))
            start += take
            room -= take
            if room == 0 and t < threads - 1:
                t, room = t + 1, per
    width = max(1, max(len(r) for r in rows))
    out = np.zeros((threads, width, 3), dtype=np.int64)
    for t, r in enumerate(rows):
        if r:
            out[t, :len(r)] = r
    return out


def lowest_k_masks(arrays: list[np.ndarray], k: int, out: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """Bool masks (one per array, same shapes) selecting exactly the ``k`` smallest values of all arrays.

    ``out``: C-contiguous bool arrays of the same shapes to fill (and return) instead of allocating —
    fresh masks cost first-touch page faults comparable to the selection itself on large inputs.
    """
    flat = []
    for i, a in enumerate(arrays):
        if not isinstance(a, np.ndarray) or a.dtype != np.float32:
            raise TypeError(f"array {i} must be a float32 numpy array, got {getattr(a, 'dtype', type(a))}")
        flat.append(np.ascontiguousarray(a).reshape(-1))
    sizes = [a.size for a in flat]
    n = sum(sizes)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= n:
        raise ValueError(f"k={k!r} must be an integer in [0, {n}]")
    if out is not None:
        if len(out) != len(arrays) or any(not isinstance(o, np.ndarray) or o.dtype != np.bool_ or o.shape != a.shape
                                          or not o.flags.c_contiguous for o, a in zip(out, arrays)):
            raise ValueError("out must hold one C-contiguous bool array per input, of the same shape")
    if k == 0 or k == n:
        if out is None:
            return [np.full(a.shape, k == n, dtype=np.bool_) for a in arrays]
        for o in out:
            o.fill(k == n)
        return list(out)
    masks = [np.empty(s, dtype=np.bool_) for s in sizes] if out is None else [o.reshape(-1) for o in out]
    bases = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    if n >= _SAMPLED_MIN and _sampled(flat, masks, bases, n, k):
        return [m.reshape(a.shape) for m, a in zip(masks, arrays)]
    typed_arrays, typed_masks = nb.typed.List(flat), nb.typed.List(masks)
    spans = _spans(sizes, nb.get_num_threads())
    hist = _high_histograms(typed_arrays, spans)  # (threads, 65536)
    bucket, before = _crossing(hist.sum(axis=0), k)
    per_thread = hist[:, bucket]
    offsets = np.concatenate([[0], np.cumsum(per_thread)[:-1]]).astype(np.int64)
    cand_key = np.empty(int(per_thread.sum()), dtype=np.uint32)
    cand_pos = np.empty(int(per_thread.sum()), dtype=np.int64)
    _split(typed_arrays, typed_masks, spans, offsets, bases, np.uint32(bucket), cand_key, cand_pos)
    _finish(typed_masks, bases, cand_key, cand_pos, int(k - before))
    return [m.reshape(a.shape) for m, a in zip(masks, arrays)]


def lowest_k_mask(values: np.ndarray, k: int) -> np.ndarray:
    """Bool mask of ``values``' shape selecting exactly its ``k`` smallest elements."""
    return lowest_k_masks([values], k)[0]
