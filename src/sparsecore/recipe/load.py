"""Find recipe text (path, inline, built-in name, ``zoo:`` stub) and build a :class:`Recipe`."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import yaml

from sparsecore.errors import SparsecoreError
from sparsecore.modifiers import MODIFIERS, OUT_OF_SCOPE, Modifier
from sparsecore.modifiers.quantization import QuantizationModifier, check_training_end
from sparsecore.recipe.expr import Scope
from sparsecore.recipe.model import Recipe
from sparsecore.recipe.parse import MAX_DEPTH, MAX_EXPANDED_NODES, parse_recipe_text

# SparseZoo recipe stubs from the SparseML text-classification seed → our built-in recipes.
ZOO_RECIPES = {
    "zoo:nlp/text_classification/bert-base/pytorch/huggingface/mnli/12layer_pruned90-none": "bert-pruned90-mnli",
    "zoo:nlp/masked_language_modeling/bert-base/pytorch/huggingface/wikipedia_bookcorpus/"
    "12layer_pruned80_quant-none-vnni?recipe_type=transfer-text_classification": "bert-pruned80-quant-transfer",
}


def _transfer_recipe(stub: str) -> str | None:
    """A SparseZoo stub asking for the transfer recipe of a sparse backbone (``…?recipe_type=transfer…``): the
    built-in ``transfer-quant`` when the backbone's tag says quantized, else ``transfer``; None otherwise."""
    base, _, query = stub.partition("?")
    if not any(part.strip() in ("recipe_type=transfer", "recipe_type=transfer-text_classification")
               for part in query.split("&")):
        return None
    return "transfer-quant" if "quant" in base.rsplit("/", 1)[-1] else "transfer"


def builtin_names() -> list[str]:
    """Names of the built-in recipes (``recipe/builtin/<name>.yaml``), sorted."""
    folder = resources.files("sparsecore.recipe") / "builtin"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def read_recipe_source(source: str) -> tuple[str, str, bool]:
    """Return ``(text, where, markdown)`` for a path, inline YAML, built-in name or zoo stub.

    ``markdown``: True for ``.md`` files, False for other files, None for inline text (see ``split_front_matter``).
    """
    source = source.strip()
    if source.startswith("zoo:"):
        name = ZOO_RECIPES.get(source) or _transfer_recipe(source)
        if name is None:
            raise SparsecoreError(f"SparseZoo is unreachable (shut down in 2025) and {source!r} has no built-in "
                                  "equivalent", "--recipe",
                                  f"pass a recipe file, a built-in name (transfer, transfer-quant, …), or one of: "
                                  f"{', '.join(ZOO_RECIPES)}")
        source = name
    if source in builtin_names():
        path = resources.files("sparsecore.recipe") / "builtin" / f"{source}.yaml"
        return path.read_text(encoding="utf-8"), f"builtin:{source}", False
    if "\n" not in source:
        path = Path(source).expanduser()
        if _is_file(path):
            return _read_text(path), str(path), path.suffix.lower() == ".md"
        if path.suffix.lower() in (".yaml", ".yml", ".md"):
            raise SparsecoreError("recipe file not found", f"--recipe {source}", "check the path")
    if ":" in source:
        return source, "inline recipe", None
    raise SparsecoreError(f"recipe {source!r} not found", "--recipe",
                          f"pass a .yaml/.md file, inline YAML, or a built-in name: {', '.join(builtin_names())}")


