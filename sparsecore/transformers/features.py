"""Tokenize a :class:`sparsecore.tasks.Split` into a torch dataset of feature dicts."""

from __future__ import annotations

import numpy as np
import torch

from sparsecore.tasks import Split


class FeatureDataset(torch.utils.data.Dataset):
    def __init__(self, features: list[dict]) -> None:
        self.features = features

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> dict:
        return self.features[i]


def tokenize_split(split: Split, tokenizer, max_seq_length: int, pad_to_max_length: bool,
                   limit: int | None = None) -> FeatureDataset:
    n = len(split.texts) if limit is None else min(limit, len(split.texts))
    columns = list(zip(*split.texts[:n]))
    encoded = tokenizer(*columns, truncation=True, max_length=max_seq_length,
                        padding="max_length" if pad_to_max_length else False)
    features = []
    for i in range(n):
        item = {k: v[i] for k, v in encoded.items()}
        if split.labels is not None:
            label = split.labels[i]
            item["labels"] = label.tolist() if isinstance(label, np.ndarray) else label.item()
        features.append(item)
    return FeatureDataset(features)
