"""Length-sorted OBS gradient batches (``sparsecore.adapters.batches`` and ``make_grad_sampler``)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from sparsecore.adapters.batches import lengths_of, sorted_draw
from sparsecore.adapters.trainer import make_grad_sampler


def draw(lengths, batch_size, count, seed=0):
    return sorted_draw(lengths, batch_size, count, torch.Generator().manual_seed(seed))


def test_draw_is_a_random_sample_sorted_into_batches():
    lengths = torch.randint(3, 60, (500,), generator=torch.Generator().manual_seed(1)).tolist()
    plan = draw(lengths, 16, 20)
    assert len(plan) == 20 and all(len(b) == 16 for b in plan)
    rows = [r for b in plan for r in b]
    assert len(set(rows)) == 320  # one pass suffices: no row twice
    spans = sorted((min(lengths[r] for r in b), max(lengths[r] for r in b)) for b in plan)
    assert all(hi <= lo_next for (_, hi), (lo_next, _) in zip(spans, spans[1:]))  # disjoint length ranges
    assert plan == draw(lengths, 16, 20) and plan != draw(lengths, 16, 20, seed=1)
    assert [r for b in sorted(plan) for r in b] != sorted(rows)  # the batch order is shuffled, not sorted


def test_equal_lengths_keep_the_draw_order():
    """Ties keep their draw order: with every length equal the batches are the permutation's chunks."""
    plan = draw([7] * 100, 8, 5, seed=3)
    perm = torch.randperm(100, generator=torch.Generator().manual_seed(3)).tolist()[:40]
    assert sorted(plan) == sorted(perm[i:i + 8] for i in range(0, 40, 8))


def test_draw_longer_than_the_data_takes_whole_passes_first():
    plan = draw(list(range(1, 11)), 4, 6)  # 24 rows from 10: two full permutations and 4 more
    rows = [r for b in plan for r in b]
    assert len(rows) == 24 and all(rows.count(r) in (2, 3) for r in range(10))
    assert sum(rows.count(r) == 3 for r in range(10)) == 4


def test_degenerate_draws():
    assert draw([], 4, 3) == [] and draw([5, 6], 4, 0) == []
    assert draw([5, 6], 4, 1) == [[0, 0, 1, 1]]  # two passes over two rows, sorted by length


def test_lengths_from_columns_or_rows():
    rows = [{"input_ids": [1] * n} for n in (3, 1, 4)]
    assert lengths_of(rows) == [3, 1, 4]
    assert lengths_of({"input_ids": [[1] * 2, [1] * 5]}) == [2, 5]


class Recorder(torch.nn.Module):
    """Stands in for a classifier: records each batch's rows (every token of row r is r + 1) and width."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))
        self.seen: list[tuple[list[int], int]] = []

    def forward(self, input_ids, attention_mask):
        self.seen.append(([int(r[0]) - 1 for r in input_ids], input_ids.shape[1]))
        return SimpleNamespace(loss=(self.w * attention_mask.sum()).sum())


def pad(batch):
    width = max(len(x["input_ids"]) for x in batch)
    ids = [x["input_ids"] + [0] * (width - len(x["input_ids"])) for x in batch]
    mask = [[1] * len(x["input_ids"]) + [0] * (width - len(x["input_ids"])) for x in batch]
    return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask)}


@pytest.mark.parametrize("grouped", [False, True])
def test_grad_sampler_batches(grouped):
    lengths = torch.randint(2, 50, (300,), generator=torch.Generator().manual_seed(2)).tolist()
    data = [{"input_ids": [r + 1] * n} for r, n in enumerate(lengths)]
    model = Recorder()
    sample = make_grad_sampler(model, data, pad, 16, "cpu", seed=5, group_by_length=grouped)
    assert sum(1 for _ in sample(12, None, "grads")) == 12
    assert model.w.grad is None  # zeroed after the pass
    widths = [w for _, w in model.seen]
    assert all(w == max(lengths[r] for r in rows) for rows, w in model.seen)
    if grouped:  # the rows the sorted draw planned, in its batches; far less padding than random batches
        assert [rows for rows, _ in model.seen] == draw(lengths, 16, 12, seed=5)
        shuffled = Recorder()
        list(make_grad_sampler(shuffled, data, pad, 16, "cpu", seed=5)(12, None, "grads"))
        assert sum(widths) < 0.6 * sum(w for _, w in shuffled.seen)
    assert len({r for rows, _ in model.seen for r in rows}) == 12 * 16  # 192 distinct rows of 300 either way
