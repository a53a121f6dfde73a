"""Fuzzing recipes: whatever the recipe text, loading it and binding it to a model ends in success or one
``SparsecoreError`` — never another exception, a hang or a crash (``fuzz_support.outcome``).

Inputs start from real recipes (``recipe_seeds``) and are mutated as characters and lines (``text``), as YAML
structure (``structure``: values swapped for odd types, huge / non-finite / negative numbers, unicode, keys
dropped or added, nesting, tags renamed, shared nodes that dump as anchors and aliases), through ``eval``
expressions (``eval``: arithmetic, names, attribute access, calls, huge exponents, division by zero, deep
nesting), through ``--recipe_args`` (``args``: JSON, ``k=v`` pairs, odd YAML values, deep nesting), through
``params`` / ``ignore`` / ``layers`` selectors (``selectors``: exact names, catastrophic and
invalid regexes, huge repeats) and as alias bombs (``aliases``: "billion laughs", recursive aliases, which
must be refused). Each input goes through ``recipe_pipeline.run_recipe``: load, validate on a tiny BERT,
write back and reload, and (for small asks) one-shot application and a few training steps.
"""

from __future__ import annotations

import json
import math
import re

import pytest
import yaml
from fuzz_support import FAST, SLOW, outcome
from hypothesis import given, settings
from hypothesis import strategies as st
from recipe_pipeline import run_recipe
from recipe_seeds import seeds

from sparsecore import selectors
from sparsecore.errors import SparsecoreError
from sparsecore.modifiers import MODIFIERS, OUT_OF_SCOPE
from sparsecore.recipe.parse import MAX_EXPANDED_NODES, split_front_matter

SEEDS = seeds()
FIELDS = sorted({f for cls, _ in MODIFIERS.values() for f in cls.__dataclass_fields__ if f not in ("rt", "tag")})
TAGS = sorted(MODIFIERS) + sorted(OUT_OF_SCOPE)[:4] + ["", "!", "gmpruningmodifier", "GMPruningModifier "]
PARAM_NAMES = ["bert.encoder.layer.0.attention.self.query.weight", "bert.encoder.layer.1.output.dense.weight",
               "bert.pooler.dense.weight", "classifier.weight", "classifier.bias",
               "bert.embeddings.word_embeddings.weight"]
MATCH_SECONDS = 0.25  # the selector timeout while fuzzing (2 s in use): a catastrophic pattern costs little here

# ---------------------------------------------------------------- values

ODD_STRINGS = ["", " ", "~", "null", "NaN", ".nan", "-.inf", "1e400", "-1", "0x1F", "1_000", "yes", "off", "\t",
               "\x00", "\ufeff", "\u202e", "日本語", "💥" * 20, "a" * 5000, "__ALL__", "__ALL_PRUNABLE__",
               "eval()",
               "eval(", "eval(eval(1))", "!GMPruningModifier", "&a", "*a", "---", "{", "[", "'", '"', "#", ": ",
               "- ", "%", "@", "`", "|", ">", "?", "re:", "re:(", "zoo:x", "builtin:transfer", "unstructured",
               "block4", "2:4", "0:0", "linear", "cubic", "StepLR", "logits", "movement"]
NUMBERS = st.one_of(
    st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
    st.sampled_from([0, 1, -1, 2, 4, 2 ** 31, 2 ** 63, 10 ** 30, 10 ** 400]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 0.5, 0.999999, 1.0, 1e-300, 5e-324, 1e308, 1e15, 1e16]),
)
SCALARS = st.one_of(NUMBERS, st.booleans(), st.none(), st.sampled_from(ODD_STRINGS), st.text(max_size=20))

# ---------------------------------------------------------------- eval expressions

EVAL_NAMES = ["num_epochs", "init_lr", "final_sparsity", "x", "undefined", "__import__", "os", "abs", "True",
              "None", "nan", "inf", "eval", "self", "__builtins__"]
