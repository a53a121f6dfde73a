"""Find recipe text (path, inline, built-in name, ``zoo:`` stub) and build a :class:`Recipe`."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import yaml

from sparsecore.errors import SparsecoreError
from sparsecore.modifiers import MODIFIERS
from sparsecore.modifiers.quantization import QuantizationModifier, check_training_end
from sparsecore.recipe.expr import resolve_value, resolve_variables
from sparsecore.recipe.model import Recipe
from sparsecore.recipe.parse import parse_recipe_text

# SparseZoo recipe stubs from the SparseML text-classification seed → our built-in recipes.
ZOO_RECIPES = {
    "zoo:nlp/text_classification/bert-base/pytorch/huggingface/mnli/12layer_pruned90-none": "bert-pruned90-mnli",
    "zoo:nlp/masked_language_modeling/bert-base/pytorch/huggingface/wikipedia_bookcorpus/"
    "12layer_pruned80_quant-none-vnni?recipe_type=transfer-text_classification": "bert-pruned80-quant-transfer",
}


def builtin_names() -> list[str]:
    folder = resources.files("sparsecore.recipe") / "builtin"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def read_recipe_source(source: str) -> tuple[str, str]:
    """Return ``(text, where)`` for a path, inline YAML, built-in name or zoo stub."""
    source = source.strip()
    if source.startswith("zoo:"):
        name = ZOO_RECIPES.get(source)
        if name is None:
            raise SparsecoreError(f"SparseZoo is unreachable (shut down in 2025) and {source!r} has no built-in "
                                  "equivalent", "--recipe",
                                  f"pass a recipe file, or one of: {', '.join(ZOO_RECIPES)}")
        source = name
    if source in builtin_names():
        path = resources.files("sparsecore.recipe") / "builtin" / f"{source}.yaml"
        return path.read_text(encoding="utf-8"), f"builtin:{source}"
    if "\n" not in source:
        path = Path(source).expanduser()
        if path.is_file():
            return path.read_text(encoding="utf-8"), str(path)
        if path.suffix.lower() in (".yaml", ".yml", ".md"):
            raise SparsecoreError("recipe file not found", f"--recipe {source}", "check the path")
    if ":" in source:
        return source, "inline recipe"
    raise SparsecoreError(f"recipe {source!r} not found", "--recipe",
                          f"pass a .yaml/.md file, inline YAML, or a built-in name: {', '.join(builtin_names())}")


def parse_recipe_args(text: str | dict | None) -> dict:
    """``--recipe_args``: JSON object or ``k=v,k=v`` (values read as YAML scalars)."""
    if text is None or text == "":
        return {}
    if isinstance(text, dict):
        return dict(text)
    text = text.strip()
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SparsecoreError(f"--recipe_args is not valid JSON: {exc.msg}", "--recipe_args",
                                  'use {"var": value} or var=value,var2=value2') from None
        if not isinstance(value, dict):
            raise SparsecoreError("--recipe_args JSON must be an object", "--recipe_args", 'use {"var": value}')
        return value
    out = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SparsecoreError(f"--recipe_args item {item!r} is not key=value", "--recipe_args",
                                  'use var=value,var2=value2 or a JSON object')
        out[key.strip()] = _scalar(value.strip())
    return out


def _scalar(text: str):
    """``3`` → int, ``1e-4`` → float (YAML 1.1 would keep it a string), else YAML's reading."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return yaml.safe_load(text) if text else ""


def load_recipe(source: str, recipe_args: str | dict | None = None) -> Recipe:
    text, where = read_recipe_source(source)
    raw = parse_recipe_text(text, where)
    overrides = parse_recipe_args(recipe_args)
    unknown = sorted(set(overrides) - set(raw.variables))
    if unknown:
        raise SparsecoreError(f"--recipe_args sets unknown variable {unknown[0]!r}", where,
                              f"variables in this recipe: {', '.join(sorted(raw.variables)) or 'none'}")
    variables = resolve_variables({**raw.variables, **overrides}, where)

    def lookup(name: str):
        if name not in variables:
            raise SparsecoreError(f"unknown variable {name!r}", where,
                                  f"define it at the top level (known: {', '.join(sorted(variables)) or 'none'})")
        return variables[name]

    modifiers = []
    for i, entry in enumerate(raw.modifiers):
        loc = f"{where}: {entry.group}[{i}] !{entry.tag}"
        if entry.tag not in MODIFIERS:
            raise SparsecoreError(f"unknown modifier !{entry.tag}", loc, f"allowed: {', '.join(MODIFIERS)}")
        cls, defaults = MODIFIERS[entry.tag]
        fields = resolve_value(entry.fields, lookup, loc)
        modifiers.append(cls.from_fields(entry.tag, fields, loc, defaults))
    recipe = Recipe(variables, tuple(modifiers), tuple(m.group for m in raw.modifiers), where)
    for modifier in recipe.modifiers:
        if isinstance(modifier, QuantizationModifier):
            try:
                check_training_end(modifier, recipe.num_epochs)
            except SparsecoreError as exc:
                raise SparsecoreError(exc.what, where, exc.fix) from None
    return recipe
