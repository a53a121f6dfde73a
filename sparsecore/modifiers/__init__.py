"""Recipe modifiers. ``MODIFIERS`` is the one tag → (class, default fields) table."""

from __future__ import annotations

from sparsecore.modifiers.base import Modifier
from sparsecore.modifiers.distillation import DistillationModifier
from sparsecore.modifiers.obs import OBSPruningModifier
from sparsecore.modifiers.pruning import ConstantPruningModifier, GMPruningModifier
from sparsecore.modifiers.quantization import QuantizationModifier
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
    "QuantizationModifier": (QuantizationModifier, {}),
}

__all__ = ["MODIFIERS", "Modifier"]
