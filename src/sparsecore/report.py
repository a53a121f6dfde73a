"""Sparsity report: per-parameter zero counts as JSON and a PNG bar chart."""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from sparsecore.selectors import ALL_PRUNABLE, resolve_params


def sparsity_table(model: nn.Module, selectors: tuple[str, ...] = (ALL_PRUNABLE,)) -> dict:
    """``{"params": [{name, shape, numel, zeros, sparsity}], "total": {...}}`` for the selected weights."""
    rows = []
    for name, param in resolve_params(model, selectors, "sparsity report"):
        zeros = int((param.detach() == 0).sum())
        rows.append({"name": name, "shape": list(param.shape), "numel": param.numel(), "zeros": zeros,
                     "sparsity": zeros / max(1, param.numel())})
    numel = sum(r["numel"] for r in rows)
    zeros = sum(r["zeros"] for r in rows)
    return {"selectors": list(selectors), "params": rows,
            "total": {"numel": numel, "zeros": zeros, "sparsity": zeros / max(1, numel)}}


def write_sparsity_report(model: nn.Module, folder: str | Path, selectors: tuple[str, ...] = (ALL_PRUNABLE,),
                          title: str = "Sparsity per layer") -> dict:
    """Write ``sparsity_report.json`` and ``sparsity_report.png`` into ``folder``; return the table."""
    folder = Path(folder)
    table = sparsity_table(model, selectors)
    (folder / "sparsity_report.json").write_text(json.dumps(table, indent=1))
    plot_sparsity(table, folder / "sparsity_report.png", title)
    return table


def plot_sparsity(table: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = table["params"]
    names = [r["name"].removesuffix(".weight") for r in rows]
    values = [100.0 * r["sparsity"] for r in rows]
    fig, ax = plt.subplots(figsize=(9, 0.22 * len(rows) + 1.4))
    ax.barh(range(len(rows)), values, color="#3b7dd8")
    ax.set_yticks(range(len(rows)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("sparsity (% of weights exactly zero)")
    ax.axvline(100.0 * table["total"]["sparsity"], color="#d84a3b", ls="--",
               label=f"overall {100.0 * table['total']['sparsity']:.1f}%")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_sensitivity(result, path: Path, title: str) -> None:
    """Heat map per method: layers (rows) × sparsity (columns), colour = validation loss increase."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    methods = list(result.results)
    short = [_short(n) for n in result.layers]
    fig, axes = plt.subplots(1, len(methods), figsize=(4.5 * len(methods) + 1.5, 0.22 * len(short) + 2),
                             squeeze=False)
    grids = [np.array([result.increase(m)[n] for n in result.layers]) for m in methods]
    top = max(float(np.nanmax(g)) for g in grids)
    for ax, method, grid in zip(axes[0], methods, grids):
        image = ax.imshow(grid, aspect="auto", cmap="magma_r", vmin=0.0, vmax=max(top, 1e-6))
        ax.set_xticks(range(len(result.sparsities)), [f"{s:g}" for s in result.sparsities])
        ax.set_yticks(range(len(short)), short if ax is axes[0][0] else [""] * len(short), fontsize=6)
        ax.set_xlabel("sparsity of this layer alone")
        ax.set_title(f"{method}: loss increase (baseline {result.baseline['loss']:.3f})", fontsize=9)
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8)
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _short(name: str) -> str:
    """``bert.encoder.layer.3.attention.output.dense.weight`` → ``bert.L3.attn_out`` (axis labels)."""
    for long, brief in ((".weight", ""), ("encoder.layer.", "L"), ("attention.self.", ""),
                        ("attention.output.dense", "attn_out"), ("intermediate.dense", "ffn_in"),
                        ("output.dense", "ffn_out")):
        name = name.replace(long, brief)
    return name
