"""Drive a recipe from any training loop.

Lifecycle::

    session = Session(recipe, model, optimizer, steps_per_epoch=len(loader))
    with session:                                  # initialize(): resolve params, attach mask hooks
        for epoch in range(session.num_epochs):    # ceil of the recipe's last epoch
            for batch in loader:
                session.batch_start()              # modifiers act at fractional epoch step/steps_per_epoch
                out = model(batch.x)
                loss = session.loss(loss_fn(out, batch.y), out,
                                    teacher(batch.x) if session.needs_teacher else None)
                loss.backward(); optimizer.step(); optimizer.zero_grad()   # masks re-applied by hooks
    # finalize(): hooks removed, pruned weights exactly zero

Modifiers receive the session as their ``state``: they use ``model``,
``optimizer``, ``masks``, ``epoch``, ``problem_type``, ``teacher_disabled``,
``warn()``, ``require_optimizer()``, ``sample_gradients()`` (OBS; needs ``grad_sampler``:
a callable ``(count, batch_size, description)`` that runs forward/backward on ``count`` training
batches and yields after each one) and ``run_forward()`` (quantization calibration; needs
``forward_sampler``: ``(count or None for one pass, description)``, forward passes only).
``one_shot=True`` marks a session applied without training (``--one_shot``: post-training
quantization calibrates and freezes its ranges). After a ``!QuantizationModifier`` starts,
``session.quantization`` holds its fake-quant points (:class:`sparsecore.quant.qat.QuantState`).
``output_keys`` (optional) names what the model's forward returns, so a ``!DistillationModifier``
asking for another key fails in :meth:`Session.validate`, before training. Modifiers that change
the model's structure (``!LayerPruningModifier``) are initialized first; ``session.dropped_layers``
lists the layers currently removed (:func:`sparsecore.modifiers.layer_pruning.remove_skipped_layers`
deletes them from the model after training).

What a user watches: every step at which a modifier acted (pruned, started quantization, dropped layers)
appends a record to ``session.updates`` — ``{"step", "epoch", "lr", "sparsity", "<modifier>/<value>"…}``;
``pop_update()`` hands the newest unreported one to a logger (``SparseTrainer`` puts it into the Trainer's
logs), and ``pop_losses()`` the mean task and distillation losses since the last call.

Under ``torchrun`` (an initialized ``torch.distributed`` group) every rank drives its own session over the
same weights: OBS gradients are gathered from all ranks, and after each mask update the ranks' masks
checksums are compared (``session.rank_checks``; see :mod:`sparsecore.distributed`). Pass the unwrapped
model (``ddp.module``), so parameter names match the recipe.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
from contextlib import ExitStack
from pathlib import Path
from typing import Callable, Iterable

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from sparsecore import distributed
from sparsecore.errors import SparsecoreError
from sparsecore.modifiers.distillation import DistillationModifier
from sparsecore.pruning.masks import MaskSet
from sparsecore.recipe import Recipe, load_recipe

log = logging.getLogger("sparsecore")
MASKS_FILE = "sparsecore_masks.safetensors"
TENSORS_FILE = "sparsecore_modifier_tensors.safetensors"  # e.g. quantization ranges
STATE_FILE = "sparsecore_session.json"


class Session:
    """Runs a recipe's modifiers over one model and optimizer; the lifecycle is in the module docstring.

    ``recipe``: a :class:`~sparsecore.recipe.Recipe` or anything :func:`~sparsecore.recipe.load_recipe`
    takes (with ``recipe_args``). ``steps_per_epoch`` (≥ 1) turns step counts into the fractional epochs the
    modifiers schedule on. The modifiers are copied, so the recipe object can be reused by other sessions.
    Also a context manager: ``with session:`` calls :meth:`initialize` and :meth:`finalize`.
    """

    def __init__(self, recipe: Recipe | str, model: nn.Module, optimizer: torch.optim.Optimizer | None = None, *,
                 steps_per_epoch: int, recipe_args: str | dict | None = None,
                 problem_type: str = "single_label_classification", teacher_disabled: bool = False,
                 grad_sampler: Callable[[int, int | None, str], Iterable[None]] | None = None,
                 forward_sampler: Callable[[int | None, str], Iterable[None]] | None = None,
                 one_shot: bool = False, output_keys: Iterable[str] | None = None) -> None:
        if steps_per_epoch < 1:
            raise SparsecoreError(f"steps_per_epoch is {steps_per_epoch}", "Session", "pass len(train_loader) >= 1")
        self.recipe = recipe if isinstance(recipe, Recipe) else load_recipe(recipe, recipe_args)
        # fresh copies: each session owns its modifiers' run-time state (the Recipe stays reusable)
        self.modifiers = tuple(dataclasses.replace(m) for m in self.recipe.modifiers)
        self.model, self.optimizer = model, optimizer
        self.steps_per_epoch = steps_per_epoch
        self.problem_type = problem_type
        self.teacher_disabled = teacher_disabled
        self.grad_sampler = grad_sampler
        self.forward_sampler = forward_sampler
        self.one_shot = one_shot
        self.output_keys = None if output_keys is None else tuple(output_keys)
        self.dropped_layers: list[str] = []
        self.quantization = None  # QuantState once a QuantizationModifier has started
        self.masks = MaskSet()
        self.step = 0
        self.warnings: list[str] = []
        self.updates: list[dict] = []  # one record per step at which a modifier acted
        self.rank_checks: list[dict] = []  # under torchrun: {"step", "checksums": one per rank} per mask update
        self._labels = _labels(self.modifiers)
        self._label = ""
        self._pending: dict[str, float] = {}
        self._unreported: dict | None = None
        self._losses: dict[str, list[float]] = {}
        self._stack: ExitStack | None = None

    # ---- properties ---------------------------------------------------
    @property
    def epoch(self) -> float:
        """Fractional epoch of the current batch (the last ``batch_start``), 0 before any."""
        return max(self.step - 1, 0) / self.steps_per_epoch

    @property
    def num_epochs(self) -> int:
        """Whole epochs to run: ceil of the recipe's last epoch (1 if it has none)."""
        last = self.recipe.num_epochs
        return max(1, math.ceil(last - 1e-9)) if last is not None else 1

    @property
    def needs_teacher(self) -> bool:
        """True when a ``!DistillationModifier`` is active at the current epoch and the teacher is not disabled."""
        return not self.teacher_disabled and any(
            isinstance(m, DistillationModifier) and m.active(self.epoch) for m in self.modifiers)

    def teacher_inputs(self, inputs: dict) -> dict:
        """The teacher's inputs for a batch (a ``!DistillationModifier``'s ``teacher_input_keys``, else all but labels)."""
        for modifier in self.modifiers:
            if isinstance(modifier, DistillationModifier) and modifier.active(self.epoch):
                return modifier.teacher_inputs(inputs)
        return {k: v for k, v in inputs.items() if k != "labels"}

    # ---- helpers for modifiers ----------------------------------------
    def warn(self, message: str) -> None:
        """Log a warning to the ``sparsecore`` logger and keep it in ``warnings``."""
        self.warnings.append(message)
        log.warning(message)

    def record_update(self, values: dict[str, float]) -> None:
        """A modifier says what it just did (e.g. ``{"sparsity": 0.42}``); logged with this step's record."""
        self._pending.update({f"{self._label}/{k}": float(v) for k, v in values.items()})

    def record_losses(self, values: dict[str, torch.Tensor | float]) -> None:
        """Loss parts of the current batch (e.g. task and distillation loss), averaged by :meth:`pop_losses`."""
        for key, value in values.items():
            total = self._losses.setdefault(key, [0.0, 0])
            total[0] += float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
            total[1] += 1

    def pop_update(self) -> dict | None:
        """The newest update record not handed out yet (None if there is none)."""
        record, self._unreported = self._unreported, None
        return record

    def pop_losses(self) -> dict[str, float]:
        """Mean of each recorded loss part since the last call."""
        means = {key: total / count for key, (total, count) in self._losses.items() if count}
        self._losses = {}
        return means

    def sample_gradients(self, count: int, batch_size: int | None, desc: str,
                         params: list[tuple[str, nn.Parameter]] | None = None) -> Iterable[None]:
        """Yield ``count`` times with training-batch gradients in ``.grad``. Under torchrun, with ``params``
        (the parameters whose gradients the caller reads), the samples of all ranks are gathered, in the
        order one process would compute them."""
        if self.grad_sampler is None:
            raise SparsecoreError("this recipe needs gradients (OBS pruning) but the session has no grad_sampler",
                                  "Session", "pass grad_sampler= (the CLI and SparseTrainer do this for you)")
        if params is not None and distributed.world_size() > 1:
            return distributed.all_rank_gradients(self.grad_sampler, count, batch_size, desc, params)
        return self.grad_sampler(count, batch_size, desc)

    def run_forward(self, count: int | None, desc: str) -> Iterable[None]:
        """Run forward passes on ``count`` training batches (None: one pass over them), yielding after each."""
        if self.forward_sampler is None:
            raise SparsecoreError("this recipe needs calibration data (quantization) but the session has no "
                                  "forward_sampler", "Session",
                                  "pass forward_sampler= (the CLI and SparseTrainer do this for you)")
        return self.forward_sampler(count, desc)

    def require_optimizer(self, tag: str) -> None:
        """``SparsecoreError`` naming ``!tag`` when the session has no optimizer."""
        if self.optimizer is None:
            raise SparsecoreError(f"!{tag} needs an optimizer", "Session", "pass optimizer= when creating the Session")

    # ---- lifecycle ----------------------------------------------------
    def _init_order(self) -> list:
        return sorted(self.modifiers, key=lambda m: not m.CHANGES_STRUCTURE)  # stable: recipe order otherwise

    def initialize(self) -> "Session":
        """Initialize every modifier (structure-changing ones first) and attach the mask hooks to the optimizer;
        a no-op when already initialized. Returns the session."""
        if self._stack is not None:
            return self
        labels = {id(m): label for m, label in zip(self.modifiers, self._labels)}
        for modifier in self._init_order():
            self._label = labels[id(modifier)]
            modifier.initialize(self)
        self._stack = ExitStack()
        self._stack.enter_context(self.masks.enforced(self.optimizer))
        return self

    def validate(self) -> None:
        """Resolve every selector and check shapes now, changing nothing (fail before training starts)."""
        real = self.optimizer
        if self.optimizer is None:
            self.optimizer = torch.optim.SGD([p for p in self.model.parameters()], lr=0.0)
        done = []
        try:
            for modifier in self._init_order():
                modifier.initialize(self)
                done.append(modifier)
        finally:
            for modifier in reversed(done):
                modifier.release(self)
            self.optimizer = real
            self._pending = {}

    def batch_start(self, step: int | None = None) -> None:
        """Call before each forward pass; ``step`` (global, 0-based) overrides the internal counter."""
        if self._stack is None:
            self.initialize()
        if step is not None:
            self.step = step
        self.step += 1
        version = self.masks.version
        for label, modifier in zip(self._labels, self.modifiers):
            self._label = label
            modifier.update(self, self.epoch)
        self._close_update(version)

    def _close_update(self, masks_version: int) -> None:
        """Turn what the modifiers recorded at this step into one update record; check the ranks agree."""
        changed = self.masks.version != masks_version
        if changed and distributed.world_size() > 1:
            sums = distributed.agreed_checksum(self.masks.state_dict(), self.step - 1)
            self.rank_checks.append({"step": self.step - 1, "checksums": sums})
        if not self._pending and not changed:
            return
        record = {"step": self.step - 1, "epoch": self.epoch}
        if self.optimizer is not None and self.optimizer.param_groups:
            record["lr"] = float(self.optimizer.param_groups[0]["lr"])
        if len(self.masks):
            record["sparsity"] = self.masks.sparsity()
        record.update(self._pending)
        self._pending = {}
        self.updates.append(record)
        self._unreported = record

    def loss(self, task_loss: torch.Tensor, student_outputs=None, teacher_outputs=None) -> torch.Tensor:
        """Apply loss modifiers (distillation) to the loss of the current batch."""
        for modifier in self.modifiers:
            task_loss = modifier.modify_loss(self, self.epoch, task_loss, student_outputs, teacher_outputs)
        return task_loss

    def finalize(self) -> None:
        """Finalize every modifier, zero the pruned weights once more and remove the optimizer hooks; a no-op
        when not initialized."""
        if self._stack is None:
            return
        for modifier in self.modifiers:
            modifier.finalize(self)
        self.masks.apply()
        self._stack.close()
        self._stack = None

    def __enter__(self) -> "Session":
        return self.initialize()

    def __exit__(self, *exc) -> None:
        self.finalize()

    # ---- checkpoints --------------------------------------------------
    def _recipe_digest(self) -> str:
        return hashlib.sha256(self.recipe.to_yaml().encode()).hexdigest()[:16]

    def save(self, folder: str | Path) -> None:
        """Write masks (safetensors) and schedule position (JSON) into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        masks = {name: m.contiguous() for name, m in self.masks.state_dict().items()}
        save_file(masks, str(folder / MASKS_FILE))
        tensors = {f"{i}.{k}": v for i, m in enumerate(self.modifiers) for k, v in m.tensor_state().items()}
        save_file(tensors, str(folder / TENSORS_FILE))
        state = {"step": self.step, "steps_per_epoch": self.steps_per_epoch, "recipe": self._recipe_digest(),
                 "modifiers": [m.state_dict() for m in self.modifiers]}
        (folder / STATE_FILE).write_text(json.dumps(state, indent=1))

    def load(self, folder: str | Path) -> None:
        """Restore what :meth:`save` wrote (call after :meth:`initialize`)."""
        folder = Path(folder)
        if not (folder / STATE_FILE).is_file() or not (folder / MASKS_FILE).is_file():
            raise SparsecoreError("checkpoint has no sparsecore session state", str(folder),
                                  f"resume from a folder holding {STATE_FILE} and {MASKS_FILE}")
        state = json.loads((folder / STATE_FILE).read_text())
        if state["steps_per_epoch"] != self.steps_per_epoch:
            raise SparsecoreError(f"checkpoint has {state['steps_per_epoch']} steps per epoch, this run "
                                  f"{self.steps_per_epoch}", str(folder),
                                  "resume with the same data size, batch size and gradient accumulation")
        if state["recipe"] != self._recipe_digest():
            raise SparsecoreError("checkpoint was written with a different recipe", str(folder),
                                  "resume with the same --recipe and --recipe_args")
        self.initialize()
        params = dict(self.model.named_parameters())
        for name, pruned in load_file(str(folder / MASKS_FILE)).items():
            if name not in params:
                raise SparsecoreError(f"checkpoint mask for unknown parameter {name}", str(folder),
                                      "resume with the same model")
            self.masks.set(name, params[name], pruned)
        tensors = load_file(str(folder / TENSORS_FILE)) if (folder / TENSORS_FILE).is_file() else {}
        for i, (modifier, mstate) in enumerate(zip(self.modifiers, state["modifiers"])):
            modifier.load_state_dict(mstate)
            prefix = f"{i}."
            modifier.load_tensor_state({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
        self.step = state["step"]


def _labels(modifiers) -> list[str]:
    """A name per modifier for its logged values: the tag, numbered when a tag appears more than once."""
    tags = [m.tag or type(m).__name__ for m in modifiers]
    seen: dict[str, int] = {}
    out = []
    for tag in tags:
        seen[tag] = seen.get(tag, -1) + 1
        out.append(f"{tag}.{seen[tag]}" if tags.count(tag) > 1 else tag)
    return out


def apply_one_shot(recipe: Recipe, model: nn.Module, *, problem_type: str = "single_label_classification",
                   grad_sampler=None, forward_sampler=None) -> Session:
    """Apply every modifier at the recipe's last epoch without training (SparseML's one-shot); returns the
    finished session (``dropped_layers``, ``quantization``). OBS needs ``grad_sampler``, post-training
    quantization ``forward_sampler`` (see the module docstring)."""
    steps = 1000  # fine enough that fractional start/end epochs land on distinct steps
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # LR/weight-decay modifiers need one; never stepped
    with Session(recipe, model, optimizer, steps_per_epoch=steps, problem_type=problem_type,
                 grad_sampler=grad_sampler, forward_sampler=forward_sampler, one_shot=True) as session:
        session.batch_start(step=max(math.ceil((recipe.num_epochs or 1.0) * steps), recipe.num_steps or 0))
    return session