EVAL_ATOMS = st.one_of(
    st.integers(min_value=-(10 ** 20), max_value=10 ** 20).map(str),
    st.floats(allow_nan=False).map(repr),
    st.sampled_from(EVAL_NAMES),
    st.sampled_from(["9**9**9", "1/0", "1//0", "1%0", "0**-1", "(-8)**0.5", "'a'", '"s"', "[1]", "{}", "()",
                     "x.y", "__import__('os').system('true')", "lambda: 1", "1 if 1 else 2", "1 < 2", "not 1", "~1",
                     "1 << 1000", "f'{1}'", "...", "1j", "0x10", "1_000", "1e309", "-1e309", "2**-2000", "10**15",
                     "(1).__class__", "[x for x in ()]", "open('/etc/passwd')", "*x", "**x", "a:=1", "yield", ""]),
)


def _call(parts) -> str:
    name, args, keyword = parts
    inner = ", ".join(args)
    return f"{name}({inner}{', ndigits=2' if keyword else ''})"


EVAL_EXPRS = st.recursive(EVAL_ATOMS, lambda e: st.one_of(
    st.tuples(e, st.sampled_from(["+", "-", "*", "/", "//", "**", "%", "@", "<<", "and", "|", ",", " ", "=="]), e)
    .map(" ".join),
    st.tuples(st.sampled_from(["-", "+", "~", "not "]), e).map("".join),
    e.map(lambda s: f"({s})"),
    st.tuples(st.sampled_from(["abs", "float", "int", "min", "max", "round", "eval", "getattr", "open", "len"]),
              st.lists(e, max_size=3), st.booleans()).map(_call),
    e.map(lambda s: f"({s}).__class__"),
    e.map(lambda s: f"({s})[0]"),
), max_leaves=10)
DEEP_EXPRS = st.tuples(st.integers(1, 1100), st.sampled_from(["-", "+", "(", "not ", "-(", "abs("])).map(
    lambda t: t[1] * t[0] + "1" + {"(": ")", "-(": ")", "abs(": ")"}.get(t[1], "") * t[0])
EXPRESSIONS = st.one_of(EVAL_EXPRS, DEEP_EXPRS)

# ---------------------------------------------------------------- selectors

REGEX_PARTS = ["bert", "encoder", "layer", r"\.", ".", ".*", ".+", r"\d+", "[0-9]", "(query|key|value)", "weight",
               "bias", r"\w+", "(a|aa)", "a", "x", "$", "^", "(?i)", "(?:", ")", "(", "[", "]", "*", "+", "?",
               "{2,1}", "{65536}", "{1000000000}", r"\1", "(?P<n>a)", "(?P=n)", "(?<=a+)", "(?>a+)", "a++",
               "(?R)", "(?0)", "(?:abc){e<=2}", r"\p{L}", r"\N{SNOWMAN}", "[[:alpha:]]", "(?V1)[[a]--[b]]", "\\"]
CATASTROPHIC = ["(.*)*x", "(.*.*)*\\.zz", "(a|a)*$", "(.+)+weight!", "(\\w|\\d)*\\.X", "(.*a){20}",
                "(?:(?:.*)*)*y", "(x+x+)+y", "(.*?,){30}P", "((.*)*)*[0-9]{99}"]
REGEXES = st.one_of(
    st.lists(st.sampled_from(REGEX_PARTS), min_size=1, max_size=8).map("".join),
    st.sampled_from(CATASTROPHIC),
    st.text(max_size=12),
    st.tuples(st.sampled_from(["(", "(?:", "["]), st.integers(1, 400)).map(lambda t: t[0] * t[1]),
    st.tuples(st.integers(1, 5), st.integers(0, 10 ** 9)).map(lambda t: f"(a{{{t[1]}}})" * t[0]),
)
SELECTORS = st.one_of(
    REGEXES.map(lambda r: "re:" + r),
    st.tuples(st.sampled_from(["RE:", " re:", "re: ", "re:re:", ""]), REGEXES).map("".join),
    st.sampled_from(PARAM_NAMES + ["__ALL_PRUNABLE__", "__ALL__", "__all_prunable__", "bert", "bert.encoder.layer.0",
                                   "bert.encoder.layer.1", "bert.encoder.layer.2", "classifier", "weight"]),
    st.text(max_size=30),
)

