"""Recipe modifiers. ``MODIFIERS`` is the one tag → (class, default fields) table."""

from __future__ import annotations

from sparsecore.modifiers.base import Modifier
from sparsecore.modifiers.distillation import DistillationModifier
from sparsecore.modifiers.layer_pruning import LayerPruningModifier
from sparsecore.modifiers.learning_rate import LearningRateModifier, SetLearningRateModifier
from sparsecore.modifiers.logging_only import SparsificationLoggingModifier
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
    "LearningRateModifier": (LearningRateModifier, {}),
    "SetLearningRateModifier": (SetLearningRateModifier, {}),
    "SetWeightDecayModifier": (SetWeightDecayModifier, {}),
    "TrainableParamsModifier": (TrainableParamsModifier, {}),
    "GMPruningModifier": (GMPruningModifier, {}),
    "MagnitudePruningModifier": (GMPruningModifier, {}),
    "GlobalMagnitudePruningModifier": (GMPruningModifier, {"global_sparsity": True, "params": ("__ALL_PRUNABLE__",)}),
    "MovementPruningModifier": (GMPruningModifier, {"score_type": "movement"}),
    "ConstantPruningModifier": (ConstantPruningModifier, {}),
    "OBSPruningModifier": (OBSPruningModifier, {}),
    "LayerPruningModifier": (LayerPruningModifier, {}),
    "DistillationModifier": (DistillationModifier, {}),
    "QuantizationModifier": (QuantizationModifier, {}),
    "SparsificationLoggingModifier": (SparsificationLoggingModifier, {}),
}

# SparseML modifiers sparsecore does not implement, with what to use instead (named in the error)
_NEWER = "a newer SparseML / llm-compressor modifier; sparsecore runs SparseML 1.x recipes"
OUT_OF_SCOPE: dict[str, str] = {
    "MFACPruningModifier": "M-FAC is not implemented: use !OBSPruningModifier (oBERT, its successor)",
    "ACDCPruningModifier": "AC/DC pruning is not implemented: use !GMPruningModifier",
    "RigLPruningModifier": "RigL is not implemented: use !GMPruningModifier",
    "TopKASTPruningModifier": "Top-KAST is not implemented: use !GMPruningModifier",
    "PowerpropagationModifier": "powerpropagation is not implemented",
    "StructuredPruningModifier": "structured (channel) pruning is not implemented: use !LayerPruningModifier "
                                 "for whole layers, or block / N:M mask_type",
    "LayerThinningModifier": "layer thinning is not implemented: use !LayerPruningModifier for whole layers",
    "PerLayerDistillationModifier": "per-layer (hidden state) distillation is not implemented: use "
                                    "!DistillationModifier on logits",
    "SetParamModifier": "setting raw parameter values is not implemented",
    "GradualParamModifier": "gradual parameter values are not implemented",
    **{name: _NEWER for name in ("SparseGPTModifier", "SmoothQuantModifier", "GPTQModifier", "WandaPruningModifier",
                                 "OutputDistillationModifier", "LogarithmicEqualizationModifier")},
}

__all__ = ["MODIFIERS", "OUT_OF_SCOPE", "Modifier"]
