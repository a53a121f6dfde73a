import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sparsecore import Session
from sparsecore.losses import distillation_loss
from sparsecore.modifiers.training import lr_at


def model_and_opt():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4))
    return model, torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.0)


def run(recipe, steps_per_epoch=4, epochs=3, teacher=None):
    model, opt = model_and_opt()
    x, y = torch.randn(16, 8), torch.randint(0, 4, (16,))
    log = []
    with Session(recipe, model, opt, steps_per_epoch=steps_per_epoch) as s:
        for _ in range(epochs * steps_per_epoch):
            s.batch_start()
            out = model(x)
            loss = s.loss(F.cross_entropy(out, y), out, teacher(x) if s.needs_teacher else None)
            log.append((s.epoch, loss.item(), opt.param_groups[0]["weight_decay"], model[0].weight.requires_grad))
            loss.backward()
            opt.step()
            opt.zero_grad()
    return model, log


def test_lr_functions():
    assert lr_at(0.5, "linear", 1.0, 0.0, 0, 1, 1) == 0.5
    assert lr_at(0.5, "cosine", 1.0, 0.0, 0, 1, 1) == pytest.approx(0.5)
    assert lr_at(0.25, "cosine", 1.0, 0.0, 0, 1, 1) == pytest.approx(0.8535533)
    assert lr_at(1.25, "cyclic_linear", 1.0, 0.0, 0, 4, 1) == pytest.approx(0.75)
    assert lr_at(5.0, "linear", 1.0, 0.1, 0, 4, 1) == 0.1


def test_set_weight_decay_and_trainable_params_follow_epochs():
    recipe = """
modifiers:
  - !SetWeightDecayModifier
    weight_decay: 0.3
    start_epoch: 1
  - !TrainableParamsModifier
    params: ["0.weight"]
    trainable: false
    start_epoch: 1
    end_epoch: 2
"""
    _, log = run(recipe)
    by_epoch = {round(e, 2): (wd, rg) for e, _, wd, rg in log}
    assert by_epoch[0.5] == (0.0, True) and by_epoch[1.25] == (0.3, False) and by_epoch[2.25] == (0.3, True)


def test_frozen_params_do_not_change():
    recipe = "modifiers:\n  - !TrainableParamsModifier\n    params: ['0.weight']\n    trainable: false\n"
    model0, _ = model_and_opt()
    model, _ = run(recipe)
    torch.testing.assert_close(model[0].weight, model0[0].weight)
    assert not torch.equal(model[2].weight, model0[2].weight)


def test_distillation_loss_formula():
    s, t = torch.randn(5, 3), torch.randn(5, 3)
    expected = (F.softmax(t / 2, -1) * (F.log_softmax(t / 2, -1) - F.log_softmax(s / 2, -1))).sum(-1).mean() * 4
    torch.testing.assert_close(distillation_loss(s, t, 2.0), expected)
    assert distillation_loss(t, t, 2.0).abs() < 1e-6
    torch.testing.assert_close(distillation_loss(s[:, :1], t[:, :1], 2.0, "regression"), F.mse_loss(s[:, :1], t[:, :1]))


def test_distillation_blends_with_hardness_and_respects_epochs():
    recipe = """
modifiers:
  - !DistillationModifier
    hardness: 1.0
    temperature: 1.0
    start_epoch: 1
    end_epoch: 2
"""
    teacher = nn.Linear(8, 4)
    model, opt = model_and_opt()
    x, y = torch.randn(16, 8), torch.randint(0, 4, (16,))
    with Session(recipe, model, opt, steps_per_epoch=2) as s:
        s.batch_start()
        assert not s.needs_teacher
        out = model(x)
        assert s.loss(F.cross_entropy(out, y), out, None).item() == pytest.approx(F.cross_entropy(out, y).item())
        s.batch_start(step=2)
        assert s.needs_teacher
        kd = s.loss(F.cross_entropy(out, y), out, teacher(x))
        assert kd.item() == pytest.approx(distillation_loss(out, teacher(x), 1.0).item(), rel=1e-5)
        with pytest.raises(RuntimeError, match="no teacher outputs"):
            s.loss(F.cross_entropy(out, y), out, None)


def test_constant_pruning_holds_existing_zeros():
    model, opt = model_and_opt()
    with torch.no_grad():
        model[0].weight[:, :3] = 0
    with Session("modifiers:\n  - !ConstantPruningModifier\n    params: __ALL_PRUNABLE__\n", model, opt,
                 steps_per_epoch=2) as s:
        for _ in range(4):
            s.batch_start()
            model(torch.randn(4, 8)).sum().backward()
            opt.step()
            opt.zero_grad()
    assert (model[0].weight[:, :3] == 0).all() and int((model[0].weight == 0).sum()) == 24