# ---------------------------------------------------------------- YAML trees


class Tag:
    """A ``!Tag`` node of a recipe as data (for structure mutations)."""

    def __init__(self, tag: str, fields) -> None:
        self.tag, self.fields = tag, fields


class _Loader(yaml.SafeLoader):
    pass


def _tagged(loader, suffix, node):
    if isinstance(node, yaml.MappingNode):
        return Tag(suffix, loader.construct_mapping(node, deep=True))
    return Tag(suffix, loader.construct_object(node, deep=True))


_Loader.add_multi_constructor("!", _tagged)


class _Dumper(yaml.SafeDumper):
    pass


def _represent_tag(dumper, t: Tag):
    tag = "!" + (t.tag or "x")
    if isinstance(t.fields, dict):
        return dumper.represent_mapping(tag, t.fields)
    if isinstance(t.fields, list):
        return dumper.represent_sequence(tag, t.fields)
    return dumper.represent_scalar(tag, "" if t.fields is None else str(t.fields))


_Dumper.add_representer(Tag, _represent_tag)
TREES = [yaml.load(split_front_matter(s, None), Loader=_Loader) for s in SEEDS]  # a SafeLoader subclass

VALUES = st.recursive(
    st.one_of(SCALARS, EXPRESSIONS.map(lambda e: f"eval({e})"), SELECTORS),
    lambda kids: st.one_of(st.lists(kids, max_size=4),
                           st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=8), NUMBERS), kids,
                                           max_size=4)),
    max_leaves=8)


def _slots(node, out):
    """Every (container, key) pair of a tree, in document order."""
    if isinstance(node, Tag):
        _slots(node.fields, out)
    elif isinstance(node, dict):
        for key in list(node):
            out.append((node, key))
            _slots(node[key], out)
    elif isinstance(node, list):
        for i in range(len(node)):
            out.append((node, i))
            _slots(node[i], out)
    return out


def _mutate_tree(draw, tree) -> None:
    slots = _slots(tree, [])
    if not slots:
        return
    container, key = slots[draw(st.integers(0, len(slots) - 1))]
    value = container[key]
    op = draw(st.sampled_from(["set", "set", "set", "drop", "add", "wrap", "retag", "share", "deepen", "swap"]))
    if op == "set":
        container[key] = draw(VALUES)
    elif op == "drop":
        del container[key]
    elif op == "add":
        target = value.fields if isinstance(value, Tag) and isinstance(value.fields, dict) else container
        if isinstance(target, dict):
            target[draw(st.one_of(st.sampled_from(FIELDS), st.text(max_size=8)))] = draw(VALUES)
        else:
            target.insert(draw(st.integers(0, len(target))), draw(VALUES))
    elif op == "wrap":
        container[key] = draw(st.sampled_from([lambda v: [v], lambda v: {"x": v}, lambda v: Tag("GMPruningModifier", v)
                                               ]))(value)
    elif op == "retag":
        tags = [t for t in _slots(tree, []) if isinstance(t[0][t[1]], Tag)]
        if tags:
            c, k = tags[draw(st.integers(0, len(tags) - 1))]
            c[k].tag = draw(st.one_of(st.sampled_from(TAGS), st.text(max_size=10)))
    elif op == "share":  # the same object twice: the dumper writes an &anchor and an *alias
        if isinstance(container, list):
            container.append(value)
        else:
            container[f"{key}_again"] = value
    elif op == "deepen":
        for _ in range(draw(st.integers(1, 300))):
            value = [value]
        container[key] = value
    elif op == "swap" and isinstance(value, (dict, list)):
        container[key] = list(value.values()) if isinstance(value, dict) else dict(enumerate(value))


