"""Exact k-smallest selection over one or many float32 arrays (radix select on the float bits).

Contract (DESIGN principle 3):
- exactly ``k`` elements are selected, the k smallest;
- ties are broken by the lowest index — for several arrays by array order, then index;
- NaN ranks above +inf (selected last, NumPy/torch sort order); -0.0 equals +0.0;
- k = 0 selects nothing, k = n everything.

Algorithm. A float32 maps to a uint32 key whose unsigned order is the float order. The arrays
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


_LANES = 4  # interleaved sub-histograms: consecutive equal bins no longer serialise on one counter


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


def lowest_k_masks(arrays: list[np.ndarray], k: int) -> list[np.ndarray]:
    """Bool masks (one per array, same shapes) selecting exactly the ``k`` smallest values of all arrays."""
    flat = []
    for i, a in enumerate(arrays):
        if not isinstance(a, np.ndarray) or a.dtype != np.float32:
            raise TypeError(f"array {i} must be a float32 numpy array, got {getattr(a, 'dtype', type(a))}")
        flat.append(np.ascontiguousarray(a).reshape(-1))
    sizes = [a.size for a in flat]
    n = sum(sizes)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= n:
        raise ValueError(f"k={k!r} must be an integer in [0, {n}]")
    if k == 0 or k == n:
        return [np.full(a.shape, k == n, dtype=np.bool_) for a in arrays]
    masks = [np.empty(s, dtype=np.bool_) for s in sizes]
    typed_arrays, typed_masks = nb.typed.List(flat), nb.typed.List(masks)
    spans = _spans(sizes, nb.get_num_threads())
    hist = _high_histograms(typed_arrays, spans)  # (threads, 65536)
    bucket, before = _crossing(hist.sum(axis=0), k)
    per_thread = hist[:, bucket]
    offsets = np.concatenate([[0], np.cumsum(per_thread)[:-1]]).astype(np.int64)
    bases = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    cand_key = np.empty(int(per_thread.sum()), dtype=np.uint32)
    cand_pos = np.empty(int(per_thread.sum()), dtype=np.int64)
    _split(typed_arrays, typed_masks, spans, offsets, bases, np.uint32(bucket), cand_key, cand_pos)
    _finish(typed_masks, bases, cand_key, cand_pos, int(k - before))
    return [m.reshape(a.shape) for m, a in zip(masks, arrays)]


def lowest_k_mask(values: np.ndarray, k: int) -> np.ndarray:
    """Bool mask of ``values``' shape selecting exactly its ``k`` smallest elements."""
    return lowest_k_masks([values], k)[0]
