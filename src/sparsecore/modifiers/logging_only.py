"""``!SparsificationLoggingModifier``: SparseML's periodic sparsity logger, accepted and inert here.

sparsecore reports sparsity per layer after every run (``sparsity_report.json`` / ``.png``) and
training metrics through the HF Trainer, so this modifier only keeps real recipes loading.
"""

from __future__ import annotations

from dataclasses import dataclass

from sparsecore.modifiers.base import Modifier


@dataclass(frozen=True, kw_only=True)
class SparsificationLoggingModifier(Modifier):
    start_epoch: float = 0.0
    end_epoch: float = -1.0
    update_frequency: float = 1.0

    def __post_init__(self) -> None:
        self.check_epochs(self.start_epoch, self.end_epoch, end_required=False)