@st.composite
def structures(draw) -> str:
    """A seed recipe's YAML tree after 1–4 structure mutations, dumped in block or flow style."""
    tree = _clone(TREES[draw(st.integers(0, len(TREES) - 1))])
    for _ in range(draw(st.integers(1, 4))):
        _mutate_tree(draw, tree)
    try:
        return yaml.dump(tree, Dumper=_Dumper, sort_keys=False, allow_unicode=draw(st.booleans()),
                         default_flow_style=draw(st.sampled_from([False, True, None])))
    except (yaml.YAMLError, RecursionError, ValueError):  # what even PyYAML cannot write (e.g. 300 levels deep)
        return yaml.dump(_clone(TREES[0]), Dumper=_Dumper, sort_keys=False)


def _clone(node):
    if isinstance(node, Tag):
        return Tag(node.tag, _clone(node.fields))
    if isinstance(node, dict):
        return {k: _clone(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_clone(v) for v in node]
    return node


# ---------------------------------------------------------------- text mutations

TOKENS = ["\n", "  ", "\t", ":", ": ", "- ", "-", "!", "!!python/object/apply:os.system ['true']", "!!binary x",
          "&a ", "*a", "<<: *a", "{", "}", "[", "]", ",", "'", '"', "#", "---\n", "...\n", "+++\n", "%YAML 1.1\n",
          "%TAG ! tag:x,2000:\n", "eval(", ")", "eval(9**9**9)", "eval(1/0)", "re:(.*)*x", "\x00", "\ufeff", "\r",
          "\x85", "\u2028", "\udcff", "? ", "|\n", ">-\n", "1e400", ".nan", "-.inf", "0o777", "!GMPruningModifier",
          "_modifiers:", "stage_0:\n", "version: 1.1.0\n"]


def _span(draw, text):
    i = draw(st.integers(0, len(text)))
    return i, min(len(text), i + draw(st.integers(1, 40)))


@st.composite
def text_mutations(draw) -> str:
    """A seed recipe's text after 1–6 character- and line-level edits."""
    text = SEEDS[draw(st.integers(0, len(SEEDS) - 1))]
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["insert", "insert", "delete", "replace", "line", "line", "indent", "number",
                                   "truncate", "markdown", "repeat"]))
        lines = text.split("\n")
        if op == "insert":
            i = draw(st.integers(0, len(text)))
            text = text[:i] + draw(st.one_of(st.sampled_from(TOKENS), st.text(max_size=6))) + text[i:]
        elif op == "delete":
            i, j = _span(draw, text)
            text = text[:i] + text[j:]
        elif op == "replace":
            i, j = _span(draw, text)
            text = text[:i] + draw(st.text(max_size=j - i)) + text[j:]
        elif op == "line":
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            how = draw(st.sampled_from(["dup", "drop", "swap", "move"]))
            if how == "dup":
                lines.insert(j, lines[i])
            elif how == "drop":
                del lines[i]
            elif how == "swap":
                lines[i], lines[j] = lines[j], lines[i]
            else:
                lines.insert(j, lines.pop(i))
            text = "\n".join(lines)
        elif op == "indent":
            i = draw(st.integers(0, len(lines) - 1))
            lines[i] = draw(st.sampled_from(["", " ", "  ", "    ", "\t"])) + lines[i].lstrip(draw(st.sampled_from(
                ["", " ", "  "])))
            text = "\n".join(lines)
        elif op == "number":
            found = list(re.finditer(r"-?\d+(\.\d+)?(e-?\d+)?", text))
            if found:
                m = found[draw(st.integers(0, len(found) - 1))]
                new = draw(st.one_of(NUMBERS.map(lambda n: json.dumps(n) if isinstance(n, float) else str(n)),
                                     st.sampled_from(["1e400", "-.inf", ".nan", "-0", "9" * 50])))
                text = text[:m.start()] + new + text[m.end():]
        elif op == "truncate":
            text = text[:draw(st.integers(0, len(text)))]
        elif op == "markdown":
            text = draw(st.sampled_from(["---\n{}\n---\n", "<!-- c -->\n---\n{}\n---\n", "+++\n{}\n+++\n",
                                         "---\n{}\n", "# title\n{}", "{}\n---\n---\n"])).replace("{}", text)
        else:
            i, j = _span(draw, text)
            text = text[:j] + text[i:j] * draw(st.integers(2, 50)) + text[j:]
    return text


