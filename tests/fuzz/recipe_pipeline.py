"""The recipe path a fuzz input goes through, as the CLI takes it, on a tiny BERT classifier.

:func:`run_recipe` loads the recipe (:func:`sparsecore.recipe.load_recipe`, from inline text or a file, with
``recipe_args`` as ``--recipe_args``), checks its layer pruning against the model and validates a
:class:`~sparsecore.session.Session` on it (what ``text_classification`` does before training), writes it back as
YAML and loads that again, then — when the work the recipe asks for is small (``SMALL``) — applies it one-shot
and runs a few training steps on fresh copies of the model. Any of these may refuse the recipe with a
``SparsecoreError``.
"""

from __future__ import annotations

import copy
import functools
import tempfile
from pathlib import Path

import numba
import torch
from transformers import BertConfig, BertForSequenceClassification

from sparsecore.adapters.layers import check_layer_pruning, finish_layer_pruning
from sparsecore.adapters.models import output_keys
from sparsecore.adapters.quant_attention import quantizable_attention
from sparsecore.modifiers.obs import OBSPruningModifier
from sparsecore.modifiers.quantization import QuantizationModifier
from sparsecore.recipe import load_recipe
from sparsecore.session import Session, apply_one_shot

# the work a recipe may ask of the one-shot and training steps here; larger asks are only loaded and validated
SMALL = {"num_grads": 64, "fisher_block_size": 64, "num_recomputations": 4, "num_calibration_steps": 8}
TRAIN_STEPS = 6
STEPS_PER_EPOCH = 2


@functools.cache
def _tiny() -> BertForSequenceClassification:
    """A random-init 2-layer BERT classifier (hidden 32, vocabulary 128), built once; callers copy it."""
    config = BertConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=32, vocab_size=128)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return BertForSequenceClassification(config).eval()


def tiny_model() -> BertForSequenceClassification:
    """A fresh copy of the tiny BERT (sessions change their model)."""
    return copy.deepcopy(_tiny())


def _inputs(gen: torch.Generator) -> dict:
    return {"input_ids": torch.randint(0, 128, (2, 8), generator=gen),
            "labels": torch.randint(0, 2, (2,), generator=gen)}


def _samplers(model):
    """(grad_sampler, forward_sampler) of the Session contract, on random token ids (gradients: random tensors)."""
    gen = torch.Generator().manual_seed(1)

    def grads(count, batch_size, desc):
        for _ in range(count):
            for p in model.parameters():
                p.grad = 0.01 * torch.randn(p.shape, generator=gen)  # the scale of real gradients
            yield
        model.zero_grad()

    def forwards(count, desc):
        for _ in range(2 if count is None else count):
            with torch.no_grad():
                model(**{k: v for k, v in _inputs(gen).items() if k != "labels"})
            yield

    return grads, forwards


def small(recipe) -> bool:
    """True when every OBS / calibration count of ``recipe`` is within ``SMALL``."""
    for m in recipe.modifiers:
        if isinstance(m, OBSPruningModifier) and any(getattr(m, k) > SMALL[k] for k in
                                                     ("num_grads", "fisher_block_size", "num_recomputations")):
            return False
        if isinstance(m, QuantizationModifier) and (m.num_calibration_steps or 0) > SMALL["num_calibration_steps"]:
            return False
    return True


def load(text: str, how: str = "inline", raw: bytes | None = None, recipe_args=None):
    """``load_recipe`` on ``text`` given inline, or written to a ``.yaml`` / ``.md`` file (``raw``: its bytes), with
    ``recipe_args`` (``--recipe_args``)."""
    if how == "inline":
        return load_recipe(text, recipe_args)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("recipe.md" if how == "md-file" else "recipe.yaml")
        path.write_bytes(raw if raw is not None else text.encode("utf-8", "surrogatepass"))
        return load_recipe(str(path), recipe_args)


def run_recipe(text: str, how: str = "inline", raw: bytes | None = None, recipe_args=None):
    """Every step of the module docstring, on one torch and Numba thread (a tiny model's ops cost more in thread
    hand-offs than in arithmetic); returns the loaded recipe (raises ``SparsecoreError`` on refusal)."""
    threads = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    try:
        return _run(text, how, raw, recipe_args)
    finally:
        torch.set_num_threads(threads[0])
        numba.set_num_threads(threads[1])


def _run(text: str, how: str, raw: bytes | None, recipe_args):
    recipe = load(text, how, raw, recipe_args)
    model = tiny_model()
    check_layer_pruning(model, recipe)
    if recipe.quantizes:
        quantizable_attention(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    Session(recipe, model, optimizer, steps_per_epoch=1, output_keys=output_keys(model)).validate()
    again = load_recipe(recipe.to_yaml())  # what a trained folder's recipe.yaml holds loads back the same
    assert again.to_yaml() == recipe.to_yaml(), (recipe.to_yaml(), again.to_yaml())
    if small(recipe):
        _one_shot(recipe)
        _train(recipe)
    return recipe


def _one_shot(recipe) -> None:
    model = tiny_model()
    if recipe.quantizes:
        quantizable_attention(model)
    grads, forwards = _samplers(model)
    session = apply_one_shot(recipe, model, grad_sampler=grads, forward_sampler=forwards)
    finish_layer_pruning(model, session.dropped_layers)
    model(**_inputs(torch.Generator().manual_seed(2)))


def _train(recipe) -> None:
    """A few optimizer steps driven by the session, as a plain training loop (teacher: a copy of the model)."""
    model, teacher = tiny_model(), tiny_model()
    if recipe.quantizes:
        quantizable_attention(model)
    grads, forwards = _samplers(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(3)
    model.train()
    with Session(recipe, model, optimizer, steps_per_epoch=STEPS_PER_EPOCH, grad_sampler=grads,
                 forward_sampler=forwards, output_keys=output_keys(model)) as session:
        for step in range(min(TRAIN_STEPS, session.num_epochs * STEPS_PER_EPOCH)):
            session.batch_start(step)
            batch = _inputs(gen)
            out = model(**batch)
            with torch.no_grad():
                soft = teacher(**session.teacher_inputs(batch)) if session.needs_teacher else None
            session.loss(out.loss, out, soft).backward()
            optimizer.step()
            optimizer.zero_grad()
    finish_layer_pruning(model, session.dropped_layers)
