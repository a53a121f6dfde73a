"""Recipe modifiers. ``MODIFIERS`` is the one tag → (class, default fields) table."""

from __future__ import annotations

from sparsecore.modifiers.base import Modifier
from sparsecore.modifiers.distillation import DistillationModifier
from sparsecore.modifiers.obs import OBSPruningModifier
from sparsecore.modifiers.pruning import ConstantPruningModifier, GMPruningModifier
from sparsecore.modifiers.training import (
    EpochRangeModifier,
    LearningRateFunctionModifier,
    SetWeightDecayModifier,
    TrainableParamsModifier,
)

MODIFIERS: dict[str, tuple[type[Modifier], dict]] = {
    "EpochRangeModifier": (EpochRangeModifier, {}),
    "LearningRateFunctionModifier": (LearningRateFunctionModifier, {}),
    "SetWeightDecayModifier": (SetWeightDecayModifier, {}),
    "TrainableParamsModifier": (TrainableParamsModifier, {}),
    "GMPruningModifier": (GMPruningModifier, {}),
    "MagnitudePruningModifier": (GMPruningModifier, {}),
    "GlobalMagnitudePruningModifier": (GMPruningModifier, {"global_sparsity": True, "params": ("__ALL_PRUNABLE__",)}),
    "ConstantPruningModifier": (ConstantPruningModifier, {}),
    "OBSPruningModifier": (OBSPruningModifier, {}),
    "DistillationModifier": (DistillationModifier, {}),
}

# Known SparseML modifiers this release does not run yet: named so the error can say so.
NOT_YET = {
    "QuantizationModifier": "quantization-aware training is not implemented yet",
}

__all__ = ["MODIFIERS", "NOT_YET", "Modifier"]
