import math
import runpy
from pathlib import Path

import pytest
import torch
from torch import nn

from sparsecore import Session
from sparsecore.errors import SparsecoreError

ROOT = Path(__file__).resolve().parents[2]


def make_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 2))


def batches(n=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 16, generator=g), torch.randint(0, 2, (8,), generator=g)) for _ in range(n)]


RECIPE = """
modifiers:
  - !EpochRangeModifier
    end_epoch: 4
  - !GMPruningModifier
    params: ["0.weight", "re:2\\\\.weight"]
    final_sparsity: 0.75
    start_epoch: 0.5
    end_epoch: 3
    update_frequency: 0.5
    inter_func: cubic
  - !LearningRateFunctionModifier
    lr_func: cosine
    init_lr: 0.01
    final_lr: 0.001
    end_epoch: 4
"""


def train(model, recipe, data, epochs=None, start_epoch=0, session=None, opt=None):
    opt = opt or torch.optim.AdamW(model.parameters(), lr=1.0, weight_decay=0.05)
    session = session or Session(recipe, model, opt, steps_per_epoch=len(data)).initialize()
    for _ in range(start_epoch, epochs if epochs is not None else session.num_epochs):
        for x, y in data:
            session.batch_start()
            loss = session.loss(nn.functional.cross_entropy(model(x), y))
            loss.backward()
            opt.step()
            opt.zero_grad()
    return session, opt


def test_plain_loop_reaches_target_sparsity_and_follows_lr_schedule():
    model, data = make_model(), batches()
    session, opt = train(model, RECIPE, data)
    session.finalize()
    assert session.num_epochs == 4
    assert int((model[0].weight == 0).sum()) == 384  # exactly 0.75 · 512
    assert int((model[2].weight == 0).sum()) == 48
    assert model[0].bias.ne(0).all()
    last_epoch = (session.step - 1) / len(data)
    expected = 0.001 + 0.5 * (0.01 - 0.001) * (1 + math.cos(math.pi * last_epoch / 4))
    assert opt.param_groups[0]["lr"] == pytest.approx(expected)


def test_sparsity_ramps_monotonically_per_update():
    model, data = make_model(), batches()
    session = Session(RECIPE, model, torch.optim.SGD(model.parameters(), lr=0.1), steps_per_epoch=len(data))
    seen = []
    with session:
        for _ in range(4 * len(data)):
            session.batch_start()
            seen.append(float((model[0].weight == 0).float().mean()))
    assert seen == sorted(seen) and seen[0] == 0.0 and seen[-1] == 0.75
    assert len(set(seen)) >= 5  # several gradual updates, not one jump


def test_resume_matches_uninterrupted_run(tmp_path):
    data = batches()
    full_model = make_model()
    full, _ = train(full_model, RECIPE, data)
    full.finalize()

    model = make_model()
    session, opt = train(model, RECIPE, data, epochs=2)
    session.save(tmp_path)
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, tmp_path / "ckpt.pt")
    session.finalize()

    resumed_model = make_model(seed=123)
    ckpt = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    resumed_model.load_state_dict(ckpt["model"])
    opt2 = torch.optim.AdamW(resumed_model.parameters(), lr=1.0, weight_decay=0.05)
    opt2.load_state_dict(ckpt["opt"])
    s2 = Session(RECIPE, resumed_model, opt2, steps_per_epoch=len(data))
    s2.load(tmp_path)
    assert s2.step == 2 * len(data) and s2.masks.names() == ["0.weight", "2.weight"]
    train(resumed_model, RECIPE, data, start_epoch=2, session=s2, opt=opt2)
    s2.finalize()
    for a, b in zip(full_model.parameters(), resumed_model.parameters()):
        torch.testing.assert_close(a, b)