# ---------------------------------------------------------------- alias bombs


@st.composite
def alias_bombs(draw) -> tuple[str, int]:
    """(recipe text, nodes its aliases expand to): a "billion laughs" chain, placed as a variable or a field."""
    width, depth = draw(st.integers(2, 12)), draw(st.integers(1, 24))
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, depth)]
    expanded = sum(width ** k for k in range(1, depth + 1)) + depth  # list nodes + leaves, roughly
    where = draw(st.sampled_from(["variable", "params", "flow"]))
    tail = "modifiers:\n  - !EpochRangeModifier\n    end_epoch: 1\n"
    if where == "params":
        tail = (f"modifiers:\n  - !GMPruningModifier\n    params: *a{depth - 1}\n    final_sparsity: 0.5\n"
                "    end_epoch: 1\n")
    if where == "flow":
        tail = f"modifiers: [!EpochRangeModifier {{end_epoch: 1, x: *a{depth - 1}}}]\n"
    return "\n".join(lines) + "\n" + tail, expanded


RECURSIVE = ["x: &a [*a]\n", "x: &a {k: *a}\n", "x: &a [1, [2, *a]]\n", "x: &a {k: [*a]}\n",
             "x: &a !GMPruningModifier {params: *a}\n", "x: &a [&b [*a, *b]]\n"]

# ---------------------------------------------------------------- properties


@pytest.fixture(autouse=True, scope="module")
def _fast_selector_timeout():
    """A catastrophic selector is refused after ``MATCH_SECONDS`` instead of 2 s (the refusal path is the same)."""
    before = selectors.MATCH_SECONDS
    selectors.MATCH_SECONDS = MATCH_SECONDS
    yield
    selectors.MATCH_SECONDS = before


def _finite_loaded(recipe) -> None:
    if isinstance(recipe, SparsecoreError):
        return
    for m in recipe.modifiers:
        for name in ("start_epoch", "end_epoch", "final_sparsity", "init_lr", "update_frequency"):
            value = getattr(m, name, 0.0)
            assert not isinstance(value, float) or math.isfinite(value), (m.tag, name, value)


@settings(FAST)
@given(text=text_mutations(), how=st.sampled_from(["inline", "inline", "yaml-file", "md-file", "bytes-file"]),
       noise=st.binary(max_size=16))
