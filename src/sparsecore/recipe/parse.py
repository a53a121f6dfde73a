"""Recipe text → :class:`RawRecipe` (variables, stages, tagged modifier entries).

SparseML 1.x syntax: YAML, or Markdown whose YAML sits in front matter between two ``---``
(or ``+++``) lines — anything may come before it (SparseML's recipe cards open with an HTML
licence comment). Modifiers are ``!Tag`` mappings inside top-level lists whose key contains
``modifiers`` (or a single ``!Tag`` mapping under any key); other top-level values are
variables. A *staged* recipe instead holds mappings (``stage_0: {variables…, *_modifiers: […]}``),
each a stage with variables of its own. A bare list of modifiers, or one modifier, is a recipe
too. Only YAML's safe loader is used; tags are captured as data, never resolved to Python objects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

from sparsecore.errors import SparsecoreError


@dataclass(frozen=True)
class RawModifier:
    """One ``!Tag`` mapping as written: its fields unresolved (``eval`` expressions still text)."""

    tag: str  # without the leading "!"
    fields: dict
    group: str  # the key that held it, e.g. "training_modifiers"


@dataclass(frozen=True)
class RawStage:
    """A stage's own variables (unresolved) and its modifier entries, in order."""

    name: str | None  # None: the recipe has no stages
    variables: dict
    modifiers: tuple[RawModifier, ...]


@dataclass(frozen=True)
class RawRecipe:
    """A parsed recipe before variables are resolved: global variables and the stages."""

    variables: dict  # top-level (global) variables
    stages: tuple[RawStage, ...]  # exactly one, named None, for an unstaged recipe


@dataclass(frozen=True)
class _Tagged:
    tag: str
    fields: object
    line: int


class _TaggedLoader(yaml.SafeLoader):
    """Safe loader whose ``!Tag`` nodes become :class:`_Tagged` values."""


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> _Tagged:
    line = node.start_mark.line + 1
    if not suffix.isprintable():  # a tag may hold any character as %-escapes: keep messages on one line
        raise SparsecoreError(f"modifier tag {'!' + suffix!r} is not a name", f"line {line}",
                              "write the modifier's name after !, e.g. !GMPruningModifier")
    if isinstance(node, yaml.MappingNode):
        return _Tagged(suffix, loader.construct_mapping(node, deep=True), line)
    if isinstance(node, yaml.ScalarNode) and node.value == "":
        return _Tagged(suffix, {}, line)
    raise SparsecoreError(f"modifier !{suffix} must be a mapping of fields", f"line {line}",
                          "write `- !Tag` then `field: value` lines")


_TaggedLoader.add_multi_constructor("!", _tagged)
# YAML 1.1 reads `3e-5` (no dot) as a string; SparseML recipes mean the number. Plain scalars only:
# a quoted "3e-5" stays a string.
_TaggedLoader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"),
                                    list("-+0123456789"))

_DELIMITERS = ("---", "+++")
_NEW_STYLE_HINT = ("this looks like a newer SparseML / llm-compressor recipe (untagged modifier mappings under "
                   "`*_stage:` / `*_modifiers:` keys); sparsecore runs SparseML 1.x recipes")
_NEW_STYLE_FIX = "write modifiers as lists of tagged entries, e.g. `training_modifiers:` then `- !GMPruningModifier`"


def split_front_matter(text: str, markdown: bool | None, where: str = "recipe") -> str:
    """The YAML of a recipe: what lies between the first two ``---``/``+++`` lines, if there are two.

    ``markdown=True`` (a ``.md`` file): front matter is required; text of any kind may precede it.
    ``None`` (inline text): front matter is taken when there is one, as SparseML did with raw strings.
    ``False`` (a YAML file): only YAML comments may precede it. Without a closing delimiter, YAML text is
    returned whole (a lone ``---`` is YAML's document marker).
    """
    lines = text.lstrip("\ufeff").splitlines()
    opening = next((i for i, line in enumerate(lines) if line.strip() in _DELIMITERS), None)
    if opening is not None:
        closing = next((i for i in range(opening + 1, len(lines)) if lines[i].strip() in _DELIMITERS), None)
        before = [line for line in lines[:opening] if line.strip() and not line.lstrip().startswith("#")]
        if closing is not None and (markdown is not False or not before):
            return "\n".join(lines[opening + 1:closing])
        if markdown:
            raise SparsecoreError(f"front matter opened with --- at line {opening + 1} is never closed", where,
                                  "end the YAML block with a line holding only ---")
    elif markdown:
        raise SparsecoreError("Markdown recipe has no YAML front matter", where,
                              "put the recipe's YAML between two lines holding only ---")
    return text


