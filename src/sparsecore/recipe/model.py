"""A loaded recipe: resolved variables and validated modifier objects."""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from sparsecore.modifiers import DistillationModifier, Modifier, QuantizationModifier


@dataclass(frozen=True)
class Recipe:
    """A validated recipe (:func:`~sparsecore.recipe.load_recipe` builds it): resolved variables and modifier
    objects in recipe order, with the list and stage each came from. Frozen; a
    :class:`~sparsecore.session.Session` works on copies of its modifiers."""

    variables: dict  # top-level variables, resolved
    modifiers: tuple[Modifier, ...]
    groups: tuple[str, ...]  # the list each modifier came from, e.g. "training_modifiers"
    source: str  # where it was read from (path, "inline", "builtin:<name>", ...)
    stages: tuple[str | None, ...] = ()  # the stage of each modifier (all None: no stages)
    stage_variables: dict = field(default_factory=dict)  # stage name → its own variables, resolved
    notes: tuple[str, ...] = ()  # what was accepted but ignored, and other things a user should read once

    @property
    def num_epochs(self) -> float | None:
        """Training length the recipe implies: the largest bounded end epoch, None if unbounded."""
        ends = [m.last_epoch() for m in self.modifiers if m.last_epoch() >= 0]
        return max(ends) if ends else None

    @property
    def num_steps(self) -> int | None:
        """Optimizer steps the recipe's step-bounded modifiers need (``end_step``), None if it has none."""
        ends = [m.last_step() for m in self.modifiers if m.last_step() >= 0]
        return max(ends) if ends else None

    @property
    def distills(self) -> bool:
        """Has a ``!DistillationModifier`` (the run needs a teacher)."""
        return any(isinstance(m, DistillationModifier) for m in self.modifiers)

    @property
    def quantizes(self) -> bool:
        """Has a ``!QuantizationModifier`` (fake-quant during training, quantized export)."""
        return any(isinstance(m, QuantizationModifier) for m in self.modifiers)

    @property
    def lr_owners(self) -> tuple[str, ...]:
        """Tags of the modifiers that set the learning rate (the trainer's own schedule is then held constant)."""
        return tuple(sorted({f"!{m.tag}" for m in self.modifiers if m.SETS_LR}))

    @property
    def owns_lr(self) -> bool:
        """True when a modifier sets the learning rate (see :attr:`lr_owners`)."""
        return bool(self.lr_owners)

    @property
    def staged(self) -> bool:
        """True when the recipe has stages."""
        return any(s is not None for s in self.stages)

    def to_yaml(self) -> str:
        """The recipe as applied: variables resolved, every field written out (shared values too: no
        &anchors, so equal recipes give equal text), stages kept."""
        dumper = type("_RecipeDumper", (yaml.SafeDumper,), {"ignore_aliases": lambda self, data: True})
        dumper.add_representer(_Tagged, lambda d, t: d.represent_mapping(f"!{t.tag}", t.fields))
        doc: dict = {"version": "1.1.0"}
        doc.update({k: v for k, v in self.variables.items() if k != "version"})
        stages = self.stages or (None,) * len(self.modifiers)
        for stage, group, mod in zip(stages, self.groups, self.modifiers):
            section = doc if stage is None else doc.setdefault(stage, dict(self.stage_variables.get(stage, {})))
            section.setdefault(group, []).append(_Tagged(mod.tag, mod.recipe_fields()))
        return yaml.dump(doc, Dumper=dumper, sort_keys=False, default_flow_style=False)


@dataclass(frozen=True)
class _Tagged:
    tag: str
    fields: dict
