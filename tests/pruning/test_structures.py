import pytest
import torch
from torch import nn

from sparsecore.errors import SparsecoreError
from sparsecore.pruning.apply import prune_global, prune_layerwise
from sparsecore.pruning.masks import MaskSet
from sparsecore.pruning.structure import check_shape, parse_mask_type


def param(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return nn.Parameter(torch.randn(*shape, generator=g))


def test_parse_mask_types():
    assert parse_mask_type("unstructured", "t").kind == "unstructured"
    assert parse_mask_type("block4", "t").describe() == "[1, 4]"
    assert parse_mask_type([2, 2], "t").describe() == "[2, 2]"
    nm = parse_mask_type("2:4", "t")
    assert (nm.n, nm.m, nm.max_sparsity) == (2, 4, 0.5)
    for bad in ("4:2", "0:4", [0, 4], "blocky"):
        with pytest.raises(SparsecoreError):
            parse_mask_type(bad, "t")


def test_layerwise_exact_count_on_constant_weights():
    p = nn.Parameter(torch.full((7, 9), 0.5))
    masks = MaskSet()
    prune_layerwise([("w", p)], [0.4], masks, parse_mask_type("unstructured", "t"))
    assert int((p == 0).sum()) == round(0.4 * 63 + 1e-9) == 25
    assert masks.pruned("w").flatten()[:25].all()  # ties → lowest indices first


def test_block_masks_are_whole_blocks_with_partial_edges():
    p = param(6, 10)  # 10 columns: the last 1×4 block of each row has 2 elements
    masks = MaskSet()
    prune_layerwise([("w", p)], [0.5], masks, parse_mask_type("block4", "t"))
    pruned = masks.pruned("w")
    blocks = torch.nn.functional.pad(pruned.float(), (0, 2)).reshape(6, 3, 4)
    real = torch.nn.functional.pad(torch.ones(6, 10), (0, 2)).reshape(6, 3, 4)
    per_block = (blocks.sum(-1) / real.sum(-1))
    assert set(per_block.flatten().tolist()) <= {0.0, 1.0}
    assert int(per_block.sum()) == 9  # round(0.5 · 18 blocks)
    # the pruned blocks are those with the smallest mean |w|
    means = (torch.nn.functional.pad(p.detach().abs(), (0, 2)).reshape(6, 3, 4).sum(-1) / real.sum(-1)).flatten()
    chosen = per_block.flatten().bool()
    assert means[chosen].max() <= means[~chosen].min()


def test_2d_blocks():
    p = param(8, 8, seed=1)
    masks = MaskSet()
    prune_layerwise([("w", p)], [0.75], masks, parse_mask_type([2, 2], "t"))
    grid = masks.pruned("w").reshape(4, 2, 4, 2).permute(0, 2, 1, 3).reshape(16, 4).float()
    assert set(grid.mean(-1).tolist()) <= {0.0, 1.0} and int(grid.mean(-1).sum()) == 12


def test_n_m_pattern_reached_exactly():
    p = param(4, 16, seed=2)
    masks = MaskSet()
    nm = parse_mask_type("2:4", "t")
    prune_layerwise([("w", p)], [0.25], masks, nm)  # halfway: each group may lose at most 2
    assert int(masks.pruned("w").sum()) == 16
    assert masks.pruned("w").reshape(4, 4, 4).sum(-1).max() <= 2
    prune_layerwise([("w", p)], [0.5], masks, nm)
    groups = masks.pruned("w").reshape(4, 4, 4).sum(-1)
    assert (groups == 2).all()
    with pytest.raises(SparsecoreError, match="divisible by 4"):
        check_shape(nm, torch.Size([4, 6]), "w")


def test_n_m_ties_choose_lowest_index_in_group():
    p = nn.Parameter(torch.ones(1, 8))
    masks = MaskSet()
    prune_layerwise([("w", p)], [0.5], masks, parse_mask_type("2:4", "t"))
    assert masks.pruned("w").tolist() == [[True, True, False, False, True, True, False, False]]


def test_monotonic_masks_even_when_weights_reorder():
    p = param(10, 10, seed=3)
    masks = MaskSet()
    s = parse_mask_type("unstructured", "t")
    prune_layerwise([("w", p)], [0.3], masks, s)
    before = masks.pruned("w").clone()
    with torch.no_grad():
        p.add_(torch.randn(10, 10) * 5)  # surviving weights move around
    masks.apply()
    prune_layerwise([("w", p)], [0.6], masks, s)
    after = masks.pruned("w")
    assert (after | ~before).all() and int(after.sum()) == 60


def test_global_pruning_competes_across_layers():
    small = nn.Parameter(torch.full((4, 4), 0.01))
    big = nn.Parameter(torch.full((4, 4), 1.0))
    masks = MaskSet()
    prune_global([("a", small), ("b", big)], 0.5, masks, parse_mask_type("unstructured", "t"))
    assert (small == 0).all() and (big != 0).all()
