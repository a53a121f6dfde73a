"""!QuantizationModifier: recipe forms, bad inputs, and its lifecycle in a Session."""

import pytest
import torch
from tiny import tiny

from sparsecore.errors import SparsecoreError
from sparsecore.recipe import load_recipe
from sparsecore.session import Session

QAT = "modifiers:\n  - !QuantizationModifier\n"


def modifier(body: str):
    return load_recipe(QAT + body).modifiers[0]


def test_defaults_are_int8_weights_per_channel_symmetric_and_activations_per_tensor_asymmetric():
    cfg = modifier("    start_epoch: 0.0\n").config()
    assert (cfg.weights.num_bits, cfg.weights.symmetric, cfg.weights.strategy) == (8, True, "channel")
    assert (cfg.activations.num_bits, cfg.activations.symmetric, cfg.activations.strategy) == (8, False, "tensor")
    assert not cfg.output_activations


def test_legacy_fields_and_scheme_form():
    legacy = modifier("    activation_bits: 6\n    weight_bits: 4\n    reduce_range: true\n"
                      "    quantize_linear_activations: true\n").config()
    assert (legacy.activations.num_bits, legacy.activations.reduce_range, legacy.weights.num_bits) == (6, True, 4)
    assert legacy.output_activations
    scheme = modifier("    scheme:\n      input_activations: {num_bits: 8, symmetric: true}\n"
                      "      weights: {num_bits: 8, symmetric: true, strategy: tensor}\n"
                      "    ignore: [head]\n").config()
    assert scheme.activations.symmetric and scheme.weights.strategy == "tensor"
    assert modifier("    scheme: {input_activations: null}\n").config().activations is None  # weight-only


BAD = {
    "activation bits too high": ("    activation_bits: 9\n", r"activation_bits.num_bits is 9.*2 to 8"),
    "weight bits too low": ("    weight_bits: 1\n", r"weight_bits.num_bits is 1.*2 to 8"),
    "scheme bits": ("    scheme: {weights: {num_bits: 12}}\n", r"scheme.weights.num_bits is 12"),
    "unknown strategy": ("    scheme: {weights: {strategy: group}}\n", r"strategy is 'group'.*tensor, channel"),
    "per-channel activations": ("    scheme: {input_activations: {strategy: channel}}\n",
                                "activations are quantized per tensor"),
    "unknown scheme key": ("    scheme: {outputs: {num_bits: 8}}\n", "unknown key 'outputs'"),
    "unknown scheme field": ("    scheme: {weights: {group_size: 128}}\n", "unknown key 'group_size'"),
    "bits contradict scheme": ("    weight_bits: 4\n    scheme: {weights: {num_bits: 8}}\n", "contradicts"),
    "observer frozen before start": ("    start_epoch: 2.0\n    disable_quantization_observer_epoch: 1.0\n",
                                     "before start_epoch"),
    "zero calibration steps": ("    num_calibration_steps: 0\n", "num_calibration_steps is 0"),
    "unknown field": ("    quantize_everything: true\n", "unknown field 'quantize_everything'"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_recipes(name):
    body, pattern = BAD[name]
    with pytest.raises(SparsecoreError, match=pattern):
        load_recipe(QAT + body)


def test_quantization_start_after_training_end_is_an_error():
    recipe = ("modifiers:\n  - !EpochRangeModifier\n    start_epoch: 0.0\n    end_epoch: 3.0\n"
              "  - !QuantizationModifier\n    start_epoch: 3.0\n")
    with pytest.raises(SparsecoreError, match=r"start_epoch \(3\) is not before the end of training \(epoch 3\)"):
        load_recipe(recipe)
    assert load_recipe(recipe.replace("start_epoch: 3.0", "start_epoch: 2.5"))


def test_unknown_submodule_fails_when_the_session_validates():
    recipe = load_recipe(QAT + "    submodules: [bert.encoder]\n")
    with pytest.raises(SparsecoreError, match="submodule 'bert.encoder' does not exist.*use module names such as"):
        Session(recipe, tiny(), None, steps_per_epoch=4).validate()


def train(session, model, steps, gen):
    opt = session.optimizer
    for step in range(steps):
        session.batch_start()
        loss = model(torch.randint(0, 50, (8, 9), generator=gen)).logsumexp(1).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()


def test_lifecycle_start_calibrate_freeze_and_keep_after_finalize():
    model, gen = tiny(), torch.Generator().manual_seed(0)
    calls = []

    def forward_sampler(count, desc):
        for _ in range(count):
            calls.append(desc)
            model(torch.randint(0, 50, (8, 9), generator=gen))
            yield

    recipe = load_recipe("modifiers:\n  - !EpochRangeModifier\n    end_epoch: 3.0\n" + QAT.removeprefix("modifiers:\n") +
                         "    start_epoch: 1.0\n    disable_quantization_observer_epoch: 2.0\n"
                         "    num_calibration_steps: 3\n")
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    session = Session(recipe, model, opt, steps_per_epoch=4, forward_sampler=forward_sampler)
    with session:
        train(session, model, 4, gen)
        assert session.quantization is None and not calls
        train(session, model, 1, gen)
        assert session.quantization is not None and len(calls) == 3  # calibrated once at the start
        point = session.quantization.points["head.input"]
        before = point.observer.max_val.clone()
        train(session, model, 3, gen)
        assert not torch.equal(point.observer.max_val, before)  # training updates ranges
        train(session, model, 1, gen)  # epoch 2: observers frozen
        frozen = point.observer.max_val.clone()
        train(session, model, 3, gen)
        assert torch.equal(point.observer.max_val, frozen)
    assert session.quantization.points["head.weight"].observer.frozen
    assert getattr(model.head, "forward", None) is not type(model.head).forward  # still fake-quantized


def test_one_shot_ptq_needs_calibration_data():
    recipe = load_recipe(QAT)
    with pytest.raises(SparsecoreError, match="needs calibration data"):
        with Session(recipe, tiny(), None, steps_per_epoch=1, one_shot=True) as s:
            s.batch_start()


def test_checkpoint_resume_restores_quantization_ranges(tmp_path):
    gen = torch.Generator().manual_seed(1)
    recipe = load_recipe("modifiers:\n  - !EpochRangeModifier\n    end_epoch: 2.0\n" + QAT.removeprefix("modifiers:\n") +
                         "    start_epoch: 0.5\n")
    model = tiny()
    session = Session(recipe, model, torch.optim.SGD(model.parameters(), lr=0.01), steps_per_epoch=4)
    session.initialize()
    train(session, model, 5, gen)
    session.save(tmp_path)
    ids = torch.randint(0, 50, (4, 9))
    model.eval()
    want = model(ids)
    resumed_model = tiny()
    resumed_model.load_state_dict(model.state_dict())
    resumed = Session(recipe, resumed_model, torch.optim.SGD(resumed_model.parameters(), lr=0.01), steps_per_epoch=4)
    resumed.load(tmp_path)
    assert resumed.quantization is not None
    torch.testing.assert_close(resumed_model.eval()(ids), want, rtol=0, atol=0)
