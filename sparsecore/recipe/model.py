"""A loaded recipe: resolved variables and validated modifier objects."""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from sparsecore.modifiers import Modifier


@dataclass(frozen=True)
class Recipe:
    variables: dict
    modifiers: tuple[Modifier, ...]
    groups: tuple[str, ...]  # the top-level list each modifier came from
    source: str  # where it was read from (path, "inline", "builtin:<name>", ...)

    @property
    def num_epochs(self) -> float | None:
        """Training length the recipe implies: the largest bounded end epoch, None if unbounded."""
        ends = [m.last_epoch() for m in self.modifiers if m.last_epoch() >= 0]
        return max(ends) if ends else None

    def to_yaml(self) -> str:
        """The recipe as applied: variables resolved, every field written out."""
        dumper = type("_RecipeDumper", (yaml.SafeDumper,), {})
        dumper.add_representer(_Tagged, lambda d, t: d.represent_mapping(f"!{t.tag}", t.fields))
        doc: dict = {"version": "1.1.0"}
        doc.update({k: v for k, v in self.variables.items() if k != "version"})
        for group, mod in zip(self.groups, self.modifiers):
            doc.setdefault(group, []).append(_Tagged(mod.tag, mod.recipe_fields()))
        return yaml.dump(doc, Dumper=dumper, sort_keys=False, default_flow_style=False)


@dataclass(frozen=True)
class _Tagged:
    tag: str
    fields: dict