def _is_file(path: Path) -> bool:
    """``path.is_file()``, False for text no file can be named (too long, a NUL byte)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _read_text(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SparsecoreError(f"recipe file is not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x})",
                              f"--recipe {path}", "pass a YAML or Markdown recipe saved as UTF-8") from None
    if "\x00" in text:
        raise SparsecoreError("recipe file is binary (it holds NUL bytes)", f"--recipe {path}",
                              "pass a YAML or Markdown recipe")
    return text


def parse_recipe_args(text: str | dict | None) -> dict:
    """``--recipe_args``: JSON object or ``k=v,k=v`` (values read as YAML scalars)."""
    if text is None or text == "":
        return {}
    if isinstance(text, dict):
        return _small(dict(text))
    text = text.strip()
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SparsecoreError(f"--recipe_args is not valid JSON: {exc.msg}", "--recipe_args",
                                  'use {"var": value} or var=value,var2=value2') from None
        except RecursionError:
            raise SparsecoreError("--recipe_args JSON nests too deep to read", "--recipe_args",
                                  "pass numbers, names or short lists") from None
        if not isinstance(value, dict):
            raise SparsecoreError("--recipe_args JSON must be an object", "--recipe_args", 'use {"var": value}')
        return _small(value)
    out = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SparsecoreError(f"--recipe_args item {item!r} is not key=value", "--recipe_args",
                                  'use var=value,var2=value2 or a JSON object')
        out[key.strip()] = _scalar(value.strip())
    return _small(out)


def _small(args: dict) -> dict:
    """``args`` when its values nest at most ``MAX_DEPTH`` levels and hold at most ``MAX_EXPANDED_NODES`` values
    (a value holding itself fails too); else a one-line error."""
    stack, seen = [(v, 1) for v in args.values()], 0
    while stack:
        value, depth = stack.pop()
        seen += 1
        if depth > MAX_DEPTH or seen > MAX_EXPANDED_NODES:
            raise SparsecoreError(f"--recipe_args values nest over {MAX_DEPTH} levels or hold over "
                                  f"{MAX_EXPANDED_NODES:,} values", "--recipe_args",
                                  "pass numbers, names or short lists")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for pair in value.items() for v in pair)
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return args


def _scalar(text: str):
    """``3`` → int, ``1e-4`` → float (YAML 1.1 would keep it a string), else YAML's reading."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    try:
        return yaml.safe_load(text) if text else ""
    except (yaml.YAMLError, ValueError, OverflowError, RecursionError) as exc:
        problem = getattr(exc, "problem", None) or (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise SparsecoreError(f"--recipe_args value {text!r} cannot be read as YAML: {problem}", "--recipe_args",
                              'quote it, or pass a JSON object {"var": value}') from None


def load_recipe(source: str, recipe_args: str | dict | None = None) -> Recipe:
    """Read, parse and validate a recipe into a :class:`Recipe`.

    ``source``: a file path, inline YAML, a built-in name or a known ``zoo:`` stub. ``recipe_args``
    (``--recipe_args``: JSON object, ``k=v,k=v`` or a dict) overrides variables the recipe defines — the
    top-level one and, in a staged recipe, every stage's of that name; an unknown name is an error. Every
    SparseML ``eval`` expression is resolved by the restricted evaluator of :mod:`sparsecore.recipe.expr` and
    every modifier built and checked; fields accepted but ignored become ``Recipe.notes``.
    """
    text, where, markdown = read_recipe_source(source)
    raw = parse_recipe_text(text, where, markdown)
    overrides = parse_recipe_args(recipe_args)
    known = set(raw.variables).union(*(stage.variables for stage in raw.stages))
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise SparsecoreError(f"--recipe_args sets unknown variable {unknown[0]!r}", where,
                              f"variables in this recipe: {', '.join(sorted(known)) or 'none'}")
    # SparseML: an override replaces the top-level variable, and in a staged recipe every stage's too
    top = Scope({**raw.variables, **{k: v for k, v in overrides.items() if k in raw.variables}}, where)
    variables = top.resolved()
    modifiers, groups, stages, stage_variables, ignored = [], [], [], {}, {}
    for stage in raw.stages:
        scope = top
        if stage.name is not None:
            scope = Scope({**stage.variables, **{k: v for k, v in overrides.items() if k in stage.variables}},
                          f"{where}: stage {stage.name}", outer=top)
            stage_variables[stage.name] = scope.resolved()
        for i, entry in enumerate(stage.modifiers):
            loc = f"{where}: {'' if stage.name is None else stage.name + '.'}{entry.group}[{i}] !{entry.tag}"
            modifiers.append(_build(entry, scope, loc, ignored))
            groups.append(entry.group)
            stages.append(stage.name)
    notes = [f"{field} ignored on {len(tags)} modifier(s) ({', '.join(sorted(set(tags)))}): {why}"
             for field, (why, tags) in ignored.items()]
    recipe = Recipe(variables, tuple(modifiers), tuple(groups), where, tuple(stages), stage_variables,
                    tuple(notes + _stage_notes(modifiers, stages)))
    for modifier in recipe.modifiers:
        if isinstance(modifier, QuantizationModifier):
            try:
                check_training_end(modifier, recipe.num_epochs)
            except SparsecoreError as exc:
                raise SparsecoreError(exc.what, where, exc.fix) from None
    return recipe


def _build(entry, scope: Scope, loc: str, ignored: dict) -> Modifier:
    if entry.tag not in MODIFIERS:
        hint = f" — {OUT_OF_SCOPE[entry.tag]}" if entry.tag in OUT_OF_SCOPE else ""
        raise SparsecoreError(f"unknown modifier !{entry.tag}{hint}", loc, f"allowed: {', '.join(MODIFIERS)}")
    cls, defaults = MODIFIERS[entry.tag]
    fields = scope.resolve(entry.fields, loc)
    for name in [k for k in fields if k in cls.IGNORED_FIELDS]:
        fields.pop(name)
        ignored.setdefault(name, (cls.IGNORED_FIELDS[name], []))[1].append(f"!{entry.tag}")
    return cls.from_fields(entry.tag, fields, loc, defaults)


def _stage_notes(modifiers: list[Modifier], stages: list[str | None]) -> list[str]:
    """Stages run on one absolute epoch axis, as in SparseML: say so when two of them overlap."""
    spans: dict[str, list[float]] = {}
    for modifier, stage in zip(modifiers, stages):
        if stage is None:
            continue
        start = max(float(getattr(modifier, "start_epoch", 0.0)), 0.0)
        end = modifier.last_epoch()
        span = spans.setdefault(stage, [start, end])
        span[0], span[1] = min(span[0], start), max(span[1], end)
    ordered = sorted(spans.items(), key=lambda item: item[1][0])
    return [f"stages {a} (epochs {sa:g}-{ea:g}) and {b} (from epoch {sb:g}) overlap: stage epochs are absolute, "
            "as in SparseML, so their modifiers act at the same time"
            for (a, (sa, ea)), (b, (sb, _)) in zip(ordered, ordered[1:]) if ea >= 0 and sb < ea]
