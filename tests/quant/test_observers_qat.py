"""Observers, fake-quant points and attaching them to a model (no transformers involved)."""

import pytest
import torch
from tiny import tiny

from sparsecore.quant.fake_quant import FakeQuantize
from sparsecore.quant.observers import MinMaxObserver, MovingAverageMinMaxObserver
from sparsecore.quant.qat import QuantConfig, QuantState
from sparsecore.quant.scheme import DEFAULT_ACTIVATIONS, DEFAULT_WEIGHTS, QuantArgs
from sparsecore.quant.sites import select_sites


def test_minmax_and_moving_average_observers():
    mm, ma = MinMaxObserver(), MovingAverageMinMaxObserver(averaging_constant=0.5)
    for batch in (torch.tensor([-1.0, 2.0]), torch.tensor([-3.0, 1.0])):
        mm(batch)
        ma(batch)
    assert (float(mm.min_val), float(mm.max_val)) == (-3.0, 2.0)
    assert (float(ma.min_val), float(ma.max_val)) == (-2.0, 1.5)  # first batch, then m + 0.5·(new - m)
    ma.frozen = True
    ma(torch.tensor([-100.0, 100.0]))
    assert (float(ma.min_val), float(ma.max_val)) == (-2.0, 1.5)


def test_per_channel_observer_ranges():
    obs = MinMaxObserver(axis=1)
    obs(torch.tensor([[1.0, -2.0, 0.5], [3.0, 4.0, -0.5]]))
    assert obs.min_val.tolist() == [1.0, -2.0, -0.5] and obs.max_val.tolist() == [3.0, 4.0, 0.5]


def test_weight_point_follows_current_weights_until_frozen():
    point = FakeQuantize(DEFAULT_WEIGHTS, axis=0, is_weight=True)
    w = torch.randn(4, 8)
    point(w, observe=False)
    assert torch.equal(point.observer.max_val, w.amax(1))
    point.observer.frozen = True
    point(w * 10, observe=True)
    assert torch.equal(point.observer.max_val, w.amax(1))  # frozen: the old range clamps the new weights


def sites(model, **kw):
    defaults = dict(submodules=None, exclude_types=None, ignore=None, embeddings=True, where="test")
    return select_sites(model, **{**defaults, **kw})


def test_site_selection_kinds_and_filters():
    model = tiny()
    kinds = {s.name: s.kind for s in sites(model)}
    assert kinds["embed"] == "embedding" and kinds["attn"] == "matmul" and kinds["head"] == "linear"
    assert kinds["attn.query"] == "linear" and "norm" not in kinds
    assert "embed" not in {s.name for s in sites(model, embeddings=False)}
    assert {s.name for s in sites(model, submodules=("ffn",))} == {"ffn.0", "ffn.2"}
    assert "head" not in {s.name for s in sites(model, ignore=("head",))}
    assert not {"attn", "embed"} & {s.name for s in sites(model, exclude_types=("TinyAttention", "Embedding"))}
    assert {s.name for s in sites(model, ignore=("re:attn.*",))}.isdisjoint({"attn", "attn.query"})


@pytest.mark.parametrize("kw, message", [
    ({"submodules": ("encoder",)}, "submodule 'encoder' does not exist"),
    ({"exclude_types": ("Conv2d",)}, "module type 'Conv2d' does not occur"),
    ({"ignore": ("re:decoder.*",)}, "ignore entry 're:decoder.*' matches no module"),
    ({"submodules": ("norm",)}, "no module left to quantize"),
])
def test_site_selection_errors(kw, message):
    from sparsecore.errors import SparsecoreError

    with pytest.raises(SparsecoreError, match=message):
        sites(tiny(), **kw)


def attach(model, **cfg):
    config = QuantConfig(cfg.get("weights", DEFAULT_WEIGHTS), cfg.get("activations", DEFAULT_ACTIVATIONS),
                         cfg.get("output_activations", False))
    return QuantState(config).attach(model, sites(model))


def test_attach_quantizes_every_site_and_remove_restores_float():
    model, ids = tiny(), torch.randint(0, 50, (4, 7))
    float_out = model(ids)
    keys = set(model.state_dict())
    qs = attach(model)
    expected = {"embed.weight", "attn.qk.a", "attn.qk.b", "attn.av.a", "attn.av.b", "head.input", "head.weight"}
    assert expected <= set(qs.points)
    quant_out = model(ids)
    assert not torch.allclose(quant_out, float_out, atol=1e-6)
    assert torch.allclose(quant_out, float_out, atol=0.1)  # 8 bits: close, not equal
    assert set(model.state_dict()) == keys  # points live outside the model: checkpoints stay plain
    qs.remove()
    torch.testing.assert_close(model(ids), float_out)


def test_qat_gradients_flow_and_pruned_zeros_stay_zero():
    model = tiny(sparsity=0.8)
    zeros = {n: p == 0 for n, p in model.named_parameters() if n.endswith("weight") and p.dim() == 2}
    qs = attach(model)
    model.train()
    model(torch.randint(0, 50, (4, 7))).sum().backward()
    assert model.head.weight.grad is not None and model.embed.weight.grad.abs().sum() > 0
    for name, mask in zeros.items():
        module = model.get_submodule(name.rsplit(".", 1)[0])
        point = qs.points.get(name)
        if point is not None and mask.any():
            fq = point(module.weight, observe=False)
            assert torch.all(fq[mask] == 0), name


def test_observers_update_only_in_training_or_calibration():
    model, ids = tiny(), torch.randint(0, 50, (4, 7))
    qs = attach(model)
    model.eval()
    model(ids)  # first sight initialises the ranges
    point = qs.points["head.input"]
    before = point.observer.max_val.clone()
    model(ids * 0 + 3)
    assert torch.equal(point.observer.max_val, before)  # eval: no update
    qs.calibrating = True
    model(ids * 0 + 3)
    assert not torch.equal(point.observer.max_val, before)
    qs.calibrating = False
    qs.freeze()
    model.train()
    after = point.observer.max_val.clone()
    model(torch.randint(0, 50, (4, 7)))
    assert torch.equal(point.observer.max_val, after)


def test_save_and_load_reproduce_the_fake_quant_model(tmp_path):
    model, ids = tiny(), torch.randint(0, 50, (4, 7))
    qs = attach(model)
    model.train()
    for _ in range(3):
        model(torch.randint(0, 50, (8, 7)))
    model.eval()
    qs.freeze()
    want = model(ids)
    qs.save(tmp_path)
    fresh = tiny()
    fresh.load_state_dict(model.state_dict())
    loaded = QuantState.load(tmp_path, fresh.eval())
    assert set(loaded.points) == set(qs.points)
    torch.testing.assert_close(fresh(ids), want, rtol=0, atol=0)
    assert QuantState.load(tmp_path / "nothing", tiny()) is None


def test_output_activations_and_low_bits():
    model, ids = tiny(), torch.randint(0, 50, (4, 7))
    qs = attach(model, output_activations=True, weights=QuantArgs(num_bits=4, strategy="tensor"),
                activations=QuantArgs(num_bits=4, symmetric=False, reduce_range=True))
    assert "head.output" in qs.points
    model(ids)
    point = qs.points["head.weight"]
    codes = torch.round(model.head.weight / point.qparams()[0])
    assert (point.qmin, point.qmax) == (-8, 7) and codes.abs().max() <= 8
    assert qs.points["head.input"].qmax == 7  # 4 bits, reduce_range: 3 bits unsigned
