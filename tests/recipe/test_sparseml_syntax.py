"""SparseML 1.x recipe syntax that real recipes use: one fixture per class in tests/recipe/sparseml_style/."""

import re
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from sparsecore import Session
from sparsecore.errors import SparsecoreError
from sparsecore.modifiers.layer_pruning import LayerPruningModifier, SkippedLayer
from sparsecore.recipe import builtin_names, load_recipe

STYLE = Path(__file__).parent / "sparseml_style"
DOCS = Path(__file__).resolve().parents[2] / "docs"


def fixture(name: str) -> str:
    return str(STYLE / name)


def by_tag(recipe, tag):
    return [m for m in recipe.modifiers if m.tag == tag]


def test_markdown_front_matter_after_a_licence_comment():
    r = load_recipe(fixture("md_licence_comment.md"))
    assert r.num_epochs == 2 and by_tag(r, "GMPruningModifier")[0].final_sparsity == 0.5


@pytest.mark.parametrize("text, error", [
    ("<!-- licence -->\n\n# A card without YAML\n", "has no YAML front matter"),
    ("<!-- licence -->\n---\nmodifiers: []\n", "never closed"),
])
def test_markdown_without_front_matter_is_one_line(tmp_path, text, error):
    path = tmp_path / "card.md"
    path.write_text(text)
    with pytest.raises(SparsecoreError, match=error):
        load_recipe(str(path))


