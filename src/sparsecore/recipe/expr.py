"""Restricted arithmetic for recipe values written as ``eval`` expressions — never Python's ``eval``.

Grammar (parsed with :mod:`ast`, which only builds a tree and runs nothing): numbers, variable
names, ``+ - * / // ** %``, unary ``+``/``-``, parentheses, and calls of exactly the functions
SparseML allowed: ``abs float int min max round``. Anything else (attributes, subscripts, strings,
comparisons, other calls) is rejected. An expression that is a bare variable name returns the
variable's value whatever it is (a list of parameter names, a string, a bool), as SparseML did.
"""

from __future__ import annotations

import ast
import math
import operator
from typing import Callable, Mapping

from sparsecore.errors import SparsecoreError

Number = int | float

_BINOPS: dict[type, Callable[[Number, Number], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Number], Number]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
# name → (function, fewest positional arguments, most positional arguments)
_FUNCTIONS: dict[str, tuple[Callable[..., Number], int, int]] = {
    "abs": (abs, 1, 1), "float": (float, 1, 1), "int": (int, 1, 1),
    "min": (min, 2, 64), "max": (max, 2, 64), "round": (round, 1, 2),
}
_MAX_MAGNITUDE = 1e15  # recipe numbers are epochs, rates and sparsities; anything larger is a mistake
_ALLOWED = "numbers, variable names, + - * / // ** %, parentheses and abs float int min max round"


MAX_EXPRESSION_CHARS = 1000  # eval(...) bodies in real recipes are a few dozen characters
MAX_EXPRESSION_DEPTH = 100  # nested operations (``-(-(…))``); the evaluator recurses once per level


def evaluate(expr: str, lookup: Callable[[str], Number], where: str) -> Number:
    """Evaluate ``expr`` where names are resolved through ``lookup(name)``."""
    if len(expr) > MAX_EXPRESSION_CHARS:  # also bounds the parser's work
        raise SparsecoreError(f"eval expression of {len(expr):,} characters (at most {MAX_EXPRESSION_CHARS})", where,
                              "compute the value once and write it as a number or a variable")
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except (SyntaxError, MemoryError, RecursionError) as exc:  # the parser's own nesting limits
        msg = exc.msg if isinstance(exc, SyntaxError) else "too deeply nested"
        raise SparsecoreError(f"cannot parse eval expression {expr!r}: {msg}", where, f"use {_ALLOWED}") from None
    _check_depth(tree.body, expr, where)
    return _checked(_eval(tree.body, lookup, expr, where), expr, where)


