"""!MovementPruningModifier: scores −w·∇w accumulated over optimizer steps (Sanh et al. 2020), against a naive
reference, resumable, distinct from magnitude, refused one-shot."""

import numpy as np
import pytest
import torch
from torch import nn

from sparsecore import Session
from sparsecore.errors import SparsecoreError
from sparsecore.recipe import load_recipe
from sparsecore.session import apply_one_shot
from tests.reference import naive_movement_masks

RECIPE = """
modifiers:
  - !MovementPruningModifier
    params: ["0.weight", "2.weight"]
    init_sparsity: 0.0
    final_sparsity: 0.6
    start_epoch: 0.5
    end_epoch: 2
    update_frequency: 0.5
"""


def setup(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 3))
    g = torch.Generator().manual_seed(seed + 1)
    data = [(torch.randn(8, 12, generator=g), torch.randint(0, 3, (8,), generator=g)) for _ in range(4)]
    return model, data


def run(model, data, recipe, epochs=3, session=None, start=0, history=None):
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    if session is None:
        session = Session(recipe, model, opt, steps_per_epoch=len(data)).initialize()
    else:
        opt = session.optimizer
    for step in range(start, epochs * len(data)):
        x, y = data[step % len(data)]
        count = len(session.updates)
        session.batch_start(step)
        nn.functional.cross_entropy(model(x), y).backward()
        if history is not None:
            target = session.updates[-1]["sparsity"] if len(session.updates) > count else None
            layers = [(model[i].weight.detach().numpy().copy(), model[i].weight.grad.numpy().copy()) for i in (0, 2)]
            history.append((step, layers, target))
        opt.step()
        opt.zero_grad()
    return session


def test_masks_match_the_naive_reference():
    model, data = setup()
    history = []
    session = run(model, data, RECIPE, history=history)
    session.finalize()
    expected = naive_movement_masks(history)
    for i, reference in zip((0, 2), expected):
        got = (model[i].weight.detach() == 0).numpy().reshape(-1)
        assert np.array_equal(got, reference), f"layer {i}: {np.sum(got != reference)} entries differ"
    assert [r["step"] for r in session.updates] == [2, 4, 6, 8]
    assert session.updates[-1]["MovementPruningModifier/sparsity"] == pytest.approx(0.6, abs=0.01)


def test_movement_ranks_differently_from_magnitude():
    masks = {}
    for kind in ("MovementPruningModifier", "GMPruningModifier"):
        model, data = setup()
        run(model, data, RECIPE.replace("MovementPruningModifier", kind)).finalize()
        masks[kind] = model[0].weight.detach() == 0
    assert masks["GMPruningModifier"].sum() == masks["MovementPruningModifier"].sum()
    assert not torch.equal(masks["GMPruningModifier"], masks["MovementPruningModifier"])


def test_scores_survive_a_checkpoint(tmp_path):
    model, data = setup()
    run(model, data, RECIPE).finalize()
    expected = [model[i].weight.detach().clone() for i in (0, 2)]

    model, data = setup()
    first = run(model, data, RECIPE, epochs=1)  # stop after step 3: one update done, scores half-way
    first.save(tmp_path)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    opt_state = first.optimizer.state_dict()
    first.finalize()
    model, data = setup()
    model.load_state_dict(state)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    opt.load_state_dict(opt_state)
    second = Session(RECIPE, model, opt, steps_per_epoch=len(data)).initialize()
    second.load(tmp_path)
    run(model, data, RECIPE, session=second, start=4).finalize()
    for w, i in zip(expected, (0, 2)):
        assert torch.equal(model[i].weight.detach() == 0, w == 0)


def test_an_update_before_any_step_ranks_by_magnitude_and_says_so():
    model, data = setup()
    session = run(model, data, RECIPE.replace("init_sparsity: 0.0", "init_sparsity: 0.2")
                  .replace("start_epoch: 0.5", "start_epoch: 0"), epochs=1)
    assert any("no optimizer step yet" in w for w in session.warnings)
    session.finalize()


def test_refused_one_shot_and_with_a_magnitude_score_type():
    model, _ = setup()
    with pytest.raises(SparsecoreError, match="movement in a one-shot run"):
        apply_one_shot(load_recipe(RECIPE), model)
    with pytest.raises(SparsecoreError, match="score_type is 'magnitude'.*use !GMPruningModifier"):
        load_recipe(RECIPE + "    score_type: magnitude\n")