def test_yaml_file_keeps_a_leading_document_marker(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("# licence\n---\nmodifiers:\n  - !EpochRangeModifier\n    end_epoch: 2\n")
    assert load_recipe(str(path)).num_epochs == 2


def test_logging_only_fields_are_accepted_and_named_once_in_the_notes():
    r = load_recipe(fixture("log_types.yaml"))
    assert [m.tag for m in r.modifiers] == ["EpochRangeModifier", "SetLearningRateModifier", "GMPruningModifier",
                                           "ConstantPruningModifier"]
    notes = " | ".join(r.notes)
    assert "log_types ignored on 2 modifier(s) (!ConstantPruningModifier, !GMPruningModifier)" in notes
    assert "constant_logging ignored on 1 modifier(s) (!SetLearningRateModifier)" in notes
    assert "update_frequency ignored on 1 modifier(s) (!ConstantPruningModifier)" in notes
    assert "log_types" not in r.to_yaml()


def test_one_and_zero_are_booleans_directly_and_through_eval():
    r = load_recipe(fixture("int_booleans.yaml"))
    gmp, quant = by_tag(r, "GMPruningModifier")[0], by_tag(r, "QuantizationModifier")[0]
    assert gmp.global_sparsity is True and gmp.leave_enabled is True
    assert quant.quantize_embeddings is False and quant.quantize_linear_activations is False


@pytest.mark.parametrize("value", ["2", "-1", "0.0", "yes please"])
def test_other_values_are_still_not_booleans(value):
    with pytest.raises(SparsecoreError, match=r"global_sparsity is .* expected bool"):
        load_recipe("modifiers:\n  - !GMPruningModifier\n    params: __ALL__\n    final_sparsity: 0.5\n"
                    f"    end_epoch: 2\n    global_sparsity: {value}\n")


def test_every_legacy_quantization_field_loads():
    quant = by_tag(load_recipe(fixture("legacy_quantization.yaml")), "QuantizationModifier")[0]
    assert quant.quantize_embedding_activations is False and quant.model_fuse_fn_name == "no_fuse"
    assert quant.exclude_module_types == ("LayerNorm", "Tanh") and quant.num_calibration_steps == 1


@pytest.mark.parametrize("field, value, error", [
    ("tensorrt", "True", "TensorRT mode is not implemented"),
    ("model_fuse_fn_name", "my_fuser", "module fusion is not implemented"),
    ("activation_qconfig_kwargs", "{observer: minmax}", "torch qconfig arguments are not used"),
    ("custom_quantizable_module_types", "[MyLinear]", "custom quantizable module types"),
    ("scheme_overrides", "{classifier: {weights: null}}", "per-module scheme overrides"),
])
def test_legacy_quantization_fields_asking_for_more_are_clear_errors(field, value, error):
    with pytest.raises(SparsecoreError, match=rf"!QuantizationModifier\.{field} .*{error}"):
        load_recipe(f"modifiers:\n  - !QuantizationModifier\n    {field}: {value}\n")


def test_staged_recipe_stages_variables_and_round_trip():
    r = load_recipe(fixture("staged.yaml"))
    assert r.staged and r.stages == ("dense_stage", "dense_stage", "pruning_stage", "pruning_stage", "pruning_stage")
    lrs = by_tag(r, "LearningRateFunctionModifier")
    assert (lrs[0].init_lr, lrs[0].final_lr) == (1e-4, 5e-5)  # global init_lr
    assert (lrs[1].init_lr, lrs[1].start_epoch, lrs[1].end_epoch) == (5e-5, 1.0, 2.0)  # the stage's own
    assert by_tag(r, "GMPruningModifier")[0].final_sparsity == 0.6 and r.num_epochs == 2.0
    again = load_recipe(r.to_yaml())
    assert again.modifiers == r.modifiers and again.stages == r.stages
    # --recipe_args replaces a variable everywhere it is defined, as SparseML did for staged recipes
    lrs = by_tag(load_recipe(fixture("staged.yaml"), "init_lr=2e-4"), "LearningRateFunctionModifier")
    assert (lrs[0].init_lr, lrs[1].init_lr) == (2e-4, 2e-4)


def test_overlapping_stages_load_with_a_note_and_mixing_is_refused():
    text = ("a:\n  modifiers:\n    - !EpochRangeModifier\n      end_epoch: 2\n"
            "b:\n  modifiers:\n    - !EpochRangeModifier\n      start_epoch: 1\n      end_epoch: 3\n")
    assert any("overlap" in note for note in load_recipe(text).notes)
    with pytest.raises(SparsecoreError, match="mixes top-level modifiers"):
        load_recipe(text + "modifiers:\n  - !EpochRangeModifier\n    end_epoch: 1\n")
    with pytest.raises(SparsecoreError, match="stage 'a' has no modifiers"):
        load_recipe("a:\n  modifiers: []\n")


def test_numbers_written_with_an_exponent_are_numbers_everywhere():
    r = load_recipe(fixture("exponent_floats.yaml"))
    lr = by_tag(r, "LearningRateFunctionModifier")[0]
    assert (lr.init_lr, lr.final_lr) == (3e-5, pytest.approx(3e-6))
    assert by_tag(r, "SetWeightDecayModifier")[0].weight_decay == 0.01
    assert by_tag(r, "OBSPruningModifier")[0].damp == 1e-7
    quoted = load_recipe("lr: '3e-5'\nmodifiers:\n  - !SetLearningRateModifier\n    learning_rate: eval(lr * 2)\n")
    assert quoted.modifiers[0].learning_rate == pytest.approx(6e-5)


def test_eval_functions_sparseml_allowed():
    r = load_recipe(fixture("eval_functions.yaml"))
    assert r.variables["pruning_end"] == 0.9
    assert by_tag(r, "EpochRangeModifier")[0].end_epoch == 1.0
    lr = by_tag(r, "LearningRateModifier")[0]
    assert (lr.start_epoch, lr.end_epoch, lr.lr_kwargs["gamma"]) == (0.0, 1.5, 0.5)
    assert by_tag(r, "MagnitudePruningModifier")[0].final_sparsity == 0.5


def test_params_through_eval_of_a_list_variable():
    r = load_recipe("prunable: ['re:.*query.weight', 're:.*key.weight']\nmodifiers:\n  - !GMPruningModifier\n"
                    "    params: eval(prunable)\n    final_sparsity: 0.5\n    end_epoch: 2\n")
    assert r.modifiers[0].params == ("re:.*query.weight", "re:.*key.weight")


def test_bare_lists_and_single_modifiers_are_recipes_too():
    assert load_recipe("- !EpochRangeModifier\n  end_epoch: 3\n").num_epochs == 3
    assert load_recipe("!EpochRangeModifier\nend_epoch: 2\n").num_epochs == 2
    assert load_recipe("epoch: !EpochRangeModifier\n  end_epoch: 4\n").num_epochs == 4


@pytest.mark.parametrize("text, error", [
    ("num_epochs: &num_epochs 2\nend: &num_epochs 3\nmodifiers:\n  - !EpochRangeModifier\n    end_epoch: *num_epochs\n",
     r"found duplicate anchor 'num_epochs'; first occurrence at line 1, second occurrence at line 2"),
    ("sparsity_stage:\n  run_type: oneshot\n  sparsity_modifiers:\n    SparseGPTModifier:\n      sparsity: 0.5\n",
     r"'sparsity_modifiers' is a mapping of untagged modifiers — this looks like a newer SparseML / llm-compressor"),
    ("quant_stage:\n  quant_modifiers:\n    - QuantizationModifier:\n        ignore: [lm_head]\n",
     r"quant_modifiers\[0\] is not a tagged modifier — this looks like a newer SparseML / llm-compressor"),
    ("oneshot_stage:\n  run_type: oneshot\n", "'oneshot_stage' is a stage without modifier lists"),
    ("modifiers:\n  - !SparseGPTModifier\n    sparsity: 0.5\n", "unknown modifier !SparseGPTModifier — a newer"),
    ("modifiers:\n  - !MFACPruningModifier\n    end_epoch: 1\n", "use !OBSPruningModifier"),
    ("pruners:\n  - !EpochRangeModifier\n    end_epoch: 1\n", "'pruners' holds a !Modifier but its key does not"),
    ("modifiers:\n  - !GMPruningModifier\n    params: __ALL__\n    final_sparsity: 0.5\n    end_epoch: 2\n"
     "    score_type: taylor\n", "score_type is 'taylor'.*use 'magnitude' or 'movement'"),
    ("modifiers:\n  - !LearningRateFunctionModifier\n    init_lr: 0.1\n    final_lr: 0\n    end_epoch: 1\n"
     "    update_frequency: 2\n", "update_frequency is 2.*leave it at -1"),
    ("modifiers:\n  - !LearningRateModifier\n    lr_class: StepLR\n    lr_kwargs: {gamma: 0.5}\n"
     "    init_lr: 0.1\n    start_epoch: 0\n", "lr_kwargs lacks 'step_size' for StepLR"),
    ("modifiers:\n  - !LearningRateModifier\n    lr_class: MultiStepLR\n    lr_kwargs: {gamma: 0.5, milestones: [4]}\n"
     "    init_lr: 0.1\n    start_epoch: 0\n    end_epoch: 3\n", r"milestones has 4, outside \(0, 3\)"),
    ("modifiers:\n  - !LearningRateModifier\n    lr_class: CyclicLR\n    lr_kwargs: {}\n    init_lr: 0.1\n"
     "    start_epoch: 0\n", "lr_class is 'CyclicLR'"),
    ("modifiers:\n  - !SetLearningRateModifier\n    learning_rate: 2\n", r"learning_rate is 2.0.*\(0, 1\]"),
    ("modifiers:\n  - !LayerPruningModifier\n    layers: __ALL_PRUNABLE__\n", "name each layer to remove"),
    ("modifiers:\n  - !GMPruningModifier\n    params: __ALL__\n    final_sparsity: 0.5\n    start_epoch: -1\n"
     "    end_epoch: 2\n", "start_epoch is -1"),
])
def test_messages_name_the_format_modifier_or_field(text, error):
    with pytest.raises(SparsecoreError, match=error) as info:
        load_recipe(text)
    assert "\n" not in str(info.value)


def test_minus_one_start_means_from_the_first_step():
    r = load_recipe("modifiers:\n  - !ConstantPruningModifier\n    params: __ALL__\n    start_epoch: -1.0\n"
                    "  - !DistillationModifier\n    start_epoch: -1\n")
    assert [m.start_epoch for m in r.modifiers] == [0.0, 0.0]


class Blocks(nn.Module):
    """A tiny residual stack whose layers take (hidden, mask) like HF encoder layers."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(4, 8)
        self.layer = nn.ModuleList(nn.Linear(8, 8) for _ in range(4))
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        h = self.embed(x)
        for block in self.layer:
            out = block(h, None) if isinstance(block, SkippedLayer) else block(h)
            h = out if isinstance(block, SkippedLayer) else h + out
        return self.head(h)


def test_layer_pruning_drops_before_selectors_resolve_and_validate_changes_nothing():
    model = Blocks()
    recipe = ("modifiers:\n  - !GMPruningModifier\n    params: ['re:layer\\.\\d+\\.weight']\n    final_sparsity: 0.5\n"
              "    end_epoch: 1\n    update_frequency: 1\n  - !LayerPruningModifier\n    layers: [layer.1, layer.2]\n")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    Session(recipe, model, opt, steps_per_epoch=2).validate()
    assert not any(isinstance(m, SkippedLayer) for m in model.modules())
    with Session(recipe, model, opt, steps_per_epoch=2) as session:
        assert session.dropped_layers == ["layer.1", "layer.2"]
        pruned = set(session.modifiers[0].rt.groups[0][1][i][0] for i in range(2))
        assert pruned == {"layer.0.weight", "layer.3.weight"}  # the dropped layers' weights were never selected
        for _ in range(2):
            session.batch_start()
            model(torch.randn(3, 4)).sum().backward()
            opt.step()
            opt.zero_grad()
    assert isinstance(model.layer[1], SkippedLayer) and not list(model.layer[1].parameters())
    from sparsecore.modifiers.layer_pruning import remove_skipped_layers
    assert remove_skipped_layers(model) == {"layer": [0, 3]} and len(model.layer) == 2
    assert model(torch.randn(2, 4)).shape == (2, 2)


def test_layer_pruning_with_end_epoch_puts_the_layers_back_as_sparseml_did():
    model = Blocks()
    original = model.layer[2]
    recipe = "modifiers:\n  - !LayerPruningModifier\n    layers: [layer.2]\n    start_epoch: 1\n    end_epoch: 2\n"
    with Session(recipe, model, torch.optim.SGD(model.parameters(), lr=0.1), steps_per_epoch=2) as session:
        assert any("puts the removed layers back" in w for w in session.warnings)
        seen = []
        for _ in range(5):
            session.batch_start()
            seen.append(isinstance(model.layer[2], SkippedLayer))
    assert seen == [False, False, True, True, False] and model.layer[2] is original


def test_layer_pruning_names_must_exist():
    with pytest.raises(SparsecoreError, match=r"names 'layer\.9', which is not a module.*layer\.0 … layer\.3"):
        Session("modifiers:\n  - !LayerPruningModifier\n    layers: [layer.9]\n", Blocks(),
                steps_per_epoch=1).validate()
    assert isinstance(load_recipe("modifiers:\n  - !LayerPruningModifier\n    layers: layer.1\n").modifiers[0],
                      LayerPruningModifier)


def test_distill_output_keys_the_model_lacks_fail_at_validation():
    session = Session("modifiers:\n  - !DistillationModifier\n    distill_output_keys: [start_logits, end_logits]\n",
                      Blocks(), steps_per_epoch=1, output_keys=("logits", "loss"))
    with pytest.raises(SparsecoreError, match="distill_output_keys names 'start_logits', which the model does not "
                                              "produce.*logits, loss"):
        session.validate()


class Named(nn.Module):
    def __init__(self):
        super().__init__()
        self.query = nn.Linear(4, 4)
        self.query_proj = nn.Linear(4, 4)


@pytest.mark.parametrize("selector, outcome", [
    ("re:query", "SparseML .* would also take 4 more, e.g. query.weight"),
    ("re:query.weight", None),  # whole-name and prefix matching agree
    ("re:query.*", ["query.weight", "query.bias", "query_proj.weight", "query_proj.bias"]),
    ("re:query\\.weight$", ["query.weight"]),
    ("re:query\\.", "would also take"),
    ("re:quer", "matches 0 parameter.*would also take 4 more"),
])
def test_regex_selectors_that_would_select_otherwise_in_sparseml_fail_loudly(selector, outcome):
    from sparsecore.selectors import resolve_params
    if isinstance(outcome, str):
        with pytest.raises(SparsecoreError, match=outcome):
            resolve_params(Named(), [selector], "t")
    else:
        names = [n for n, _ in resolve_params(Named(), [selector], "t")]
        assert names == (outcome or ["query.weight"])


def test_every_builtin_recipe_and_every_docs_recipe_loads():
    for name in builtin_names():
        assert load_recipe(name).modifiers, name
    blocks = [(page.name, block) for page in sorted(DOCS.rglob("*.md"))
              for block in re.findall(r"```yaml\n(.*?)```", page.read_text(), flags=re.DOTALL)]
    assert len(blocks) >= 4
    for page, block in blocks:
        assert load_recipe(textwrap.dedent(block)).modifiers, f"{page}: {block[:80]}"


@pytest.mark.parametrize("name", sorted(p.name for p in STYLE.iterdir()))
def test_every_fixture_recipe_loads(name):
    assert load_recipe(fixture(name)).modifiers
