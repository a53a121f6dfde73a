"""Recipe text → :class:`RawRecipe` (variables + tagged modifier entries).

SparseML syntax: YAML, or Markdown whose YAML sits in ``---`` front matter.
Modifiers are ``!Tag`` mappings inside any top-level list whose key contains
``modifiers``; other top-level scalars are variables. Only YAML's safe loader is
used; tags are captured as data, never resolved to Python objects.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from sparsecore.errors import SparsecoreError


@dataclass(frozen=True)
class RawModifier:
    tag: str  # without the leading "!"
    fields: dict
    group: str  # the top-level key that held it, e.g. "training_modifiers"


@dataclass(frozen=True)
class RawRecipe:
    variables: dict
    modifiers: tuple[RawModifier, ...]


class _TaggedLoader(yaml.SafeLoader):
    """Safe loader whose ``!Tag`` nodes become ``(tag, mapping)`` pairs."""


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> tuple[str, object]:
    if isinstance(node, yaml.MappingNode):
        return (suffix, loader.construct_mapping(node, deep=True))
    if isinstance(node, yaml.ScalarNode) and node.value == "":
        return (suffix, {})
    raise SparsecoreError(f"modifier !{suffix} must be a mapping of fields",
                          f"line {node.start_mark.line + 1}", "write `- !Tag` then `field: value` lines")


_TaggedLoader.add_multi_constructor("!", _tagged)


def split_front_matter(text: str) -> str:
    """Return the YAML part of a Markdown recipe (or ``text`` unchanged)."""
    lines = text.lstrip("\ufeff").splitlines()
    if lines and lines[0].strip() == "---":
        for i, line in enumerate(lines[1:], start=1):
            if line.strip() in ("---", "..."):
                return "\n".join(lines[1:i])
        raise SparsecoreError("front matter opened with --- is never closed", "recipe",
                              "end the YAML block with a line holding only ---")
    return text


def parse_recipe_text(text: str, where: str) -> RawRecipe:
    try:
        data = yaml.load(split_front_matter(text), Loader=_TaggedLoader)  # noqa: S506 (safe subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = f"{where}, line {mark.line + 1}" if mark else where
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SparsecoreError(f"malformed recipe YAML: {problem}", loc, "fix the YAML syntax") from None
    if not isinstance(data, dict):
        raise SparsecoreError("recipe must be a YAML mapping", where,
                              "write top-level variables and a `training_modifiers:` list of `!Modifier` entries")
    variables: dict = {}
    modifiers: list[RawModifier] = []
    for key, value in data.items():
        if not isinstance(key, str):
            raise SparsecoreError(f"top-level key {key!r} is not a name", where, "use identifier keys")
        if "modifiers" in key:
            if not isinstance(value, list):
                raise SparsecoreError(f"{key!r} must be a list of !Modifier entries", where,
                                      "write `- !GMPruningModifier` items under it")
            for i, item in enumerate(value):
                if not (isinstance(item, tuple) and len(item) == 2):
                    raise SparsecoreError(f"{key}[{i}] is not a tagged modifier", where,
                                          "start each entry with a tag such as `- !GMPruningModifier`")
                modifiers.append(RawModifier(item[0], dict(item[1]), key))
        elif isinstance(value, (int, float, str, bool)) or value is None:
            variables[key] = value
        elif isinstance(value, (list, dict)):
            variables[key] = value
        else:
            raise SparsecoreError(f"top-level {key!r} holds a tagged value", where,
                                  "put modifiers in a list whose key contains 'modifiers'")
    if not modifiers:
        raise SparsecoreError("recipe has no modifiers", where,
                              "add a list such as `training_modifiers:` with `!Modifier` entries")
    return RawRecipe(variables, tuple(modifiers))
