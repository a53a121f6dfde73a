"""start_step / end_step / update_frequency_steps: the same schedule as the epoch fields, counted in optimizer
steps; one field of each pair; recipes without step fields are written as before."""

import pytest
import torch
from torch import nn

from sparsecore import Session
from sparsecore.errors import SparsecoreError
from sparsecore.recipe import load_recipe

EPOCHS = """
modifiers:
  - !{tag}
    params: ["0.weight"]
    final_sparsity: 0.7
    start_epoch: 0.5
    end_epoch: 2.5
    update_frequency: 0.5
"""
STEPS = """
modifiers:
  - !{tag}
    params: ["0.weight"]
    final_sparsity: 0.7
    start_step: 3
    end_step: 15
    update_frequency_steps: 3
"""


def run(recipe: str, steps_per_epoch: int = 6, epochs: int = 3):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(1)

    def grads(count, batch_size, desc):  # OBS: gradients on fixed batches
        for i in range(count):
            model.zero_grad()
            x = torch.randn(4, 10, generator=torch.Generator().manual_seed(100 + i))
            with torch.enable_grad():  # OBS samples inside no_grad
                nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 0, 1])).backward()
            yield
        model.zero_grad()

    session = Session(recipe, model, opt, steps_per_epoch=steps_per_epoch, grad_sampler=grads).initialize()
    for step in range(steps_per_epoch * epochs):
        session.batch_start(step)
        x = torch.randn(4, 10, generator=g)
        nn.functional.cross_entropy(model(x), torch.randint(0, 2, (4,), generator=g)).backward()
        opt.step()
        opt.zero_grad()
    session.finalize()
    return session, model[0].weight.detach() == 0


@pytest.mark.parametrize("tag", ["GMPruningModifier", "OBSPruningModifier", "MovementPruningModifier"])
def test_steps_and_epochs_give_the_same_schedule(tag):
    extra = "    num_grads: 4\n" if tag == "OBSPruningModifier" else ""
    by_epoch, masks_e = run(EPOCHS.format(tag=tag) + extra)
    by_step, masks_s = run(STEPS.format(tag=tag) + extra)
    assert [r["step"] for r in by_step.updates] == [r["step"] for r in by_epoch.updates] == [3, 6, 9, 12, 15]
    assert torch.equal(masks_e, masks_s) and not by_step.warnings


def test_the_schedule_follows_steps_whatever_the_epoch_length():
    session, masks = run(STEPS.format(tag="GMPruningModifier"), steps_per_epoch=4, epochs=4)
    assert [r["step"] for r in session.updates] == [3, 6, 9, 12, 15]
    assert float(masks.float().mean()) == pytest.approx(0.7, abs=0.01)


def test_too_short_training_names_the_end_step():
    session, _ = run(STEPS.format(tag="GMPruningModifier"), steps_per_epoch=4, epochs=2)
    assert any("before its end_step 15" in w and "lower end_step" in w for w in session.warnings)


@pytest.mark.parametrize("fields, error", [
    ("    start_step: 2\n    start_epoch: 1\n    end_step: 9\n", "start_step is given with start_epoch"),
    ("    end_step: 9\n    end_epoch: 2\n", "end_step is given with end_epoch"),
    ("    end_step: 9\n    update_frequency_steps: 2\n    update_frequency: 0.5\n", "given with update_frequency"),
    ("    end_step: 9\n    update_frequency_steps: 0\n", "update_frequency_steps is 0"),
    ("    start_step: 10\n    end_step: 9\n", r"end_step \(9\) is before start_step \(10\)"),
    ("    start_step: -3\n    end_step: 9\n", "start_step is -3"),
    ("    start_epoch: 1\n", "end_epoch is missing.*end_step"),
])
def test_field_conflicts_are_one_line_errors(fields, error):
    with pytest.raises(SparsecoreError, match=error):
        load_recipe("modifiers:\n  - !GMPruningModifier\n    params: __ALL_PRUNABLE__\n    final_sparsity: 0.5\n"
                    + fields)


def test_an_epoch_start_after_a_step_end_is_found_when_the_epoch_length_is_known():
    recipe = load_recipe("modifiers:\n  - !GMPruningModifier\n    params: [\"0.weight\"]\n    final_sparsity: 0.5\n"
                         "    start_epoch: 2\n    end_step: 5\n")
    with pytest.raises(SparsecoreError, match="end_step is before the start"):
        Session(recipe, nn.Sequential(nn.Linear(2, 2)), steps_per_epoch=10).initialize()


def test_num_steps_and_written_recipes():
    steps = load_recipe(STEPS.format(tag="GMPruningModifier") + "  - !ConstantPruningModifier\n"
                        "    params: [\"2.weight\"]\n    start_step: 20\n    end_step: 40\n")
    assert steps.num_steps == 40 and steps.num_epochs is None
    assert "start_step: 3" in steps.to_yaml() and load_recipe(steps.to_yaml()).num_steps == 40
    epochs = load_recipe(EPOCHS.format(tag="GMPruningModifier"))
    assert epochs.num_steps is None and "_step" not in epochs.to_yaml()  # SparseML-readable as before
