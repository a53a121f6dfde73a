"""Two engines timed in turns, each in its own process: round 1 A then B, round 2 B then A, …

A slow phase of a shared machine (seconds to minutes long) then lands on both engines instead of on whichever
happened to run in it. Each engine runs in a child process that loads its model once and answers requests on
stdin/stdout (:func:`serve`); only one child runs at a time, the other blocks reading its stdin. No sparsecore
import here: the DeepSparse child (deepsparse_timing.py, in DeepSparse's own environment) uses this module too.

Protocol: the child prints ``ready`` after its warm-up; then for each line ``N`` it runs N timed calls and prints
``{"ms": [...]}``; ``info`` prints the child's extra JSON (may be ``{}``); ``quit`` (or end of input) ends it.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

PAUSE_S = 0.2  # between two engines' turns: the one that just ran lets its threads stop spinning


def serve(run_once: Callable[[], object], info: Callable[[], dict] = dict, stdin=None, stdout=None) -> None:
    """The child's loop (see the module docstring); ``run_once`` is one timed call."""
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    print("ready", file=stdout, flush=True)
    for line in stdin:
        request = line.strip()
        if request in ("", "quit"):
            break
        if request == "info":
            print(json.dumps(info()), file=stdout, flush=True)
            continue
        times = []
        for _ in range(int(request)):
            t = time.perf_counter()
            run_once()
            times.append((time.perf_counter() - t) * 1e3)
        print(json.dumps({"ms": times}), file=stdout, flush=True)


class Child:
    """One engine's serving process (``argv``: the command that ends in :func:`serve`)."""

    def __init__(self, argv: list[str], **popen) -> None:
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, **popen)
        self._expect("ready")

    def _line(self) -> str:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.proc.args[:3]}… ended (exit code {self.proc.wait()}) before answering")
        return line.strip()

    def _expect(self, word: str) -> None:
        while self._line() != word:  # libraries may print their own lines first
            pass

    def ask(self, request: str) -> dict:
        self.proc.stdin.write(request + "\n")
        self.proc.stdin.flush()
        while not (line := self._line()).startswith("{"):
            pass
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


def alternate(children: dict[str, Child], rounds: int, iters: int) -> dict[str, dict]:
    """``rounds`` turns of ``iters`` timed calls per engine, the order rotating each round. Per engine: ``ms``
    (median of all its calls) and ``round_ms`` (each round's median)."""
    names = list(children)
    times: dict[str, list[list[float]]] = {n: [] for n in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            times[name].append(children[name].ask(str(iters))["ms"])
            time.sleep(PAUSE_S)
    return {n: {"ms": statistics.median([t for rnd in times[n] for t in rnd]),
                "round_ms": [statistics.median(rnd) for rnd in times[n]]} for n in names}


def round_ratios(result: dict[str, dict], numerator: str, denominator: str) -> list[float]:
    """Per round, ``numerator``'s median over ``denominator``'s (the two ran minutes apart at most)."""
    return [a / b for a, b in zip(result[numerator]["round_ms"], result[denominator]["round_ms"])]
