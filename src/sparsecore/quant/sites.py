"""Which modules get quantized: selection by kind, ``submodules``, ``exclude_module_types`` and ``ignore``.

Kinds: ``linear`` (``nn.Linear``: input activations + weights [+ outputs]), ``embedding``
(``nn.Embedding`` weights) and ``matmul`` (modules that declare activation×activation products in
``sparsecore_matmuls``, e.g. BERT self-attention after :func:`sparsecore.adapters.quant_attention.quantizable_attention`:
both inputs of QKᵀ and of attn·V). Every name the recipe gives must exist (a typo is an error, not a no-op).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from sparsecore.errors import SparsecoreError
from sparsecore.selectors import NEVER_RUN_ATTR, match_names

MATMULS_ATTR = "sparsecore_matmuls"  # a module's tuple of matmul names it runs through sparsecore_matmul_quant


@dataclass(frozen=True)
class Site:
    name: str  # module name in model.named_modules()
    kind: str  # linear | embedding | matmul
    matmuls: tuple[str, ...] = ()


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    """``name`` is one of ``prefixes`` or inside one of them (``""`` is the whole model)."""
    return any(p == "" or name == p or name.startswith(p + ".") for p in prefixes)


def _kind(module: nn.Module, embeddings: bool) -> str | None:
    if getattr(module, NEVER_RUN_ATTR, False):  # its observers would never see a value
        return None
    if isinstance(module, nn.Linear):
        return "linear"
    if embeddings and isinstance(module, nn.Embedding):
        return "embedding"
    if getattr(module, MATMULS_ATTR, None):
        return "matmul"
    return None


def select_sites(model: nn.Module, *, submodules: tuple[str, ...] | None, exclude_types: tuple[str, ...] | None,
                 ignore: tuple[str, ...] | None, embeddings: bool, where: str, strict: bool = True) -> list[Site]:
    """The quantization sites of ``model``, in module order; every recipe name is checked.

    ``strict=False`` (the modifier's ``strict: false``): ``ignore`` entries that match nothing are skipped.
    """
    modules = dict(model.named_modules())
    type_names = {type(m).__name__ for m in modules.values()}
    for sub in submodules or ():
        if sub not in modules:
            top = sorted({n.split(".")[0] for n in modules if n})
            raise SparsecoreError(f"submodule {sub!r} does not exist in the model", f"{where}.submodules",
                                  f"use module names such as {', '.join(top[:6])}")
    for t in exclude_types or ():
        if t not in type_names:
            raise SparsecoreError(f"module type {t!r} does not occur in the model", f"{where}.exclude_module_types",
                                  f"use class names of its modules, e.g. {', '.join(sorted(type_names)[:8])}")
    ignored: set[str] = set()
    for entry in ignore or ():
        hits = _match(entry, modules, f"{where}.ignore")
        if not hits and strict:
            raise SparsecoreError(f"ignore entry {entry!r} matches no module", f"{where}.ignore",
                                  "use a module name, a class name (e.g. Embedding) or re:<regex> over module names")
        ignored |= hits
    sites = []
    for name, module in modules.items():
        kind = _kind(module, embeddings)
        if kind is None or _within(name, tuple(ignored)) or type(module).__name__ in (exclude_types or ()):
            continue
        if submodules is not None and not _within(name, submodules):
            continue
        sites.append(Site(name, kind, tuple(getattr(module, MATMULS_ATTR, ())) if kind == "matmul" else ()))
    if not sites:
        raise SparsecoreError("no module left to quantize", where,
                              "widen submodules or shorten exclude_module_types / ignore")
    return sites


def _match(entry: str, modules: dict[str, nn.Module], where: str) -> set[str]:
    """A module name or ``re:<regex>`` (the recipe selector rule), else a class name."""
    return match_names(entry, modules, where) or {n for n, m in modules.items() if type(m).__name__ == entry}
