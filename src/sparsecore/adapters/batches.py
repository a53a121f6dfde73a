"""Length-sorted gradient batches for OBS: the rows random batches would hold, a fraction of the padding.

Random batches of 16 SST-2 sentences pad to ~3× their tokens (the longest of 16 sets the width); OBS's
gradient passes are forward/backward passes, so that padding is most of an update's cost. ``sorted_draw``
draws rows as random batches do (a random permutation, each row once per pass over the data), sorts the
draw by length, cuts it into batches and shuffles the batch order: the Fisher sees a random sample of the
sentences, grouped by length instead of at random.
"""

from __future__ import annotations

import torch


def lengths_of(dataset) -> list[int]:
    """Token count of every row (its ``length`` column where it has one — a siamese pair's longer text —, else
    ``input_ids``), from the column when the dataset has columns."""
    if "length" in (getattr(dataset, "column_names", None) or ()):
        return list(dataset["length"])
    try:
        column = dataset["input_ids"]
    except (KeyError, TypeError, IndexError):
        column = (row["input_ids"] for row in dataset)
    return [len(ids) for ids in column]


def sorted_draw(lengths: list[int], batch_size: int, count: int, generator: torch.Generator) -> list[list[int]]:
    """``count`` batches of ``batch_size`` row indices: the first ``count × batch_size`` rows of successive
    random permutations of all rows (``generator``), sorted by length (ties in draw order), cut into
    batches, the batch order then shuffled."""
    n = len(lengths)
    if n == 0 or batch_size < 1 or count < 1:
        return []
    need = count * batch_size
    rows: list[int] = []
    while len(rows) < need:
        rows += torch.randperm(n, generator=generator).tolist()[:need - len(rows)]
    rows.sort(key=lengths.__getitem__)  # stable: equal lengths keep their draw order
    batches = [rows[i:i + batch_size] for i in range(0, need, batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
