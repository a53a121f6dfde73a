"""sparsecore: prune, distil and deploy transformer text classifiers on CPUs.

The engine (this package minus ``adapters``; ``cli`` and ``kernels`` install under it) builds on
torch, numpy and Numba, with onnx / onnxruntime / tokenizers for export and deployment — it never
imports Hugging Face ``transformers``.
"""

from sparsecore.deploy import Pipeline
from sparsecore.errors import SparsecoreError
from sparsecore.recipe import Recipe, load_recipe
from sparsecore.session import Session

__version__ = "0.1.0"
__all__ = ["Pipeline", "Recipe", "Session", "SparsecoreError", "load_recipe", "__version__"]
