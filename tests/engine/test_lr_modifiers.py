"""!LearningRateModifier against torch's own schedulers stepped once per optimizer step, as SparseML stepped them;
!SetLearningRateModifier; the three learning-rate modifiers through a Session."""

import math

import pytest
import torch
from torch.optim import lr_scheduler

from sparsecore import Session
from sparsecore.modifiers.learning_rate import scheduled_lr

SPE = 7  # steps per epoch: not a divisor of anything, so rounding to steps is exercised


def torch_reference(lr_class, kwargs, init_lr, start, steps):
    """The rate at each optimizer step from ``start``: SparseML's corrected kwargs fed to torch's scheduler."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=init_lr)
    if lr_class in ("StepLR", "ExponentialLR"):
        size = 1.0 if lr_class == "ExponentialLR" else kwargs["step_size"]
        sched = lr_scheduler.StepLR(opt, step_size=round(size * SPE), gamma=kwargs["gamma"])
    elif lr_class == "MultiStepLR":
        sched = lr_scheduler.MultiStepLR(opt, [round((m - start) * SPE) for m in kwargs["milestones"]],
                                         gamma=kwargs["gamma"])
    else:
        sched = lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=kwargs["cycle_epochs"], eta_min=kwargs["lr_min"])
    rates = []
    for n in range(steps):
        if lr_class == "CosineAnnealingWarmRestarts":
            sched.step(n / SPE)  # SparseML passes the fractional epoch since start
        elif n:
            opt.step()
            sched.step()
        rates.append(opt.param_groups[0]["lr"])
    return rates


@pytest.mark.parametrize("lr_class, kwargs", [
    ("StepLR", {"gamma": 0.5, "step_size": 0.5}), ("StepLR", {"gamma": 0.9, "step_size": 2}),
    ("ExponentialLR", {"gamma": 0.7}), ("MultiStepLR", {"gamma": 0.1, "milestones": [1.5, 3.0, 3.2]}),
    ("CosineAnnealingWarmRestarts", {"lr_min": 1e-5, "cycle_epochs": 2}),
])
@pytest.mark.parametrize("start", [0.0, 1.0])
def test_scheduled_lr_matches_torch_schedulers(lr_class, kwargs, start):
    want = torch_reference(lr_class, kwargs, 0.01, start, steps=5 * SPE)
    got = [scheduled_lr(start + n / SPE, SPE, lr_class, kwargs, 0.01, start) for n in range(5 * SPE)]
    assert got == pytest.approx(want, rel=1e-6, abs=1e-12)


def run(recipe, epochs=4, groups=2):
    params = [torch.nn.Parameter(torch.zeros(2)) for _ in range(groups)]
    opt = torch.optim.SGD([{"params": [p]} for p in params], lr=0.123)
    rates = []
    with Session(recipe, torch.nn.Linear(1, 1), opt, steps_per_epoch=SPE) as session:
        for _ in range(epochs * SPE):
            session.batch_start()
            rates.append([g["lr"] for g in opt.param_groups])
    return rates


def test_learning_rate_modifier_in_a_session_is_untouched_before_start_and_held_after_end():
    rates = run("modifiers:\n  - !LearningRateModifier\n    lr_class: StepLR\n    lr_kwargs: {gamma: 0.5, step_size: 1}\n"
                "    init_lr: 0.01\n    start_epoch: 1\n    end_epoch: 3\n")
    assert rates[SPE - 1] == [0.123, 0.123]  # before start_epoch
    assert rates[SPE] == [0.01, 0.01] and rates[2 * SPE] == [0.005, 0.005]
    assert rates[-1] == rates[3 * SPE - 1] == [0.005, 0.005]  # held from end_epoch


def test_set_learning_rate_modifier_sets_once_on_its_groups():
    rates = run("modifiers:\n  - !EpochRangeModifier\n    end_epoch: 4\n  - !SetLearningRateModifier\n"
                "    learning_rate: 0.05\n    start_epoch: 2.0\n    param_groups: [1]\n")
    assert rates[2 * SPE - 1] == [0.123, 0.123] and rates[2 * SPE] == [0.123, 0.05] and rates[-1] == [0.123, 0.05]


def test_every_learning_rate_modifier_owns_the_rate():
    from sparsecore.recipe import load_recipe
    for text in ("modifiers:\n  - !SetLearningRateModifier\n    learning_rate: 0.1\n",
                 "modifiers:\n  - !LearningRateModifier\n    lr_class: ExponentialLR\n    lr_kwargs: {gamma: 0.9}\n"
                 "    init_lr: 0.1\n    start_epoch: 0\n",
                 "modifiers:\n  - !LearningRateFunctionModifier\n    init_lr: 0.1\n    final_lr: 0\n    end_epoch: 1\n"):
        assert load_recipe(text).modifiers[0].SETS_LR
    assert not math.isnan(scheduled_lr(0.0, 1, "ExponentialLR", {"gamma": 0.5}, 0.1, 0.0))
