"""sparsecore: prune, distil and deploy transformer text classifiers on CPUs.

The package's names load on first use, so ``from sparsecore import Pipeline`` loads only the runtime
(:mod:`sparsecore.deploy`: numpy, onnx, onnxruntime, tokenizers, Numba — no torch, no transformers), while
``from sparsecore import Session`` loads the training engine (torch). Layers, lowest first:
``kernels`` ← ``pruning``/``quant`` ← ``modifiers`` ← ``recipe`` ← ``session`` ← ``adapters`` ← ``workflows``
← ``cli`` ← ``transformers`` (the SparseML-named entry points); ``deploy`` stands beside the training stack on
``kernels``, ``onnx_graph`` and ``folders``, and ``export`` sits above both.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_NAMES = {  # public name → the module that defines it
    "Pipeline": "sparsecore.deploy",
    "SparsecoreError": "sparsecore.errors",
    "Recipe": "sparsecore.recipe",
    "load_recipe": "sparsecore.recipe",
    "Session": "sparsecore.session",
    "train": "sparsecore.workflows",
    "oneshot": "sparsecore.workflows",
    "export": "sparsecore.workflows",
}
__all__ = [*sorted(_NAMES), "__version__"]


def __getattr__(name: str):
    if name not in _NAMES:
        raise AttributeError(f"module 'sparsecore' has no attribute {name!r}")
    value = getattr(importlib.import_module(_NAMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_NAMES))