def test_resume_with_other_recipe_is_refused(tmp_path):
    model, data = make_model(), batches()
    session, _ = train(model, RECIPE, data, epochs=1)
    session.save(tmp_path)
    other = Session(RECIPE.replace("0.75", "0.5"), make_model(), None, steps_per_epoch=len(data))
    with pytest.raises(SparsecoreError, match="different recipe"):
        other.load(tmp_path)


def test_selector_matching_nothing_is_an_error():
    recipe = RECIPE.replace('"0.weight"', '"encoder.weight"')
    with pytest.raises(SparsecoreError, match="selector 'encoder.weight' matches no parameter"):
        Session(recipe, make_model(), None, steps_per_epoch=3).initialize()


def test_docs_plain_torch_example_runs_and_is_in_docs(capsys):
    path = ROOT / "examples" / "plain_torch_loop.py"
    runpy.run_path(str(path), run_name="__main__")
    assert "sparsity: 0.9000" in capsys.readouterr().out
    assert path.read_text().strip() in (ROOT / "docs" / "python-api.md").read_text()


def test_resume_with_other_steps_per_epoch_is_refused(tmp_path):
    model, data = make_model(), batches()
    session, _ = train(model, RECIPE, data, epochs=1)
    session.save(tmp_path)
    other = Session(RECIPE, make_model(), None, steps_per_epoch=len(data) * 2)
    with pytest.raises(SparsecoreError, match="steps per epoch"):
        other.load(tmp_path)


def test_every_update_is_recorded_with_step_epoch_lr_and_sparsity():
    model, data = make_model(), batches()
    session, _ = train(model, RECIPE, data)
    session.finalize()
    steps = [r["step"] for r in session.updates]
    assert steps == [3, 6, 9, 12, 15, 18]  # start 0.5 → end 3, every 0.5 epoch, 6 batches an epoch
    last = session.updates[-1]
    assert last["epoch"] == pytest.approx(3.0) and last["sparsity"] == pytest.approx(0.75, abs=0.01)
    assert last["GMPruningModifier/sparsity"] == pytest.approx(0.75, abs=0.01)
    lr = 0.001 + 0.5 * (0.01 - 0.001) * (1 + math.cos(math.pi * 3 / 4))  # the recipe's cosine at epoch 3
    assert last["lr"] == pytest.approx(lr, rel=1e-6)
    sparsities = [r["sparsity"] for r in session.updates]
    assert sparsities == sorted(sparsities) and sparsities[0] == 0 < sparsities[1]  # init_sparsity 0 at start
    assert session.pop_update() is last and session.pop_update() is None  # handed out once
    assert session.rank_checks == []  # one process: nothing to compare


def test_groups_and_repeated_tags_get_their_own_names_and_loss_parts_are_averaged():
    recipe = """
modifiers:
  - !GMPruningModifier
    final_sparsity: {0.5: ["0.weight"], 0.25: ["2.weight"]}
    end_epoch: 1
  - !GMPruningModifier
    params: ["0.bias"]
    final_sparsity: 0.5
    end_epoch: 1
  - !DistillationModifier
    hardness: 0.5
"""
    model, data = make_model(), batches(n=2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    session = Session(recipe, model, opt, steps_per_epoch=2).initialize()
    parts = []
    for x, y in data:
        session.batch_start()
        out = model(x)
        task = nn.functional.cross_entropy(out, y)
        session.loss(task, out, out.detach() + 1.0).backward()
        parts.append(float(task.detach()))
        opt.step()
        opt.zero_grad()
    record = session.updates[0]
    assert record["GMPruningModifier.0/sparsity@0.5"] == pytest.approx(0.0)  # start of a cubic schedule
    assert set(record) >= {"GMPruningModifier.0/sparsity", "GMPruningModifier.0/sparsity@0.25",
                           "GMPruningModifier.1/sparsity"}
    losses = session.pop_losses()
    assert losses["task_loss"] == pytest.approx(sum(parts) / 2) and losses["distill_loss"] > 0
    assert session.pop_losses() == {}