def test_from_param_init_and_sparsity_map_and_leave_enabled_false():
    recipe = """
modifiers:
  - !GMPruningModifier
    init_sparsity: __FROM_PARAM__
    final_sparsity: {0.5: ["0.weight"], 0.25: ["2.weight"]}
    end_epoch: 1
    inter_func: linear
    leave_enabled: false
"""
    model, opt = model_and_opt()
    with torch.no_grad():
        model[0].weight[0] = 0  # already 12.5% sparse
    with Session(recipe, model, opt, steps_per_epoch=4) as s:
        s.batch_start()
        assert int((model[0].weight == 0).sum()) == 8  # starts from the param's own sparsity
        for _ in range(4):
            s.batch_start()
        assert int((model[0].weight == 0).sum()) == 32 and int((model[2].weight == 0).sum()) == 8
        assert len(s.masks) == 0  # leave_enabled: false releases the masks at end_epoch


def test_params_strict_false_skips_unmatched_selectors():
    recipe = ("modifiers:\n  - !TrainableParamsModifier\n    params: ['0.weight', 'missing.weight']\n"
              "    trainable: false\n    params_strict: false\n")
    model, _ = run(recipe, epochs=1)
    assert not model[0].weight.requires_grad
    with pytest.raises(Exception, match="selector 'missing.weight' matches no parameter"):
        run(recipe.replace("params_strict: false", "params_strict: true"), epochs=1)


def test_teacher_is_requested_for_the_last_batch_before_distillation_ends():
    recipe = "modifiers:\n  - !DistillationModifier\n    hardness: 1.0\n    end_epoch: 1\n"
    model, opt = model_and_opt()
    teacher = nn.Linear(8, 4)
    x, y = torch.randn(4, 8), torch.randint(0, 4, (4,))
    with Session(recipe, model, opt, steps_per_epoch=4) as s:
        wanted = []
        for _ in range(6):
            s.batch_start()
            wanted.append(s.needs_teacher)
            out = model(x)
            s.loss(F.cross_entropy(out, y), out, teacher(x) if s.needs_teacher else None)  # never raises
    assert wanted == [True, True, True, True, False, False]


def test_gmp_updates_on_a_fixed_grid_without_drift():
    recipe = ("modifiers:\n  - !GMPruningModifier\n    params: ['0.weight']\n    final_sparsity: 0.8\n"
              "    end_epoch: 2\n    update_frequency: 0.5\n    inter_func: linear\n")
    model, opt = model_and_opt()
    levels = []
    with Session(recipe, model, opt, steps_per_epoch=3) as s:
        for _ in range(7):
            s.batch_start()
            levels.append(int((model[0].weight == 0).sum()))
    # batches at epochs 0, 1/3, 2/3, 1, 4/3, 5/3, 2 → updates at 0, 2/3, 1, 5/3 and 2 (end)
    assert levels == [0, 0, 17, 26, 26, 43, 51]


def test_gmp_after_constant_pruning_keeps_the_held_zeros():
    recipe = """
modifiers:
  - !ConstantPruningModifier
    params: ["0.weight"]
  - !GMPruningModifier
    params: ["0.weight"]
    final_sparsity: 0.5
    start_epoch: 0
    end_epoch: 2
"""
    model, opt = model_and_opt()
    with torch.no_grad():
        model[0].weight[:5] = 0  # 40 of 64 held zeros
    with Session(recipe, model, opt, steps_per_epoch=2) as s:
        for _ in range(5):
            s.batch_start()
            model(torch.randn(4, 8)).sum().backward()
            opt.step()
            opt.zero_grad()
            assert (model[0].weight[:5] == 0).all()
    assert int((model[0].weight == 0).sum()) == 40  # 0.5 target is below what was already held


def test_one_in_three_pattern_from_rounded_sparsity():
    recipe = ("modifiers:\n  - !GMPruningModifier\n    params: ['0.weight']\n    final_sparsity: 0.667\n"
              "    end_epoch: 1\n    mask_type: '1:3'\n")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(9, 6))
    with Session(recipe, model, None, steps_per_epoch=1) as s:
        s.batch_start(step=1)
    kept = (model[0].weight != 0).reshape(6, 3, 3).sum(-1)
    assert (kept == 1).all()