def _check_depth(tree: ast.AST, expr: str, where: str) -> None:
    """Refuse trees nested over ``MAX_EXPRESSION_DEPTH`` levels (walked without recursion)."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_EXPRESSION_DEPTH:
            raise SparsecoreError(f"eval expression {expr!r} nests over {MAX_EXPRESSION_DEPTH} operations", where,
                                  "split it into variables")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _eval(node: ast.AST, lookup: Callable[[str], Number], expr: str, where: str) -> Number:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.Name):
        return lookup(node.id)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand, lookup, expr, where))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left = _eval(node.left, lookup, expr, where)
        right = _eval(node.right, lookup, expr, where)
        if isinstance(node.op, ast.Pow) and left != 0 and abs(right) * math.log10(max(abs(left), 1.0)) > 15:
            raise _too_big(expr, where)  # checked before computing: 9**9**9 would never finish
        try:
            value = _BINOPS[type(node.op)](left, right)
        except ZeroDivisionError:
            raise SparsecoreError(f"division by zero in {expr!r}", where,
                                  "check the variables the expression uses") from None
        except OverflowError:
            raise _too_big(expr, where) from None
        return _checked(value, expr, where)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS:
        return _call(node, lookup, expr, where)
    raise SparsecoreError(f"{ast.unparse(node)!r} is not allowed in eval expression {expr!r}", where,
                          f"only {_ALLOWED} are allowed")


def _call(node: ast.Call, lookup: Callable[[str], Number], expr: str, where: str) -> Number:
    name = node.func.id
    func, fewest, most = _FUNCTIONS[name]
    args = [_eval(a, lookup, expr, where) for a in node.args]
    kwargs = {}
    for kw in node.keywords:
        if not (name == "round" and kw.arg == "ndigits"):
            raise SparsecoreError(f"{name}() takes no keyword {kw.arg!r} in {expr!r}", where,
                                  "pass positional arguments (round also takes ndigits=)")
        kwargs["ndigits"] = _eval(kw.value, lookup, expr, where)
    count = len(args) + len(kwargs)
    if not fewest <= count <= most:
        wanted = f"{fewest}" if fewest == most else f"{fewest} to {most}"
        raise SparsecoreError(f"{name}() takes {wanted} arguments, {count} given in {expr!r}", where,
                              f"call {name} with {wanted} numbers")
    if name == "round" and (len(args) + len(kwargs)) == 2:
        digits = kwargs.get("ndigits", args[-1])
        if not isinstance(digits, int) or not -20 <= digits <= 20:
            raise SparsecoreError(f"round() digits {digits!r} in {expr!r} is not an integer in [-20, 20]", where,
                                  "round to a whole number of digits")
    try:
        return func(*args, **kwargs)
    except (OverflowError, ValueError):
        raise _too_big(expr, where) from None


def _checked(value: Number, expr: str, where: str) -> Number:
    if isinstance(value, complex):
        raise SparsecoreError(f"{expr!r} is not a real number", where, "check the variables the expression uses")
    if not math.isfinite(value) or abs(value) > _MAX_MAGNITUDE:
        raise _too_big(expr, where)
    return value


def _too_big(expr: str, where: str) -> SparsecoreError:
    return SparsecoreError(f"{expr!r} is not a finite number of at most {_MAX_MAGNITUDE:g}", where,
                           "check the expression and the variables it uses")


def _as_number(value: object) -> Number | None:
    """Numbers, and strings that read as one (``--recipe_args`` JSON, quoted values): ``"3e-5"`` → 3e-05."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def eval_body(value: object) -> str | None:
    """The expression inside a recipe's eval wrapper (``x + 1`` for that wrapper around it); None otherwise."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("eval(") and text.endswith(")"):
            return text[5:-1].strip()
    return None


class Scope:
    """Variables of one recipe section, resolved lazily (cycles are errors naming the cycle).

    A stage's scope has the recipe's top-level scope as ``outer``: stage variables shadow global
    ones. SparseML's one quirk is kept: inside a stage's *variable definitions*, an expression that is
    just a global variable's ``name`` takes the global value even when the stage defines a number of
    that name.
    """

    def __init__(self, raw: Mapping[str, object], where: str, outer: "Scope | None" = None) -> None:
        self.raw, self.where, self.outer = dict(raw), where, outer
        self._done: dict[str, object] = {}
        self._visiting: list[str] = []

    def names(self) -> list[str]:
        """Every variable name visible here (this scope's and the outer ones'), sorted."""
        return sorted(set(self.raw) | (set(self.outer.names()) if self.outer else set()))

    def has(self, name: str) -> bool:
        """True when ``name`` is defined here or in an outer scope."""
        return name in self.raw or (self.outer is not None and self.outer.has(name))

    def value(self, name: str) -> object:
        """A variable's resolved value, of any type."""
        if name not in self.raw:
            if self.outer is not None and self.outer.has(name):
                return self.outer.value(name)
            raise SparsecoreError(f"unknown variable {name!r}", self.where,
                                  f"define it at the top level of the recipe (known: {', '.join(self.names()) or 'none'})")
        if name in self._done:
            return self._done[name]
        if name in self._visiting:
            cycle = " -> ".join(self._visiting[self._visiting.index(name):] + [name])
            raise SparsecoreError(f"variable cycle {cycle}", self.where, "break the cycle")
        self._visiting.append(name)
        try:
            self._done[name] = self._resolve(self.raw[name], f"{self.where}: variable {name}", definition=True)
        finally:
            self._visiting.pop()
        return self._done[name]

    def number(self, name: str) -> Number:
        """A variable's resolved value as a number; ``SparsecoreError`` when it is not numeric."""
        value = self.value(name)
        number = _as_number(value)
        if number is None:
            raise SparsecoreError(f"variable {name!r} is {value!r}, not a number", self.where,
                                  "only numeric variables can be used inside eval expressions")
        return number

    def resolve(self, value: object, where: str) -> object:
        """Replace every ``eval`` expression inside ``value`` (nested lists/dicts too)."""
        return self._resolve(value, where, definition=False)

    def resolved(self) -> dict[str, object]:
        """This scope's own variables (not the outer ones), all resolved."""
        return {name: self.value(name) for name in self.raw}

    def _resolve(self, value: object, where: str, definition: bool) -> object:
        body = eval_body(value)
        if body is not None:
            if body.isidentifier():
                return self._bare(body, definition)
            return evaluate(body, self.number, where)
        if isinstance(value, list):
            return [self._resolve(v, where, definition) for v in value]
        if isinstance(value, dict):
            return self._resolve_mapping(value, where, definition)
        return value

    def _resolve_mapping(self, value: dict, where: str, definition: bool) -> dict:
        """A mapping with keys and values resolved; a key must stay a name or number and stay distinct."""
        out: dict = {}
        written: dict = {}
        for k, v in value.items():
            key = self._resolve(k, where, definition)
            if isinstance(key, (list, dict)):
                raise SparsecoreError(f"mapping key {k!r} is {key!r}, not a name or number", where,
                                      "use a key (or a variable in eval) holding a name or a number")
            if key in out:
                raise SparsecoreError(f"mapping keys {written[key]!r} and {k!r} are both {key!r}", where,
                                      "give each key a distinct value")
            written[key] = k
            out[key] = self._resolve(v, where, definition)
        return out

    def _bare(self, name: str, definition: bool) -> object:
        if definition and self.outer is not None and self.outer.has(name) and name in self.raw:
            if _as_number(self.raw[name]) is not None or eval_body(self.raw[name]) is not None:
                return self.outer.value(name)  # SparseML: the global wins over a numeric stage variable
        return self.value(name)


def resolve_variables(raw: Mapping[str, object], where: str) -> dict[str, object]:
    """Resolve one flat set of recipe variables, some of which may be ``eval`` expressions over others."""
    return Scope(raw, where).resolved()
