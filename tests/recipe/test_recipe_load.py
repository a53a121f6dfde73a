import textwrap

import pytest

from sparsecore.errors import SparsecoreError
from sparsecore.modifiers.pruning import GMPruningModifier
from sparsecore.recipe import ZOO_RECIPES, builtin_names, load_recipe

RECIPE = textwrap.dedent("""
    num_epochs: 4
    start: eval(num_epochs / 4)
    final: 0.9
    training_modifiers:
      - !EpochRangeModifier
        end_epoch: eval(num_epochs)
    pruning_modifiers:
      - !GMPruningModifier
        params: ["re:.*weight"]
        final_sparsity: eval(final)
        start_epoch: eval(start)
        end_epoch: eval(num_epochs - 1)
        update_frequency: 0.5
""")


def test_yaml_variables_and_eval():
    r = load_recipe(RECIPE)
    assert r.num_epochs == 4
    gmp = r.modifiers[1]
    assert isinstance(gmp, GMPruningModifier)
    assert (gmp.start_epoch, gmp.end_epoch, gmp.final_sparsity) == (1.0, 3.0, 0.9)
    assert r.groups == ("training_modifiers", "pruning_modifiers")


def test_markdown_front_matter(tmp_path):
    path = tmp_path / "recipe.md"
    path.write_text("---\n" + RECIPE + "---\n# My recipe\n\nProse that is not YAML: a: b: c\n")
    assert load_recipe(str(path)).num_epochs == 4


@pytest.mark.parametrize("args, expected", [
    ("num_epochs=8", 8), ('{"num_epochs": 6}', 6), ({"num_epochs": 2}, 2)])
def test_recipe_args_override(args, expected):
    r = load_recipe(RECIPE, args)
    assert r.num_epochs == expected
    assert r.modifiers[1].start_epoch == expected / 4


def test_saved_recipe_round_trips():
    r = load_recipe(RECIPE, "final=0.8")
    text = r.to_yaml()
    assert "eval(" not in text and "!GMPruningModifier" in text
    again = load_recipe(text)
    assert again.modifiers == r.modifiers and again.num_epochs == r.num_epochs


def test_global_magnitude_alias_defaults():
    r = load_recipe("modifiers:\n  - !GlobalMagnitudePruningModifier\n    final_sparsity: 0.5\n    end_epoch: 2\n")
    mod = r.modifiers[0]
    assert mod.global_sparsity is True and mod.params == ("__ALL_PRUNABLE__",)
    assert mod.tag == "GlobalMagnitudePruningModifier"


def test_builtins_and_zoo_stub_load():
    for name in builtin_names():
        assert load_recipe(name).modifiers
    pruned90 = next(k for k, v in ZOO_RECIPES.items() if v == "bert-pruned90-mnli")
    assert load_recipe(pruned90).modifiers[2].final_sparsity == 0.9
    quant = next(k for k, v in ZOO_RECIPES.items() if v == "bert-pruned80-quant-transfer")
    qat = load_recipe(quant).modifiers[-1]
    assert qat.tag == "QuantizationModifier" and qat.start_epoch == 5.0
    assert qat.exclude_module_types == ("LayerNorm", "Tanh")


