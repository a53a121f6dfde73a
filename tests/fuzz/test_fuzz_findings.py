"""What the fuzzers found, kept as plain tests: each input once refused with a traceback (or a hang, or gigabytes)
and is now one ``SparsecoreError`` line (or a success). ``REPORTED``: the data files' findings."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fuzz_support import outcome
from recipe_pipeline import run_recipe
from test_fuzz_data_files import load_files

from sparsecore.errors import SparsecoreError

END = "modifiers:\n  - !EpochRangeModifier\n    end_epoch: 1\n"
GMP = "modifiers:\n  - !GMPruningModifier\n    params: [{s}]\n    final_sparsity: 0.5\n    end_epoch: 1\n"


def refused(text: str) -> str:
    result = outcome("findings", run_recipe, text)
    assert isinstance(result, SparsecoreError), result
    return str(result)


@pytest.mark.parametrize("text, words", [
    ("x: &a [*a]\n" + END, "recursive alias"),  # RecursionError in parse._holds_tagged
    ("x: " + "[" * 1000 + "]" * 1000 + "\n" + END, "levels deep"),  # RecursionError in PyYAML's composer
    ("".join(f"a{i}: &a{i} [*a{i - 1}]\n" if i else "a0: &a0 [1]\n" for i in range(200)) + END,
     "levels deep through its *aliases"),  # each alias one level deeper: RecursionError after loading
    ("x: 1\nmodifiers:\n  - !EpochRangeModifier\n    end_epoch: eval(" + "-" * 990 + "x)\n",
     "nests over 100 operations"),  # RecursionError in expr._eval
    (("final: []\nmodifiers:\n  - !GlobalMagnitudePruningModifier\n"  # TypeError: unhashable type: 'list'
      "    final_sparsity: {eval(final): [classifier.weight]}\n    end_epoch: 1\n"), "not a name or number"),
    (("final: 0.5\nmodifiers:\n  - !GlobalMagnitudePruningModifier\n    final_sparsity: {0.5: [classifier.weight], "
      "eval(final): [bert.pooler.dense.weight]}\n    end_epoch: 1\n"), "are both 0.5"),  # one group silently lost
    (GMP.format(s="'re:(a{1000000000})'"), "repeats over"),  # regex.compile: 8 GB, then MemoryError
    (GMP.format(s="'re:((a{1000}){1000}){1000}'"), "repeats over"),
    ("modifiers:\n  - !Epoch%0DRange\n    end_epoch: 1\n", "is not a name"),  # the error spanned two lines
    (END + "  - ? !QuantizationModifier\n    start_epoch: 1.0\n", "a mapping key is itself a mapping"),  # TypeError
    ("\"stage\\n\":\n  modifiers:\n  - !EpochRangeModifier\n    end_epoch: 1\n", "is not a name"),
    ("modifiers:\n  - !TrainableParamsModifier\n    params: __ALL__\n    trainable: false\n",
     "every trainable parameter"),  # the first backward pass failed: "element 0 of tensors does not require grad"
    ("modifiers:\n  - !EpochRangeModifier\n    end_epoch: 1" + "0" * 400 + "\n", "(401 digits)"),  # OverflowError
    ("x: " + "1" * 5000 + "\n" + END, "a value cannot be read"),  # ValueError: int of over 4300 digits
    ("date: 2001-02-30\n" + END, "a value cannot be read"),  # ValueError: day is out of range for month
    (GMP.format(s="classifier.weight") + "    update_frequency: 1e-300\n", "epochs"),  # OverflowError, schedule
    (GMP.format(s="classifier.weight").replace("end_epoch: 1", "end_epoch: 1e308"), "magnitude at most"),
    ("modifiers:\n  - !GlobalMagnitudePruningModifier\n    final_sparsity: {" + "9" * 400 + ": [a]}\n"
     "    end_epoch: 1\n", "has key"),  # OverflowError: int too large to convert to float
    ("modifiers:\n  - !GlobalMagnitudePruningModifier\n    final_sparsity: {}\n    end_epoch: 1\n",
     "empty mapping"),  # a modifier that prunes nothing, written back with an &anchor
    ("x: [" + ", ".join(["1"] * 300_000) + "]\n" + END, "YAML values"),  # 13 s to compose, then refused
    ("".join(f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}]\n" if i else "a0: &a0 [1, 1]\n" for i in range(12)) + END,
     "through its *aliases"),  # 8 K values: written back and reloaded, past the 10 s deadline
    (("modifiers:\n  - !GlobalMagnitudePruningModifier\n    final_sparsity: {0.5: [], 0.7: [classifier.weight]}\n"
      "    end_epoch: 1\n"), "entry 0.5 is []"),  # ValueError in torch.cat (pruning/apply.py:62) at the first update
])
def test_fixed_recipe_findings(text, words):
    assert words in refused(text)


def test_a_recipe_written_back_has_no_anchors():
    """Values shared by a variable and a field (``params: eval(layers)``) were written as &id001 / *id001, so the
    written recipe differed from the one written after reloading it."""
    recipe = run_recipe("layers: [classifier.weight]\nmodifiers:\n  - !GMPruningModifier\n    params: eval(layers)\n"
                        "    final_sparsity: 0.5\n    end_epoch: 1\n")
    assert "&" not in recipe.to_yaml() and "*" not in recipe.to_yaml()


@pytest.mark.parametrize("args, words", [
    ("num_epochs=[", "cannot be read as YAML"),  # yaml.ParserError
    ("num_epochs=2001-02-30", "cannot be read as YAML"),  # ValueError: day is out of range for month
    ("num_epochs=&a [*a]", "nest over 64 levels"),  # a list holding itself: RecursionError when resolved
    ('{"num_epochs": ' + "[" * 100_000 + "]" * 100_000 + "}", "nests too deep"),  # RecursionError in json
])
def test_fixed_recipe_args_findings(args, words):
    result = outcome("findings", run_recipe, "minilm-gmp80-demo", recipe_args=args)
    assert isinstance(result, SparsecoreError) and words in str(result), result


def test_a_long_one_line_recipe_is_not_taken_for_a_path():
    """``Path.is_file`` raised OSError (file name too long) on long inline text without a newline."""
    text = "modifiers: [!EpochRangeModifier {end_epoch: 1, " + "x: 1, " * 100 + "}]"
    assert "unknown field 'x'" in refused(text)


def _parquet(**columns) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table(columns), sink)
    return sink.getvalue()


BAD_UTF8 = pa.array([b"ok", b"\x98x", b"z"], pa.binary()).view(pa.string())  # a string column that is not UTF-8

# Found in sparsecore/tasks: inputs and the exception each raised before it was fixed.
REPORTED = {
    "NUL in a csv column name": ({"train": ("train.csv", b"sentence\x00,label\nhello,1\nbye,0\n")},
                                 "datasets.table.CastError at tasks/tables.py:132 (Dataset.from_file)"),
    "newline in a column name": ({"train": ("train.csv", b'"a\nb",label\nhello,1\nbye,0\n')},
                                 "SparsecoreError on two lines (tasks/columns.py:_available)"),
    "lone surrogate in JSON": ({"train": ("train.json", json.dumps([{"sentence": "\udcff", "label": 0},
                                                                    {"sentence": "b", "label": 1}]).encode())},
                               "UnicodeEncodeError at tasks/tables.py:212 (pa.array)"),
    "null labels and an empty text": ({"train": ("train.jsonl", (b'{"sentence": "a", "label": null}\n'
                                                                 b'{"sentence": "", "label": 1}\n'
                                                                 b'{"sentence": "c", "label": 0}\n'))},
                                      ("ArrowInvalid at tasks/columnar.py:41 (unify_dictionaries after the empty "
                                       "rows are dropped, dataset.py:167)")),
    "list labels in parquet": ({"train": ("train.parquet", _parquet(sentence=["a", "b", "c"],
                                                                    label=[[0, 1], [1], [0]]))},
                               "ArrowNotImplementedError at tasks/columnar.py:41 (dictionary_encode of a list)"),
    "invalid UTF-8 labels in parquet": ({"train": ("train.parquet", _parquet(sentence=["a", "b", "c"],
                                                                             label=BAD_UTF8))},
                                        "UnicodeDecodeError at tasks/columnar.py:45 (dictionary.to_pylist)"),
    "invalid UTF-8 texts in parquet": ({"train": ("train.parquet", _parquet(sentence=BAD_UTF8, label=[0, 1, 0]))},
                                       "ArrowInvalid: Invalid UTF8 sequence, at tasks/empty_text.py:33"),
}


@pytest.mark.parametrize("name", REPORTED)
def test_reported_data_findings(name):
    files, _ = REPORTED[name]
    options = {"input_column_names": ["text"]} if name == "newline in a column name" else {}
    outcome("findings", load_files, files, **options)
