import torch
from torch import nn

from sparsecore.pruning.apply import prune_layerwise
from sparsecore.pruning.masks import MaskSet
from sparsecore.pruning.structure import parse_mask_type


def test_pruned_weights_stay_zero_through_adamw_with_decay_and_momentum():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    # build up momentum first, so the moments are non-zero where we then prune
    x, y = torch.randn(32, 8), torch.randint(0, 2, (32,))
    for _ in range(3):
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        opt.zero_grad()
    masks = MaskSet()
    w = model[0].weight
    prune_layerwise([("0.weight", w)], [0.5], masks, parse_mask_type("unstructured", "t"))
    pruned = masks.pruned("0.weight")
    with masks.enforced(opt):
        for _ in range(5):
            assert (w[pruned] == 0).all()  # every forward sees exact zeros
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            opt.zero_grad()
    assert (w[pruned] == 0).all() and (w[~pruned] != 0).all()
    # the hooks came off: a plain step may now move pruned weights (decay/momentum)
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    assert (w[pruned] != 0).any()


def test_without_mask_hooks_adamw_revives_pruned_weights():
    """Guards the test above: it would fail if the hooks did nothing."""
    torch.manual_seed(0)
    layer = nn.Linear(8, 8)
    opt = torch.optim.AdamW(layer.parameters(), lr=1e-2, weight_decay=0.1)
    with torch.no_grad():
        layer.weight[:4] = 0
    layer(torch.randn(4, 8)).sum().backward()
    opt.step()
    assert (layer.weight[:4] != 0).any()
