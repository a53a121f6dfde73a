"""Per-layer sparsities searched with every layer pruned at once, not read off single-layer curves.

Single-layer sensitivity curves do not add up: pruning layer i changes what layer j's pruning costs, and at
high sparsity the sum of single-layer losses says little about the joint loss, so an allocation read off the
curves alone can do worse than uniform sparsity. :func:`search` starts from an allocation (uniform, or the
curve allocation) and moves sparsity between *units* — single layers, and the caller's groups of layers (e.g.
a block, or one role in every block) — keeping a move only when ``joint_loss`` (the loss with all layers
pruned to the candidate allocation, on rows the caller holds out) goes down:

  each round, within each pool (single layers; groups): rank the units by the numel-weighted slope of their
  layers' single-layer curves at their current sparsities; the ``pairs`` steepest (givers) and flattest
  (takers) form up to ``pairs²`` candidate moves of ``step·min(N_giver, N_taker)`` weights (every layer of
  the giver down by the same sparsity, every layer of the taker up: Σ nᵢ·sᵢ unchanged; units that share a
  layer are not paired); evaluate them all, take the best if it beats the current loss, else halve ``step``;
  stop after ``rounds`` rounds or when ``step`` < ``min_step``.

Every layer stays within [lo, hi]. Cost: up to ``rounds · pools · pairs²`` joint evaluations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tqdm import tqdm

Unit = tuple[str, ...]  # the layers moved together


def search(start: dict[str, float], numels: dict[str, int], joint_loss: Callable[[dict[str, float]], float],
           slope: Callable[[str, float], float], rounds: int, lo: float, hi: float, step: float = 0.05,
           pairs: int = 3, min_step: float = 0.0125, groups: Sequence[Sequence[str]] = ()
           ) -> tuple[dict[str, float], list[dict]]:
    """(allocation, history): the best allocation found and one entry per round (loss, move, step)."""
    current = dict(start)
    best = joint_loss(current)
    history = [{"round": 0, "loss": best, "move": None, "step": step}]
    pools = [[(n,) for n in current]] + ([[tuple(g) for g in groups]] if groups else [])
    bar = tqdm(range(1, rounds + 1), desc="joint search", unit="round")
    for r in bar:
        bar.set_postfix(loss=f"{best:.4f}")
        if step < min_step:
            break
        trials = [(joint_loss(cand), g, t, cand) for pool in pools
                  for g, t, cand in _moves(pool, current, numels, slope, lo, hi, step, pairs)]
        if not trials:
            break
        loss, g, t, cand = min(trials, key=lambda x: x[0])
        if loss < best:
            current, best = cand, loss
            history.append({"round": r, "loss": loss, "move": [list(g), list(t)], "step": step})
        else:
            step /= 2
            history.append({"round": r, "loss": best, "move": None, "step": step})
    bar.close()
    return current, history


def _moves(pool: list[Unit], current: dict[str, float], numels: dict[str, int], slope, lo: float, hi: float,
           step: float, pairs: int):
    """(giver, taker, candidate allocation) for the steepest × flattest units of ``pool``."""
    def unit_slope(u: Unit) -> float:
        total = sum(numels[n] for n in u)
        return sum(slope(n, current[n]) * numels[n] for n in u) / total

    order = sorted(pool, key=lambda u: (unit_slope(u), u))
    takers = [u for u in order if all(current[n] < hi - 1e-9 for n in u)][:pairs]
    givers = [u for u in reversed(order) if all(current[n] > lo + 1e-9 for n in u)][:pairs]
    for g in givers:
        for t in takers:
            if set(g) & set(t):
                continue
            n_g, n_t = sum(numels[n] for n in g), sum(numels[n] for n in t)
            room = min(min(current[n] - lo for n in g) * n_g, min(hi - current[n] for n in t) * n_t)
            moved = min(step * min(n_g, n_t), room)
            if moved <= 0:
                continue
            cand = dict(current)
            for n in g:
                cand[n] -= moved / n_g
            for n in t:
                cand[n] += moved / n_t
            yield g, t, cand
