"""Sensitivity analysis on a toy model: every (method, layer, sparsity) measured with the layer alone pruned to
exactly k weights, weights restored; the allocation hits the overall target exactly and favours the cheap layer;
the emitted recipe applies to that allocation."""

import pytest
import torch
from torch import nn

from sparsecore.errors import SparsecoreError
from sparsecore.recipe import load_recipe
from sparsecore.sensitivity import SensitivityResult, analyze
from sparsecore.session import apply_one_shot


def toy():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4))
    x, y = torch.randn(32, 8), torch.randint(0, 4, (32,))
    seen = []

    def evaluate():
        seen.append([int((p == 0).sum()) for p in (model[0].weight, model[2].weight)])
        with torch.no_grad():
            return {"loss": float(nn.functional.cross_entropy(model(x), y)), "accuracy": 0.0}

    def grads(count):
        for i in range(count):
            model.zero_grad()
            with torch.enable_grad():
                nn.functional.cross_entropy(model(x[i::4]), y[i::4]).backward()
            yield

    layers = [("0.weight", model[0].weight), ("2.weight", model[2].weight)]
    return model, layers, evaluate, grads, seen


def test_each_layer_alone_exactly_k_and_weights_restored():
    model, layers, evaluate, grads, seen = toy()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = analyze(model, layers, [0.5, 0.25], evaluate, ["magnitude", "obs"], grads, num_grads=4,
                     fisher_block_size=8)
    assert result.sparsities == [0.25, 0.5] and result.layers == ["0.weight", "2.weight"]
    # baseline, then per method: layer 0 at 25 % and 50 % (32, 64 of 128), layer 1 (16, 32 of 64)
    assert seen == [[0, 0]] + [[32, 0], [64, 0], [0, 16], [0, 32]] * 2
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    inc = {m: result.increase(m) for m in ("magnitude", "obs")}
    assert inc["magnitude"]["0.weight"] != inc["obs"]["0.weight"]  # OBS moves the surviving weights
    assert all(len(v) == 2 for m in inc.values() for v in m.values())


def test_allocation_is_exact_and_prefers_the_cheap_layer():
    result = SensitivityResult({"loss": 1.0}, ["cheap", "costly"], [1000, 1000], [0.5, 0.7, 0.9],
                               {"m": {"cheap": [{"loss": 1.0}, {"loss": 1.01}, {"loss": 1.02}],
                                      "costly": [{"loss": 1.2}, {"loss": 1.5}, {"loss": 2.0}]}})
    free = result.allocate(0.6, "m", spread=1.0)
    assert free["cheap"] == pytest.approx(0.9) and free["costly"] == pytest.approx(0.3)
    bounded = result.allocate(0.6, "m")  # default: each layer within 0.6 ± 0.15
    assert bounded["cheap"] == pytest.approx(0.75) and bounded["costly"] == pytest.approx(0.45)
    for alloc in (free, bounded):
        assert sum(alloc.values()) * 1000 == pytest.approx(0.6 * 2000)


def test_cost_curves_are_monotone_and_linear_between_grid_points():
    from sparsecore.sensitivity import _monotone

    curve = _monotone([0.0, 0.5, 0.7, 0.9], [0.0, 0.2, 0.1, 0.4])  # the dip at 0.7 is noise of few rows
    assert curve(0.25) == pytest.approx(0.1) and curve(0.7) == pytest.approx(0.2)
    assert curve(0.8) == pytest.approx(0.3) and curve(0.9) == pytest.approx(0.4)
    xs = [i / 100 for i in range(91)]
    assert all(curve(a) <= curve(b) + 1e-12 for a, b in zip(xs, xs[1:]))


def test_the_emitted_recipe_prunes_to_the_target():
    model, layers, evaluate, grads, _ = toy()
    result = analyze(model, layers, [0.3, 0.6, 0.9], evaluate, ["magnitude"])
    recipe = load_recipe(result.recipe(0.7, "magnitude"))
    apply_one_shot(recipe, model)
    zeros = sum(int((p == 0).sum()) for _, p in layers)
    assert zeros == pytest.approx(0.7 * (128 + 64), abs=1)
    alloc = result.allocate(0.7, "magnitude")
    assert int((model[0].weight == 0).sum()) == round(alloc["0.weight"] * 128)


def test_bad_grids_and_methods_are_errors():
    model, layers, evaluate, grads, _ = toy()
    with pytest.raises(SparsecoreError, match="must be in"):
        analyze(model, layers, [0.5, 1.0], evaluate, ["magnitude"])
    with pytest.raises(SparsecoreError, match="unknown method taylor"):
        analyze(model, layers, [0.5], evaluate, ["taylor"])
    with pytest.raises(SparsecoreError, match="needs gradients"):
        analyze(model, layers, [0.5], evaluate, ["obs"])


def test_pruned_to_prunes_all_layers_at_once_and_restores():
    from sparsecore.sensitivity import pruned_to

    model, layers, evaluate, grads, seen = toy()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pruned_to(dict(layers), {"0.weight": 0.25, "2.weight": 0.5}):
        evaluate()
    assert seen == [[32, 32]]
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_joint_search_keeps_only_moves_that_lower_the_joint_loss():
    from sparsecore.joint_allocation import search

    numels = {"a": 100, "b": 100, "c": 200}
    calls = []

    def joint(alloc):  # a joint cost the single-layer slopes get wrong: "b" is the one to spare
        calls.append(dict(alloc))
        return 3 * alloc["a"] ** 2 + 10 * alloc["b"] ** 2 + alloc["c"] ** 2

    slope = {"a": 5.0, "b": 1.0, "c": 0.1}  # misleading curves: they call "b" cheap
    start = {n: 0.6 for n in numels}
    alloc, history = search(start, numels, joint, lambda n, s: slope[n], rounds=12, lo=0.45, hi=0.75)
    total = sum(numels[n] * s for n, s in alloc.items())
    assert total == pytest.approx(0.6 * 400)
    assert all(0.45 - 1e-9 <= s <= 0.75 + 1e-9 for s in alloc.values())
    assert joint(alloc) < joint(start)
    losses = [h["loss"] for h in history]
    assert all(a >= b for a, b in zip(losses, losses[1:]))  # never accepts a worse allocation
    assert alloc["b"] < 0.6  # found against the curves' advice, from joint evaluations only


def test_joint_search_moves_whole_groups_and_keeps_the_total():
    from sparsecore.joint_allocation import search

    numels = {"0.q": 100, "0.ffn": 300, "1.q": 100, "1.ffn": 300}
    groups = [["0.q", "0.ffn"], ["1.q", "1.ffn"]]

    def joint(alloc):  # block 0 matters, block 1 does not; within a block both layers alike
        return 5 * (alloc["0.q"] + alloc["0.ffn"]) ** 2 + 0.1 * (alloc["1.q"] + alloc["1.ffn"]) ** 2

    alloc, history = search({n: 0.6 for n in numels}, numels, joint, lambda n, s: 1.0 if n[0] == "0" else 0.1,
                            rounds=6, lo=0.45, hi=0.75, pairs=2, groups=groups)
    assert sum(numels[n] * s for n, s in alloc.items()) == pytest.approx(0.6 * 800)
    group_moves = [h["move"] for h in history if h["move"] and len(h["move"][0]) == 2]
    assert group_moves and group_moves[0] == [["0.q", "0.ffn"], ["1.q", "1.ffn"]]
    assert alloc["0.q"] < 0.6 and alloc["0.ffn"] < 0.6 and alloc["1.q"] > 0.6 and alloc["1.ffn"] > 0.6
