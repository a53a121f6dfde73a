"""Resolve recipe ``params`` selectors to parameters, by fully-qualified name.

Selectors, resolved once against ``model.named_parameters()``:
- an exact parameter name, e.g. ``bert.encoder.layer.0.output.dense.weight``;
- ``re:<regex>`` — Python regex that must match the *whole* name (``re.fullmatch``). SparseML matched
  from the start of the name only (``re.match``), so ``re:…query`` also took ``…query.bias`` there: a
  pattern that would select other parameters under SparseML's rule than under ours is an error naming
  the difference (end it with ``$`` to keep whole names, or ``.*`` to take what SparseML took);
- ``__ALL_PRUNABLE__`` — the weights of every ``nn.Linear`` and ``nn.Conv1d/2d/3d``;
- ``__ALL__`` — every parameter.
The result is the union, in the model's parameter order, without duplicates.
Precedence does not change membership; it only decides error messages: an exact
name is tried first, so a name that happens to contain regex characters is
still matched literally. Every selector must match at least one parameter.
"""

from __future__ import annotations

import time

import regex
from torch import nn

from sparsecore.errors import SparsecoreError

ALL_PRUNABLE = "__ALL_PRUNABLE__"
ALL = "__ALL__"
_PRUNABLE_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


NEVER_RUN_ATTR = "sparsecore_never_run"  # True on modules a model keeps but never calls (a siamese pooler)


def prunable_names(model: nn.Module) -> list[str]:
    names = []
    for mod_name, module in model.named_modules():
        if isinstance(module, _PRUNABLE_TYPES):
            names.append(f"{mod_name}.weight" if mod_name else "weight")
    return names


MATCH_SECONDS = 2.0  # per selector, over all names: a pattern that needs longer is catastrophic backtracking
# regex expands counted repeats when it compiles (about 250 bytes per repeat: a{10**9} takes gigabytes and
# seconds); the product of a pattern's counts bounds the expansion from above, even nested ones
MAX_REPEATS = 100_000
_COUNT = regex.compile(r"(?<!\\)\{(\d*)(?:,(\d*))?\}")  # {m} {m,} {,n} {m,n}, not an escaped \{


def _repeat_product(pattern: str) -> int:
    """Product of the counts of ``{m,n}`` repeats in ``pattern`` (the larger bound of each), capped above
    :data:`MAX_REPEATS`."""
    product = 1
    for match in _COUNT.finditer(pattern):
        for digits in match.groups():
            if digits and len(digits.lstrip("0")) > 9:
                return MAX_REPEATS + 1
        product *= max(int(match.group(1) or 0), int(match.group(2) or 0), 1)
        if product > MAX_REPEATS:
            return MAX_REPEATS + 1
    return product


def compile_selector(selector: str, where: str):
    """The compiled regex of a ``re:<regex>`` selector (the ``regex`` package: Python's syntax, plus a match
    timeout), or a one-line error naming it; patterns whose counted repeats multiply past :data:`MAX_REPEATS`
    are refused before compiling."""
    if _repeat_product(selector[3:]) > MAX_REPEATS:
        raise SparsecoreError(f"selector {selector!r} repeats over {MAX_REPEATS:,} times ({{m,n}} counts "
                              "multiplied)", where, "use * or + instead of large counts: names are short")
    try:
        return regex.compile(selector[3:])
    except (regex.error, MemoryError, OverflowError, RecursionError) as exc:
        raise SparsecoreError(f"invalid regex in selector {selector!r}: {exc or type(exc).__name__}", where,
                              "fix the regular expression") from None


def _timed(selector: str, pattern, names, where: str, method: str) -> list[str]:
    """The names ``pattern.<method>`` accepts, within :data:`MATCH_SECONDS` in all (else a one-line error)."""
    deadline = time.monotonic() + MATCH_SECONDS
    try:
        return [name for name in names
                if getattr(pattern, method)(name, timeout=max(deadline - time.monotonic(), 1e-3))]
    except TimeoutError:
        raise SparsecoreError(f"selector {selector!r} takes over {MATCH_SECONDS:g} s to match the model's names "
                              "(catastrophic backtracking)", where,
                              "simplify the pattern, e.g. no nested repeats like (.*)*") from None


def match_names(selector: str, names, where: str) -> set[str]:
    """The names an exact name or a ``re:<regex>`` (whole-name match) selects; exact names are tried first,
    so a name that contains regex characters still matches literally. Parameters (recipe ``params``) and
    modules (quantization ``ignore``) are selected by this one rule."""
    if selector in names:
        return {selector}
    if selector.startswith("re:"):
        return set(_timed(selector, compile_selector(selector, where), names, where, "fullmatch"))
    return set()


def _same_as_sparseml(selector: str, pattern, params: dict, hits: set[str], where: str) -> None:
    extra = [name for name in _timed(selector, pattern, params, where, "match") if name not in hits]
    if extra:
        raise SparsecoreError(
            f"selector {selector!r} matches {len(hits)} parameter(s) by whole name, but SparseML (which matched "
            f"from the start of the name) would also take {len(extra)} more, e.g. {extra[0]}", where,
            "end the pattern with '$' to select whole names only, or with '.*' to take what SparseML took")


def resolve_params(model: nn.Module, selectors: tuple[str, ...] | list[str], where: str,
                   strict: bool = True) -> list[tuple[str, nn.Parameter]]:
    """Return ``[(name, parameter), ...]`` selected by ``selectors``.

    ``strict=False`` (TrainableParamsModifier's ``params_strict: false``) skips selectors that
    match nothing instead of failing. Parameters of modules marked :data:`NEVER_RUN_ATTR` are never selected
    (no gradient or value ever flows through them).
    """
    never = tuple(f"{n}." for n, m in model.named_modules() if n and getattr(m, NEVER_RUN_ATTR, False))
    params = {k: v for k, v in model.named_parameters() if not k.startswith(never)}
    order = {name: i for i, name in enumerate(params)}
    chosen: set[str] = set()
    for selector in selectors:
        if selector == ALL and selector not in params:
            hits = set(params)
        elif selector == ALL_PRUNABLE and selector not in params:
            hits = set(prunable_names(model)) & set(params)
        else:
            hits = match_names(selector, params, where)
            if selector.startswith("re:") and selector not in params:
                _same_as_sparseml(selector, compile_selector(selector, where), params, hits, where)
        if not hits and strict:
            sample = ", ".join(list(params)[:3])
            raise SparsecoreError(f"selector {selector!r} matches no parameter", where,
                                  f"use an exact name, re:<regex> matching whole names, {ALL_PRUNABLE} or {ALL} "
                                  f"(names look like: {sample}, ...)")
        chosen |= hits
    return [(name, params[name]) for name in sorted(chosen, key=order.__getitem__)]