BAD = {
    "unknown modifier": ("modifiers:\n  - !MadeUpModifier\n    end_epoch: 1\n", "unknown modifier !MadeUpModifier"),
    "unknown field": ("modifiers:\n  - !EpochRangeModifier\n    end_epoch: 1\n    finish: 2\n",
                      "unknown field 'finish' for !EpochRangeModifier.*allowed fields: start_epoch, end_epoch"),
    "wrong type": ("modifiers:\n  - !GMPruningModifier\n    params: __ALL__\n    final_sparsity: high\n"
                   "    end_epoch: 2\n", r"final_sparsity is 'high'.*expected float or dict"),
    "sparsity >= 1": ("modifiers:\n  - !GMPruningModifier\n    params: __ALL__\n    final_sparsity: 1.0\n"
                      "    end_epoch: 2\n", r"final_sparsity is 1.0.*\[0, 1\)"),
    "negative sparsity": ("modifiers:\n  - !GMPruningModifier\n    params: __ALL__\n    final_sparsity: 0.5\n"
                          "    init_sparsity: -0.1\n    end_epoch: 2\n", "init_sparsity is -0.1"),
    "start > end": ("modifiers:\n  - !GMPruningModifier\n    params: __ALL__\n    final_sparsity: 0.5\n"
                    "    start_epoch: 3\n    end_epoch: 2\n", r"end_epoch \(2.0\) is before start_epoch \(3.0\)"),
    "bad inter_func": ("modifiers:\n  - !GMPruningModifier\n    params: __ALL__\n    final_sparsity: 0.5\n"
                       "    end_epoch: 2\n    inter_func: quadratic\n", "'linear' | 'cubic' | 'inverse_cubic'"),
    "bad mask_type": ("modifiers:\n  - !GMPruningModifier\n    params: __ALL__\n    final_sparsity: 0.5\n"
                      "    end_epoch: 2\n    mask_type: diagonal\n", "mask_type 'diagonal' is not understood"),
    "N:M too sparse": ("modifiers:\n  - !GMPruningModifier\n    params: __ALL__\n    final_sparsity: 0.75\n"
                       "    end_epoch: 2\n    mask_type: '2:4'\n", "exceeds what mask_type 2:4 allows"),
    "missing field": ("modifiers:\n  - !GMPruningModifier\n    params: __ALL__\n    end_epoch: 2\n",
                      "missing required field.*final_sparsity"),
    "malformed yaml": ("modifiers:\n  - !EpochRangeModifier\n    end_epoch: [1\n", "malformed recipe YAML"),
    "no modifiers": ("num_epochs: 3\n", "recipe has no modifiers"),
    "python eval": ("x: eval(__import__('os').getcwd())\nmodifiers:\n  - !EpochRangeModifier\n    end_epoch: eval(x)\n",
                    "is not allowed in eval expression"),
    "bad recipe_args": (RECIPE, "unknown variable 'epochs'"),
    "nan learning rate": ("lr: .nan\nmodifiers:\n  - !LearningRateFunctionModifier\n    init_lr: eval(lr)\n"
                          "    final_lr: 0\n    end_epoch: 1\n", "not a finite number|init_lr is nan"),
    "inf epochs": ("modifiers:\n  - !EpochRangeModifier\n    end_epoch: .inf\n", "end_epoch is inf"),
    "hardness": ("modifiers:\n  - !DistillationModifier\n    hardness: 1.5\n", r"hardness is 1.5.*\[0, 1\]"),
    "lr negative": ("modifiers:\n  - !LearningRateFunctionModifier\n    init_lr: -1\n    final_lr: 0\n"
                    "    end_epoch: 1\n", "init_lr is -1"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_recipes_name_modifier_field_and_fix(case):
    text, pattern = BAD[case]
    with pytest.raises(SparsecoreError, match=pattern) as info:
        load_recipe(text, "epochs=3" if case == "bad recipe_args" else None)
    assert "\n" not in str(info.value)


def test_missing_recipe_and_unknown_zoo_stub():
    with pytest.raises(SparsecoreError, match="recipe file not found"):
        load_recipe("nope.yaml")
    with pytest.raises(SparsecoreError, match="SparseZoo is unreachable"):
        load_recipe("zoo:nlp/whatever")


def test_unknown_short_name_lists_builtins():
    with pytest.raises(SparsecoreError, match="not found.*built-in name: .*minilm-gmp80-demo"):
        load_recipe("gmp-ninety")


def test_docs_recipe_example_loads():
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "recipes.md").read_text()
    block = page.split("```yaml\n", 1)[1].split("```", 1)[0]
    recipe = load_recipe(block)
    assert recipe.num_epochs == 6 and recipe.modifiers[2].final_sparsity == 0.8


def test_exponent_without_dot_is_a_number():
    r = load_recipe("modifiers:\n  - !LearningRateFunctionModifier\n    init_lr: 1e-4\n    final_lr: 0\n    end_epoch: 1\n")
    assert r.modifiers[0].init_lr == 1e-4


def test_recipe_capabilities_come_from_modifier_types():
    plain = load_recipe("dense-finetune")
    assert not plain.distills and not plain.quantizes and plain.owns_lr
    assert plain.lr_owners == ("!LearningRateFunctionModifier",)
    qat = load_recipe("minilm-pruned-qat")
    assert qat.distills and qat.quantizes
    ptq = load_recipe("modifiers:\n  - !QuantizationModifier\n    num_calibration_steps: 2\n")
    assert ptq.quantizes and not ptq.distills and not ptq.owns_lr and ptq.lr_owners == ()