def test_mutated_recipe_text(text, how, noise):
    raw = None
    if how == "bytes-file":  # the text with raw bytes spliced in (invalid UTF-8, NUL, BOMs)
        data = text.encode("utf-8", "surrogatepass")
        raw, how = data[: len(data) // 2] + noise + data[len(data) // 2:], "yaml-file"
    _finite_loaded(outcome("recipe-text", run_recipe, text, how, raw))


@settings(FAST)
@given(text=structures())
def test_mutated_recipe_structure(text):
    _finite_loaded(outcome("recipe-structure", run_recipe, text))


@settings(FAST)
@given(exprs=st.lists(EXPRESSIONS, min_size=6, max_size=6), quote=st.booleans(), variables=st.booleans())
def test_eval_expressions(exprs, quote, variables):
    def val(e):
        text = f"eval({e})"
        return json.dumps(text) if quote else text  # unquoted: the expression's YAML meaning is fuzzed too

    head = (f"num_epochs: {val(exprs[0])}\ninit_lr: {val(exprs[1])}\nfinal_sparsity: {val(exprs[2])}\nx: 2\n"
            if variables else "num_epochs: 2\ninit_lr: 0.001\nfinal_sparsity: 0.5\nx: 2\n")
    text = head + f"""modifiers:
  - !EpochRangeModifier
    end_epoch: {val(exprs[3])}
  - !LearningRateFunctionModifier
    init_lr: eval(init_lr)
    final_lr: {val(exprs[4])}
    end_epoch: eval(num_epochs)
  - !GMPruningModifier
    params: __ALL_PRUNABLE__
    final_sparsity: eval(final_sparsity)
    end_epoch: eval(num_epochs)
    update_frequency: {val(exprs[5])}
"""
    _finite_loaded(outcome("recipe-eval", run_recipe, text))


ARG_RECIPES = [t for t in SEEDS if "pruning_end_epoch" in t or "stage" in t][:3]
ARG_NAMES = ["num_epochs", "init_lr", "final_lr", "final_sparsity", "pruning_start_epoch", "pruning_end_epoch",
             "pruning_update_frequency", "num_grads", "epochs", "start", "end", "unknown", "", " x ", "a=b", "{"]
ARG_VALUES = st.one_of(NUMBERS.map(str), st.sampled_from(ODD_STRINGS), st.sampled_from(TOKENS), st.text(max_size=12),
                       st.integers(1, 3000).map(lambda n: "[" * n), EXPRESSIONS.map(lambda e: f"eval({e})"))
RECIPE_ARGS = st.one_of(
    st.dictionaries(st.sampled_from(ARG_NAMES), VALUES, max_size=4),
    st.dictionaries(st.sampled_from(ARG_NAMES), VALUES, max_size=4).map(json.dumps),
    st.lists(st.tuples(st.sampled_from(ARG_NAMES), ARG_VALUES), max_size=4).map(
        lambda kv: ",".join(f"{k}={v}" for k, v in kv)),
    st.integers(1, 100_000).map(lambda n: '{"num_epochs": ' + "[" * n + "]" * n + "}"),
    st.text(max_size=30),
)


@settings(FAST)
@given(seed=st.sampled_from(ARG_RECIPES), args=RECIPE_ARGS)
def test_recipe_args(seed, args):
    outcome("recipe-args", run_recipe, seed, recipe_args=args)


SELECTOR_SLOTS = [
    "modifiers:\n  - !GMPruningModifier\n    params: {s}\n    final_sparsity: 0.5\n    end_epoch: 1\n",
    "modifiers:\n  - !ConstantPruningModifier\n    params: {s}\n",
    "modifiers:\n  - !TrainableParamsModifier\n    params: {s}\n    trainable: false\n    params_strict: {b}\n",
    "modifiers:\n  - !QuantizationModifier\n    ignore: {s}\n    strict: {b}\n",
    "modifiers:\n  - !QuantizationModifier\n    submodules: {s}\n",
    "modifiers:\n  - !LayerPruningModifier\n    layers: {s}\n",
    ("modifiers:\n  - !OBSPruningModifier\n    params: {s}\n    final_sparsity: 0.5\n    end_epoch: 1\n"
     "    num_grads: 4\n    fisher_block_size: 4\n"),
    "modifiers:\n  - !GlobalMagnitudePruningModifier\n    final_sparsity: {{0.5: {s}}}\n    end_epoch: 1\n",
    "modifiers:\n  - !DistillationModifier\n    distill_output_keys: {s}\n",
]


@settings(SLOW)
@given(slot=st.sampled_from(SELECTOR_SLOTS), chosen=st.lists(SELECTORS, min_size=1, max_size=3),
       strict=st.booleans())
def test_selectors(slot, chosen, strict):
    text = slot.format(s=json.dumps(chosen, ensure_ascii=False), b=str(strict).lower())
    outcome("recipe-selectors", run_recipe, text)


@settings(FAST)
@given(bomb=alias_bombs())
def test_alias_bombs_are_refused_quickly(bomb):
    text, expanded = bomb
    result = outcome("recipe-aliases", run_recipe, text)
    if expanded > 2 * MAX_EXPANDED_NODES:
        assert isinstance(result, SparsecoreError) and "aliases" in str(result), result


@pytest.mark.parametrize("alias", RECURSIVE)
def test_recursive_aliases_are_refused(alias):
    text = alias + "modifiers:\n  - !EpochRangeModifier\n    end_epoch: 1\n"
    assert isinstance(outcome("recipe-aliases", run_recipe, text), SparsecoreError)
