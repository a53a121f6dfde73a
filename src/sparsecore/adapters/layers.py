"""Layer removal on HF BERT-family models: checks before training, a shallower model after it.

After a ``!LayerPruningModifier`` the removed encoder layers are deleted (not left as stand-ins) and
``config.num_hidden_layers`` is rewritten, so the saved folder is an ordinary shallower model that
``from_pretrained``, the ONNX export and every engine load as such. ``config.json`` also records
``sparsecore_layer_pruning`` (which original layers were removed), which stops the same recipe from
removing layers a second time from the already shallower model.
"""

from __future__ import annotations

from torch import nn

from sparsecore.adapters.models import family
from sparsecore.errors import SparsecoreError
from sparsecore.modifiers.layer_pruning import LayerPruningModifier, SkippedLayer, remove_skipped_layers
from sparsecore.recipe import Recipe

RECORD = "sparsecore_layer_pruning"


def encoder_layers(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The name and ``nn.ModuleList`` of the encoder's transformer blocks (the family's ``blocks``)."""
    blocks = family(model).blocks
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and (name == blocks or name.endswith("." + blocks)):
            return name, module
    raise SparsecoreError(f"the model has no encoder layer list ({blocks})", "model",
                          "load the model with its own architecture class (AutoModelForSequenceClassification)")


def check_layer_pruning(model: nn.Module, recipe: Recipe | None, flag: str = "--model_name_or_path") -> None:
    """Each layer a ``!LayerPruningModifier`` removes must be an encoder block of a model not yet cut."""
    mods = [m for m in (recipe.modifiers if recipe else ()) if isinstance(m, LayerPruningModifier)]
    if not mods:
        return
    record = getattr(model.config, RECORD, None)
    if record:
        raise SparsecoreError(f"the model already had layers {', '.join(record['removed'])} removed by a "
                              "!LayerPruningModifier (config.json records it); the recipe would remove more",
                              flag, "drop the !LayerPruningModifier from this recipe, or start from the original model")
    list_name, layers = encoder_layers(model)
    allowed = [f"{list_name}.{i}" for i in range(len(layers))]
    names = [n for m in mods for n in m.layers]
    for name in names:
        if name not in allowed:
            raise SparsecoreError(f"!LayerPruningModifier.layers names {name!r}, which is not an encoder layer",
                                  "recipe", f"name whole encoder layers: {allowed[0]} … {allowed[-1]}")
    if len(set(names)) >= len(layers):
        raise SparsecoreError(f"the recipe removes all {len(layers)} encoder layers", "recipe",
                              "keep at least one encoder layer")


def finish_layer_pruning(model: nn.Module, removed: list[str]) -> dict | None:
    """Delete removed layers and rewrite the config; returns the record written (None: nothing removed)."""
    if not any(isinstance(m, SkippedLayer) for m in model.modules()):
        return None
    list_name, layers = encoder_layers(model)
    before = len(layers)
    kept = remove_skipped_layers(model)
    left = [m.removed for m in model.modules() if isinstance(m, SkippedLayer)]
    if left:
        raise SparsecoreError(f"removed layer {left[0]!r} is not an entry of a layer list", "recipe",
                              f"remove whole encoder layers ({list_name}.N)")
    model.config.num_hidden_layers = len(kept[list_name])
    record = {"removed": sorted(removed, key=lambda n: int(n.rsplit(".", 1)[-1])),
              "original_num_hidden_layers": before, "kept_original_layers": kept[list_name]}
    setattr(model.config, RECORD, record)
    return record
