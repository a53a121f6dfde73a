"""SparseML quantization-aware-training checkpoints, read as the float model they train.

SparseML's QuantizationModifier (1.x) wrapped quantized modules in torch's ``QuantWrapper`` and attached
``FakeQuantize`` observers, so a QAT model saved mid-training (SparseZoo's ``…_quant`` ``training/`` folders)
holds ``<module>.module.weight`` instead of ``<module>.weight``, plus observer state: ``weight_fake_quant.*``,
``activation_post_process.*``, ``fake_quant_enabled``, ``observer_enabled``. The weights themselves are the fp32
master weights QAT updates. Reading such a checkpoint drops the observer entries and unwraps ``.module.``; the
result is the float model, to be quantized again (``--recipe transfer-quant`` or a ``QuantizationModifier``).
"""

from __future__ import annotations

import json
from pathlib import Path

OBSERVER_PARTS = {"weight_fake_quant", "activation_post_process", "fake_quant_enabled", "observer_enabled"}


def _weight_files(folder: Path) -> list[Path]:
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (folder / index).is_file():
            weight_map = json.loads((folder / index).read_text(encoding="utf-8")).get("weight_map") or {}
            return [folder / name for name in sorted(set(weight_map.values()))]
    return [folder / name for name in ("model.safetensors", "pytorch_model.bin") if (folder / name).is_file()][:1]


def _load(path: Path) -> dict:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    import torch

    return torch.load(str(path), map_location="cpu", weights_only=True)


def _keys(path: Path) -> list[str]:
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            return list(f.keys())
    import torch

    try:  # memory-mapped: the names without reading the tensors
        return list(torch.load(str(path), map_location="cpu", weights_only=True, mmap=True))
    except RuntimeError:  # a legacy (non-zip) torch file cannot be mapped
        return list(_load(path))


def is_qat_checkpoint(folder: Path) -> bool:
    """True when the folder's weights carry SparseML/torch fake-quant observer state."""
    return any(OBSERVER_PARTS & set(key.split(".")) for path in _weight_files(folder) for key in _keys(path))


def float_state_dict(folder: Path) -> tuple[dict, int]:
    """The checkpoint's float weights (observer entries dropped, ``QuantWrapper``'s ``.module.`` unwrapped) and how
    many observer entries were dropped."""
    state, dropped = {}, 0
    for path in _weight_files(folder):
        for key, tensor in _load(path).items():
            parts = key.split(".")
            if OBSERVER_PARTS & set(parts):
                dropped += 1
                continue
            state[".".join(p for p in parts if p != "module")] = tensor
    return state, dropped
