"""OBS pruning (oBERT) against a brute-force dense computation with exact inverses."""

import re

import numpy as np
import pytest
import torch
from torch import nn

from sparsecore import Session, load_recipe
from sparsecore.errors import SparsecoreError

DAMP = 1e-2


def brute_force(w: np.ndarray, grads: np.ndarray, block: int, k: int, group: int):
    """Exact inverses of the damped block Fisher, saliencies, global exact-k, joint OBS update per block."""
    d = w.size
    w = w.reshape(-1).astype(np.float64)
    g = grads.reshape(grads.shape[0], -1).astype(np.float64)
    finvs = []
    for s in range(0, d, block):  # the last block is shorter: padding is decoupled from real weights
        gb = g[:, s:s + block]
        finvs.append(np.linalg.inv(DAMP * np.eye(gb.shape[1]) + (gb[:, :, None] * gb[:, None, :]).mean(0)))
    sal = []
    for b, f in enumerate(finvs):
        wb = w[b * block:(b + 1) * block]
        for q in range(0, wb.size, group):
            idx = slice(q, q + group)
            sal.append(0.5 * wb[idx] @ np.linalg.solve(f[idx, idx], wb[idx]))
    order = np.argsort(np.array(sal), kind="stable")[:k]
    pruned_units = np.zeros(len(sal), bool)
    pruned_units[order] = True
    pruned = np.repeat(pruned_units, group)
    new = w.copy()
    for b, f in enumerate(finvs):
        sl = slice(b * block, (b + 1) * block)
        q = np.flatnonzero(pruned[sl])
        if q.size:
            new[sl] -= f[:, q] @ np.linalg.solve(f[np.ix_(q, q)], w[sl][q])
    new[pruned] = 0.0
    return pruned, new


@pytest.mark.parametrize("mask_type, block, group", [("unstructured", 10, 1), ("block4", 8, 4)])
def test_obs_step_equals_brute_force(mask_type, block, group):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 4, bias=False))
    w0 = model[0].weight.detach().numpy().copy()
    rng = np.random.default_rng(1)
    grads = rng.standard_normal((12, 4, 16)).astype(np.float32)

    def sampler(count, batch_size, desc):
        assert count == 12 and batch_size == 3
        for g in grads:
            model[0].weight.grad = torch.from_numpy(g.copy())
            yield

    recipe = f"""
modifiers:
  - !OBSPruningModifier
    params: ["0.weight"]
    final_sparsity: 0.5
    end_epoch: 1
    mask_type: {mask_type}
    num_grads: 12
    damp: {DAMP}
    fisher_block_size: {block}
    grad_sampler_kwargs: {{batch_size: 3}}
"""
    with Session(recipe, model, None, steps_per_epoch=1, grad_sampler=sampler) as s:
        s.batch_start(step=1)
    pruned, expected = brute_force(w0, grads, block, k=64 // 2 // group, group=group)
    got = model[0].weight.detach().numpy().reshape(-1)
    np.testing.assert_array_equal(got == 0, pruned)
    np.testing.assert_allclose(got, expected, atol=2e-4 * np.abs(expected).max())
    assert not np.allclose(got[~pruned], w0.reshape(-1)[~pruned])  # the survivors really moved


def test_obs_needs_gradients_and_validates_fields():
    model = nn.Sequential(nn.Linear(8, 4))
    recipe = "modifiers:\n  - !OBSPruningModifier\n    params: ['0.weight']\n    final_sparsity: 0.5\n    end_epoch: 1\n"
    with pytest.raises(SparsecoreError, match="needs gradients"):
        with Session(recipe, model, None, steps_per_epoch=1) as s:
            s.batch_start(step=1)
    with pytest.raises(SparsecoreError, match="fisher_block_size"):
        load_recipe(recipe + "    mask_type: block4\n    fisher_block_size: 50\n")
    with pytest.raises(SparsecoreError, match="grad_sampler_kwargs has unknown key 'shuffle'"):
        load_recipe(recipe + "    grad_sampler_kwargs: {shuffle: true}\n")


@pytest.mark.parametrize("mask_type, group", [("unstructured", 1), ("[1, 1]", 1), ("block4", 4), ("block", 4),
                                               ("[1, 4]", 4)])
def test_obs_reads_mask_type_like_the_magnitude_modifiers(mask_type, group):
    recipe = ("modifiers:\n  - !OBSPruningModifier\n    params: ['0.weight']\n    final_sparsity: 0.5\n"
              f"    end_epoch: 1\n    fisher_block_size: 8\n    mask_type: {mask_type}\n")
    assert load_recipe(recipe).modifiers[0].group == group


@pytest.mark.parametrize("mask_type, message", [("'2:4'", "mask_type 2:4 is not supported by OBS"),
                                                ("[2, 2]", "mask_type [2, 2] is not supported by OBS"),
                                                ("diagonal", "mask_type 'diagonal' is not understood")])
def test_obs_refuses_structures_it_cannot_prune(mask_type, message):
    recipe = ("modifiers:\n  - !OBSPruningModifier\n    params: ['0.weight']\n    final_sparsity: 0.5\n"
              f"    end_epoch: 1\n    fisher_block_size: 8\n    mask_type: {mask_type}\n")
    with pytest.raises(SparsecoreError, match=re.escape(message)):
        load_recipe(recipe)


def test_block4_obs_keeps_earlier_unstructured_zeros():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 4, bias=False))
    rng = np.random.default_rng(2)
    grads = rng.standard_normal((6, 4, 16)).astype(np.float32)

    def sampler(count, batch_size, desc):
        for g in grads[:count]:
            model[0].weight.grad = torch.from_numpy(g.copy())
            yield

    recipe = """
modifiers:
  - !OBSPruningModifier
    params: ["0.weight"]
    final_sparsity: 0.5
    end_epoch: 1
    mask_type: block4
    num_grads: 6
    damp: 0.01
    fisher_block_size: 8
"""
    with Session(recipe, model, None, steps_per_epoch=1, grad_sampler=sampler) as s:
        earlier = torch.zeros(4, 16, dtype=torch.bool)
        earlier.view(-1)[::4] = True  # every 4th weight pruned before, by an unstructured step
        s.masks.set("0.weight", model[0].weight, earlier)
        s.batch_start(step=1)
        final = s.masks.pruned("0.weight")
    assert final[earlier].all()
    assert (model[0].weight[final] == 0).all()


