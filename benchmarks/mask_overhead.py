"""Mask overhead of a MiniLM training step (goal: <= 5% of a dense step).

Same model, same batch, same AdamW, measured side by side in one process,
alternating dense and masked steps so machine noise hits both alike:
  dense  — plain forward/backward/AdamW step
  masked — the same step with 80% masks on all 36 encoder Linear weights,
           enforced by sparsecore's optimizer hooks (grad masking + weight re-zeroing)
Also times the mask work alone (MaskSet.mask_grads + apply).

    python benchmarks/mask_overhead.py [--batch 32] [--seq 128] [--steps 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from sparsecore.adapters.models import load_classifier, minilm_path
from sparsecore.families import BERT
from sparsecore.pruning.apply import prune_layerwise
from sparsecore.pruning.masks import MaskSet
from sparsecore.pruning.structure import parse_mask_type
from sparsecore.selectors import resolve_params


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    torch.manual_seed(0)
    model = load_classifier(str(minilm_path()), "single_label_classification", ["neg", "pos"])
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.01)
    ids = torch.randint(1000, 30000, (args.batch, args.seq))
    labels = torch.randint(0, 2, (args.batch,))
    masks = MaskSet()
    prune_layerwise(resolve_params(model, BERT.encoder_linears, "bench"), [0.8] * 36, masks,
                    parse_mask_type("unstructured", "bench"))

    def step() -> float:
        t = time.perf_counter()
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        return time.perf_counter() - t

    for _ in range(3):
        step()  # warm-up
    dense, masked, mask_only = [], [], []
    for _ in range(args.steps):
        dense.append(step())
        with masks.enforced(opt):
            masked.append(step())
        t = time.perf_counter()
        masks.mask_grads()
        masks.apply()
        mask_only.append(time.perf_counter() - t)
    d, m, o = (statistics.median(x) * 1e3 for x in (dense, masked, mask_only))
    print(f"MiniLM-L6 training step, batch {args.batch} × seq {args.seq}, {torch.get_num_threads()} threads, "
          f"{args.steps} alternating steps (medians)")
    print("| step | median ms | vs dense |")
    print("|---|---:|---:|")
    print(f"| dense | {d:.1f} | 1.000 |")
    print(f"| masked (80%, 36 layers, hooks on) | {m:.1f} | {m / d:.3f} |")
    print(f"| mask work alone (grads + weights) | {o:.2f} | {o / d:.4f} |")


if __name__ == "__main__":
    main()
