"""Real recipes the recipe fuzzers start from: the built-in ones, the SparseML-style fixtures of tests/recipe, and
a few written here so every modifier, step fields, stages, front matter and the quantization scheme appear."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from sparsecore.recipe import builtin_names

FIXTURES = Path(__file__).resolve().parent.parent / "recipe" / "sparseml_style"

EXTRA = [
    """\
version: 1.1.0
num_epochs: 2.0
obs_sparsity: 0.5
modifiers:
  - !EpochRangeModifier
    end_epoch: eval(num_epochs)
  - !OBSPruningModifier
    params: __ALL_PRUNABLE__
    init_sparsity: 0.1
    final_sparsity: eval(obs_sparsity)
    start_epoch: 0
    end_epoch: eval(num_epochs / 2)
    update_frequency: 0.5
    num_grads: 8
    fisher_block_size: 8
    mask_type: block4
    global_sparsity: 1
    grad_sampler_kwargs: {batch_size: 2}
  - !QuantizationModifier
    start_epoch: 1.0
    scheme: {input_activations: {num_bits: 8, symmetric: false},
             weights: {num_bits: 4, symmetric: true, strategy: channel}}
    ignore: [classifier]
    num_calibration_steps: 2
""",
    """\
modifiers:
  - !MovementPruningModifier
    params: ['re:bert\\.encoder\\.layer\\.\\d+\\.intermediate\\.dense\\.weight']
    final_sparsity: 0.6
    start_step: 1
    end_step: 4
    update_frequency_steps: 1
  - !ConstantPruningModifier
    params: [bert.pooler.dense.weight]
    start_epoch: 0
  - !TrainableParamsModifier
    params: ['re:bert\\.embeddings\\..*']
    trainable: false
    params_strict: false
    end_epoch: 1
  - !SetWeightDecayModifier
    weight_decay: 0.01
    param_groups: [0]
  - !SetLearningRateModifier
    learning_rate: 0.001
    start_epoch: -1
  - !LearningRateModifier
    lr_class: CosineAnnealingWarmRestarts
    lr_kwargs: {lr_min: 0.0, cycle_epochs: 0.5}
    init_lr: 0.001
    start_epoch: 0.5
    end_epoch: 2
  - !SparsificationLoggingModifier
    update_frequency: 1
""",
    """\
<!-- a recipe card -->
# GMP with groups
---
final: 0.25
pruning_modifiers:
  - !GlobalMagnitudePruningModifier
    final_sparsity:
      0.5: ['re:bert\\.encoder\\.layer\\.0\\..*\\.weight']
      eval(final): ['re:.*layer\\.1\\..*dense\\.weight']
    start_epoch: 0.0
    end_epoch: 1.0
    update_frequency: 0.25
    mask_type: "2:4"
    log_types: __ALL__
  - !GMPruningModifier
    params: [bert.pooler.dense.weight, classifier.weight]
    final_sparsity: 0.5
    end_epoch: 1
    mask_type: [1, 4]
    inter_func: inverse_cubic
    leave_enabled: 0
---
Text after the front matter.
""",
    """\
dense_stage:
  epochs: 1
  dense_modifiers:
    - !EpochRangeModifier
      end_epoch: eval(epochs)
    - !LayerPruningModifier
      layers: [bert.encoder.layer.1]
      start_epoch: -1
sparse_stage:
  epochs: 2
  sparse_modifiers:
    - !GMPruningModifier
      params: __ALL_PRUNABLE__
      final_sparsity: 0.3
      start_epoch: 1
      end_epoch: eval(epochs)
    - !DistillationModifier
      hardness: 0.7
      temperature: 3
      distill_output_keys: [logits]
      start_epoch: 1
""",
]


def seeds() -> list[str]:
    """Recipe texts, each of which loads (built-ins, fixtures, ``EXTRA``)."""
    folder = resources.files("sparsecore.recipe") / "builtin"
    out = [(folder / f"{name}.yaml").read_text(encoding="utf-8") for name in builtin_names()]
    out += [p.read_text(encoding="utf-8") for p in sorted(FIXTURES.iterdir()) if p.suffix in (".yaml", ".md")]
    return out + EXTRA