def test_gradual_obs_draws_no_gradients_when_nothing_is_due():
    """The update at start_epoch prunes to init_sparsity 0: no gradient pass, no weight move; the next draws."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 4, bias=False))
    w0 = model[0].weight.detach().clone()
    calls = []

    def sampler(count, batch_size, desc):
        calls.append(count)
        for _ in range(count):
            model[0].weight.grad = torch.randn(4, 16)
            yield

    recipe = ("modifiers:\n  - !OBSPruningModifier\n    params: ['0.weight']\n    final_sparsity: 0.5\n"
              "    start_epoch: 0\n    end_epoch: 2\n    update_frequency: 1\n    num_grads: 4\n"
              "    fisher_block_size: 8\n")
    with Session(recipe, model, None, steps_per_epoch=2, grad_sampler=sampler) as s:
        s.batch_start(step=0)
        assert calls == [] and torch.equal(model[0].weight, w0)
        s.batch_start(step=2)
        assert calls == [4] and 0 < int((model[0].weight == 0).sum()) < 32


def test_obs_survives_gradients_far_larger_than_damp():
    """Unit-scale random gradients on a tiny BERT make F⁻¹ span ~10 orders of magnitude: its sub-blocks are solved
    in float64 (float32 LU called them singular: a LinAlgError the recipe fuzzer found)."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=2,
                                                     intermediate_size=64))

    def sampler(count, batch_size, desc):
        for _ in range(count):
            for p in model.parameters():
                p.grad = torch.randn_like(p)
            yield

    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    with Session("minilm-obs80-demo", model, optimizer, steps_per_epoch=2, grad_sampler=sampler) as s:
        for step in range(4):
            s.batch_start(step=step)
    weights = [p for n, p in model.named_parameters() if "encoder" in n and n.endswith("dense.weight")]
    assert all(torch.isfinite(w).all() for w in weights) and any(bool((w == 0).any()) for w in weights)