def _yaml_error(exc: yaml.YAMLError, where: str) -> SparsecoreError:
    """PyYAML's explanation in one line: its context (e.g. 'found duplicate anchor') and its problem."""
    parts = []
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    problem, problem_mark = getattr(exc, "problem", None), getattr(exc, "problem_mark", None)
    if context:
        parts.append(context + (f" at line {context_mark.line + 1}" if context_mark else ""))
    if problem:
        parts.append(problem + (f" at line {problem_mark.line + 1}" if problem_mark else ""))
    what = ", ".join(parts) or str(exc).splitlines()[0]
    fix = "fix the YAML syntax"
    if "another document" in what:
        fix = ("a recipe is one YAML document: for Markdown put the YAML between two lines holding only ---, "
               "for YAML remove the extra --- line")
    elif "duplicate anchor" in what:
        fix = "give each &anchor a distinct name"
    return SparsecoreError(f"malformed recipe YAML: {what}", where, fix)


MAX_RECIPE_CHARS = 1_000_000  # the largest real SparseML recipes are ~20 KB
MAX_EXPANDED_NODES = 10_000  # YAML nodes, also after expanding *aliases; real recipes have a few hundred
MAX_DEPTH = 64  # nested mappings/lists; real recipes nest about 6 deep (stage → list → modifier → scheme → …)


def _check_shape(body: str, where: str) -> None:
    """Refuse YAML nested deeper than ``MAX_DEPTH`` (the composer and every walk of the document after it recurse
    once per level) or holding over ``MAX_EXPANDED_NODES`` nodes, from PyYAML's event stream: it stops at the
    first node too many, so a large document costs no more than a small one."""
    depth = nodes = 0
    for event in yaml.parse(body, Loader=_TaggedLoader):
        if isinstance(event, yaml.NodeEvent):
            nodes += 1
            if nodes > MAX_EXPANDED_NODES:
                raise SparsecoreError(f"recipe has over {MAX_EXPANDED_NODES:,} YAML values",
                                      f"{where}, line {event.start_mark.line + 1}",
                                      "real recipes hold a few hundred: pass the recipe, not data")
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise SparsecoreError(f"recipe nests lists/mappings over {MAX_DEPTH} levels deep",
                                      f"{where}, line {event.start_mark.line + 1}", "flatten the structure")
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1


def _measure(node, memo: dict, where: str, above: int = 0) -> int:
    """Nodes of the document with every alias expanded, counted in linear time (shared nodes memoised in
    ``memo`` as (size, nesting levels)). ``above``: the lists/mappings holding ``node``. A node containing itself
    (a recursive alias, ``&a [*a]``) would expand forever, and aliases may nest over ``MAX_DEPTH`` levels (each
    ``&b [*a]`` adds one): both are errors."""
    if node is None:
        return 0
    if id(node) not in memo:
        memo[id(node)] = None  # being counted: meeting it again below means it contains itself
        collection = isinstance(node, (yaml.SequenceNode, yaml.MappingNode))
        children = node.value if collection else []
        pairs = [c for pair in children for c in pair] if isinstance(node, yaml.MappingNode) else children
        size = 1 + sum(_measure(c, memo, where, above + 1) for c in pairs)
        height = 1 + max((memo[id(c)][1] for c in pairs), default=0) if collection else 0
        memo[id(node)] = (min(size, 10 * MAX_EXPANDED_NODES), height)
    if memo[id(node)] is None:
        raise SparsecoreError("recipe has a recursive alias (a node containing itself)",
                              f"{where}, line {node.start_mark.line + 1}", "write the values out instead of the alias")
    size, height = memo[id(node)]
    if above + height > MAX_DEPTH:
        raise SparsecoreError(f"recipe nests lists/mappings over {MAX_DEPTH} levels deep through its *aliases",
                              f"{where}, line {node.start_mark.line + 1}",
                              "write the values out instead of nesting aliases")
    return size


