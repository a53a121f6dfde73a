"""Restricted arithmetic for recipe values written as ``eval`` expressions — never Python's ``eval``.

Grammar (parsed with :mod:`ast`, which only builds a tree and runs nothing):
numbers, variable names, ``+ - * / // ** %``, unary ``+``/``-`` and parentheses.
Anything else (calls, attributes, subscripts, strings, comparisons) is rejected.
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
_MAX_MAGNITUDE = 1e15  # recipe numbers are epochs, rates and sparsities; anything larger is a mistake


def evaluate(expr: str, lookup: Callable[[str], Number], where: str) -> Number:
    """Evaluate ``expr`` where names are resolved through ``lookup(name)``."""
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError as exc:
        raise SparsecoreError(
            f"cannot parse eval expression {expr!r}: {exc.msg}", where,
            "use numbers, variable names, + - * / // ** % and parentheses",
        ) from None
    return _eval(tree.body, lookup, expr, where)


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
        if isinstance(value, complex):
            raise SparsecoreError(f"{expr!r} is not a real number", where, "check the variables the expression uses")
        if not math.isfinite(value) or abs(value) > _MAX_MAGNITUDE:
            raise _too_big(expr, where)
        return value
    raise SparsecoreError(
        f"{ast.unparse(node)!r} is not allowed in eval expression {expr!r}", where,
        "only numbers, variable names, + - * / // ** % and parentheses are allowed",
    )


def _too_big(expr: str, where: str) -> SparsecoreError:
    return SparsecoreError(f"{expr!r} is not a finite number of at most {_MAX_MAGNITUDE:g}", where,
                           "check the expression and the variables it uses")


def resolve_variables(raw: Mapping[str, object], where: str) -> dict[str, object]:
    """Resolve recipe variables, some of which may be ``eval`` expressions over others.

    Cycles (``a`` defined from ``b`` and ``b`` from ``a``) are errors naming the cycle.
    """
    done: dict[str, object] = {}
    visiting: list[str] = []

    def resolve(name: str) -> object:
        if name in done:
            return done[name]
        if name in visiting:
            cycle = " -> ".join(visiting[visiting.index(name):] + [name])
            raise SparsecoreError(f"variable cycle {cycle}", where, "break the cycle")
        if name not in raw:
            raise SparsecoreError(
                f"unknown variable {name!r}", where,
                f"define it at the top level of the recipe (known: {', '.join(sorted(raw)) or 'none'})",
            )
        visiting.append(name)
        done[name] = resolve_value(raw[name], get, f"{where}: variable {name}")
        visiting.pop()
        return done[name]

    def get(name: str) -> Number:
        value = resolve(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SparsecoreError(f"variable {name!r} is {value!r}, not a number", where,
                                  "only numeric variables can be used inside eval expressions")
        return value

    for key in raw:
        resolve(key)
    return done


def resolve_value(value: object, lookup: Callable[[str], Number], where: str) -> object:
    """Recursively replace ``eval`` expression strings inside ``value`` by their numbers."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("eval(") and text.endswith(")"):
            return evaluate(text[5:-1], lookup, where)
        return value
    if isinstance(value, list):
        return [resolve_value(v, lookup, where) for v in value]
    if isinstance(value, dict):
        return {resolve_value(k, lookup, where): resolve_value(v, lookup, where) for k, v in value.items()}
    return value
