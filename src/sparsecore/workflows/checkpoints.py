"""Whether a training checkpoint can be resumed: every file a resume reads is there and complete."""

from __future__ import annotations

from pathlib import Path

from sparsecore.errors import SparsecoreError
from sparsecore.file_checks import check_safetensors, check_torch_file, check_weights, read_json
from sparsecore.session import MASKS_FILE, STATE_FILE, TENSORS_FILE

CHECKPOINT_TENSORS = ("optimizer.pt", "scheduler.pt", "rng_state.pth")  # what the HF Trainer loads on resume


def checkpoint_problem(folder: Path, with_session: bool) -> str | None:
    """Why ``folder`` cannot be resumed from (one line), or None when every file a resume reads is complete.
    ``with_session``: the run has a recipe, so the session state (written after the Trainer's files) must be
    there too — a run killed between the two leaves a checkpoint that looks complete to the Trainer."""
    where = str(folder)
    for name in ("trainer_state.json", *((STATE_FILE, MASKS_FILE) if with_session else ())):
        if not (folder / name).is_file():
            return f"{name} is missing"
    try:
        for name in ("trainer_state.json", STATE_FILE):
            if (folder / name).is_file():
                read_json(folder / name, where, "")
        check_weights(folder, where)
        for name in (MASKS_FILE, TENSORS_FILE):
            if (folder / name).is_file():
                check_safetensors(folder / name, where, "")
        for name in CHECKPOINT_TENSORS:
            if (folder / name).is_file():
                check_torch_file(folder / name, where)
    except SparsecoreError as exc:
        return exc.what
    return None