def parse_recipe_text(text: str, where: str, markdown: bool | None = None) -> RawRecipe:
    """Parse recipe text (YAML, or Markdown with front matter; ``markdown`` as in :func:`split_front_matter`)
    into a :class:`RawRecipe`. ``where`` names the source in errors. Refuses texts over ``MAX_RECIPE_CHARS``,
    YAML nested over ``MAX_DEPTH`` levels, recursive aliases and documents of over ``MAX_EXPANDED_NODES`` nodes,
    written out or through aliases; a recipe without modifiers, or mixing top-level modifiers with stages, is an
    error."""
    if len(text) > MAX_RECIPE_CHARS:
        raise SparsecoreError(f"recipe is {len(text):,} characters (at most {MAX_RECIPE_CHARS:,})", where,
                              "pass a recipe file of reasonable size")
    body = split_front_matter(text, markdown, where)
    try:
        _check_shape(body, where)
        size = _measure(yaml.compose(body, Loader=_TaggedLoader), {}, where)
        if size > MAX_EXPANDED_NODES:  # "billion laughs": nested *aliases expand exponentially
            raise SparsecoreError(f"recipe expands to over {MAX_EXPANDED_NODES:,} YAML nodes through its *aliases",
                                  where, "write the values out instead of nesting aliases")
        data = yaml.load(body, Loader=_TaggedLoader)  # noqa: S506 (safe subclass)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, where) from None
    except TypeError:  # PyYAML hashes every mapping key: a "? " complex key that is a mapping or list cannot be one
        raise SparsecoreError("malformed recipe YAML: a mapping key is itself a mapping or list", where,
                              "write keys as plain names (a line starting with \"? \" makes a complex key)") from None
    except (ValueError, OverflowError) as exc:  # a plain scalar YAML reads as a date or int that cannot be one
        detail = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise SparsecoreError(f"malformed recipe YAML: a value cannot be read ({detail})", where,
                              "quote the value to keep it as text, or correct it (a date like 2001-02-30)") from None
    if isinstance(data, _Tagged):
        data = {"modifiers": [data]}
    elif isinstance(data, list):
        data = {"modifiers": data}
    if not isinstance(data, dict):
        raise SparsecoreError("recipe must be a YAML mapping", where,
                              "write top-level variables and a `training_modifiers:` list of `!Modifier` entries")
    _check_keys(data, where)
    stage_keys = [k for k, v in data.items() if isinstance(v, dict) and any(_is_group(s) for s in v)]
    top_groups = [k for k, v in data.items() if _is_group(k) or isinstance(v, _Tagged)]
    if stage_keys and top_groups:
        raise SparsecoreError(f"recipe mixes top-level modifiers ({top_groups[0]}) with stages ({stage_keys[0]})",
                              where, "put every modifier list inside a stage, or drop the stages")
    if not stage_keys:
        variables, modifiers = _split(data, where, None)
        if not modifiers:
            raise SparsecoreError("recipe has no modifiers", where,
                                  "add a list such as `training_modifiers:` with `!Modifier` entries")
        return RawRecipe(variables, (RawStage(None, {}, modifiers),))
    variables = {k: v for k, v in data.items() if k not in stage_keys}
    _check_variables(variables, where, None)
    stages = []
    for name in stage_keys:
        stage_vars, modifiers = _split(data[name], where, name)
        if not modifiers:
            raise SparsecoreError(f"stage {name!r} has no modifiers", where,
                                  f"add `!Modifier` entries to its {next(k for k in data[name] if _is_group(k))!r} "
                                  "list, or remove the stage")
        stages.append(RawStage(name, stage_vars, modifiers))
    return RawRecipe(variables, tuple(stages))


def _is_group(key: object) -> bool:
    return isinstance(key, str) and "modifiers" in key


def _check_keys(data: dict, where: str) -> None:
    """Keys of a section (variables, stages, modifier lists) are names: strings without control characters."""
    for key in data:
        if not isinstance(key, str) or not key.isprintable():
            raise SparsecoreError(f"top-level key {key!r} is not a name", where, "use identifier keys")


def _split(section: dict, where: str, stage: str | None) -> tuple[dict, tuple[RawModifier, ...]]:
    """A section's variables and modifiers (the whole recipe, or one stage)."""
    loc = where if stage is None else f"{where}: stage {stage}"
    _check_keys(section, loc)
    variables: dict = {}
    modifiers: list[RawModifier] = []
    for key, value in section.items():
        if isinstance(value, _Tagged):
            modifiers.append(_modifier(value, key, loc))
        elif _is_group(key):
            if isinstance(value, dict):
                raise SparsecoreError(f"{key!r} is a mapping of untagged modifiers — {_NEW_STYLE_HINT}", loc,
                                      _NEW_STYLE_FIX)
            if value is None:
                continue  # an empty group (`pruning_modifiers:` with nothing under it): SparseML skipped it
            if not isinstance(value, list):
                raise SparsecoreError(f"{key!r} must be a list of !Modifier entries", loc,
                                      "write `- !GMPruningModifier` items under it")
            for i, item in enumerate(value):
                if not isinstance(item, _Tagged):
                    hint = (f" — {_NEW_STYLE_HINT}" if isinstance(item, dict) and len(item) == 1
                            and str(next(iter(item))).endswith("Modifier") else "")
                    raise SparsecoreError(f"{key}[{i}] is not a tagged modifier{hint}", loc,
                                          "start each entry with a tag such as `- !GMPruningModifier`")
                modifiers.append(_modifier(item, key, loc))
        else:
            variables[key] = value
    _check_variables(variables, loc, stage)
    return variables, tuple(modifiers)


def _modifier(item: _Tagged, group: str, where: str) -> RawModifier:
    if not isinstance(item.fields, dict):
        raise SparsecoreError(f"modifier !{item.tag} must be a mapping of fields", f"{where}, line {item.line}",
                              "write `- !Tag` then `field: value` lines")
    return RawModifier(item.tag, dict(item.fields), group)


def _check_variables(variables: dict, where: str, stage: str | None) -> None:
    for key, value in variables.items():
        if _holds_tagged(value):
            raise SparsecoreError(f"{key!r} holds a !Modifier but its key does not contain 'modifiers'", where,
                                  f"rename it (e.g. {key}_modifiers) or move the entries into a modifiers list")
        if isinstance(value, dict) and stage is None and key.endswith("_stage"):
            raise SparsecoreError(f"{key!r} is a stage without modifier lists — {_NEW_STYLE_HINT}", where,
                                  _NEW_STYLE_FIX)


def _holds_tagged(value: object) -> bool:
    if isinstance(value, _Tagged):
        return True
    if isinstance(value, list):
        return any(_holds_tagged(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_tagged(v) for v in value.values())
    return False
