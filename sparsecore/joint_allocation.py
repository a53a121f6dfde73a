"""Per-layer sparsities searched with every layer pruned at once, not read off single-layer curves.

Single-layer sensitivity curves do not add up: pruning layer i changes what layer j's pruning costs, and at
high sparsity the sum of single-layer losses says little about the joint loss (measured on MiniLM: curve-only
allocations lost 1-8 points to uniform one-shot). :func:`search` starts from an allocation (uniform, or the
curve allocation) and moves sparsity between pairs of layers, keeping a move only when ``joint_loss`` — the
loss with all layers pruned to the candidate allocation, on rows the caller holds out — goes down:

  each round: rank layers by the slope of their single-layer curve at their current sparsity; the ``pairs``
  steepest (givers) and flattest (takers) form ``pairs²`` candidate moves of ``step·min(nᵢ, nⱼ)`` weights
  (giver down, taker up: Σ nᵢ·sᵢ unchanged); evaluate them all, take the best if it beats the current loss,
  else halve ``step``; stop after ``rounds`` rounds or when ``step`` < ``min_step``.

Every allocation stays within [lo, hi] per layer. Cost: ``rounds·pairs²`` joint evaluations.
"""

from __future__ import annotations

from collections.abc import Callable

from tqdm import tqdm


def search(start: dict[str, float], numels: dict[str, int], joint_loss: Callable[[dict[str, float]], float],
           slope: Callable[[str, float], float], rounds: int, lo: float, hi: float, step: float = 0.05,
           pairs: int = 3, min_step: float = 0.0125) -> tuple[dict[str, float], list[dict]]:
    """(allocation, history): the best allocation found and one entry per round (loss, move, step)."""
    current = dict(start)
    best = joint_loss(current)
    history = [{"round": 0, "loss": best, "move": None, "step": step}]
    bar = tqdm(range(1, rounds + 1), desc="joint search", unit="round")
    for r in bar:
        bar.set_postfix(loss=f"{best:.4f}")
        if step < min_step:
            break
        order = sorted(current, key=lambda n: (slope(n, current[n]), n))
        takers = [n for n in order if current[n] < hi - 1e-9][:pairs]
        givers = [n for n in reversed(order) if current[n] > lo + 1e-9][:pairs]
        trials = []
        for g in givers:
            for t in takers:
                if g == t:
                    continue
                moved = min(step * min(numels[g], numels[t]), (current[g] - lo) * numels[g],
                            (hi - current[t]) * numels[t])
                if moved <= 0:
                    continue
                cand = dict(current)
                cand[g] -= moved / numels[g]
                cand[t] += moved / numels[t]
                trials.append((joint_loss(cand), g, t, cand))
        if not trials:
            break
        loss, g, t, cand = min(trials, key=lambda x: x[0])
        if loss < best:
            current, best = cand, loss
            history.append({"round": r, "loss": loss, "move": [g, t], "step": step})
        else:
            step /= 2
            history.append({"round": r, "loss": best, "move": None, "step": step})
    bar.close()
    return current, history
