"""The long fuzz run: the properties of tests/fuzz, each for its share of ``--minutes``, in this one process.

    python benchmarks/fuzz_long.py --minutes 20

Every target (a test of tests/fuzz: recipe text, structure, eval, args, selectors, aliases; one per data format)
runs in rounds of ``--chunk`` hypothesis examples with fresh random seeds (no example database), round-robin,
until its time share is spent. A property failure (an exception other than ``SparsecoreError``, a one-line
violation, a hang) is recorded once per exception type and innermost source line, with hypothesis' shrunk
example, and the run goes on. Prints a table and writes ``benchmarks/results/fuzz_long.json``: inputs tried,
refused (``SparsecoreError``) and failures per target, seconds, the CPU model and the date. One thread (torch,
Numba and BLAS are pinned to one): it never uses more than one core.
"""

from __future__ import annotations

import argparse
import datetime
import faulthandler
import json
import logging
import os
import platform
import sys
import time
import traceback
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ[var] = "1"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "unknown")
    except OSError:
        return platform.processor() or "unknown"


def _signature(exc: BaseException) -> tuple[str, str, str]:
    """(exception type, innermost frame under src/ or tests/, first line of its message)."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/src/sparsecore/" in f.filename or "/tests/fuzz/" in f.filename] or frames
    where = f"{Path(ours[-1].filename).relative_to(ROOT) if ours else '?'}:{ours[-1].lineno if ours else 0}"
    text = (str(exc).strip().splitlines() or [""])[0][:300]
    return type(exc).__name__, where, text


def _flatten(exc: BaseException) -> list[BaseException]:
    """The exceptions inside an exception group (hypothesis reports several distinct bugs as one), or ``[exc]``."""
    inner = getattr(exc, "exceptions", None)
    return [e for sub in inner for e in _flatten(sub)] if isinstance(inner, (list, tuple)) else [exc]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="total time over all targets (default 3)")
    parser.add_argument("--chunk", type=int, default=50, help="hypothesis examples per round of a target")
    parser.add_argument("--no_shrink", action="store_true",
                        help="report failures as found (hypothesis may shrink one for up to 5 minutes)")
    parser.add_argument("--only", default="", help="comma-separated target names (default: all)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "fuzz_long.json"))
    parser.add_argument("--examples", default="", help="a folder for each failure's whole example (the JSON keeps "
                        "its first 4,000 characters)")
    args = parser.parse_args(argv)

    os.environ["SPARSECORE_FUZZ_EXAMPLES"] = str(args.chunk * 3)  # the slow targets take a third of it
    os.environ["SPARSECORE_FUZZ_DATABASE"] = "none"  # fresh inputs every round, nothing replayed or saved
    os.environ["SPARSECORE_FUZZ_SHRINK"] = "0" if args.no_shrink else "1"
    sys.path[:0] = [str(ROOT / "tests" / "fuzz"), str(ROOT / "tests")]
    faulthandler.enable()
    logging.getLogger("sparsecore").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")
    import datasets
    import torch

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    torch.set_num_threads(1)
    import tempfile

    import test_fuzz_data_files as data_tests
    import test_fuzz_deployments as deployment_tests
    import test_fuzz_recipes as recipe_tests

    from sparsecore import selectors

    selectors.MATCH_SECONDS = recipe_tests.MATCH_SECONDS  # as in the short run (a module fixture there)
    targets = {
        "recipe-text": recipe_tests.test_mutated_recipe_text,
        "recipe-structure": recipe_tests.test_mutated_recipe_structure,
        "recipe-eval": recipe_tests.test_eval_expressions,
        "recipe-args": recipe_tests.test_recipe_args,
        "recipe-selectors": recipe_tests.test_selectors,
        "recipe-aliases": recipe_tests.test_alias_bombs_are_refused_quickly,
        **{f"data-{fmt}": (lambda fmt=fmt: data_tests.test_data_files(fmt=fmt)) for fmt in data_tests.FORMATS},
        "deployment-folders": lambda: deployment_tests.test_damaged_deployment_folders(sources=sources()),
    }
    built: dict = {}

    def sources() -> dict:  # the deployments to damage, built on first use
        if not built:
            built.update(deployment_tests.make_sources(Path(tempfile.mkdtemp(prefix="sparsecore-fuzz-"))))
        return built

    if args.only:
        targets = {k: v for k, v in targets.items() if k in args.only.split(",")}
    share = args.minutes * 60 / len(targets)
    spent = {name: 0.0 for name in targets}
    rounds = {name: 0 for name in targets}
    failures: dict[tuple, dict] = {}
    started = time.time()
    print(f"fuzzing {len(targets)} targets for {args.minutes:g} min ({share:.0f} s each), {cpu_model()}", flush=True)
    while any(spent[name] < share for name in targets):
        for name, test in targets.items():
            if spent[name] >= share:
                continue
            t0 = time.time()
            try:
                test()
            except Exception as exc:  # noqa: BLE001 - a property failed: record it and go on
                for e in _flatten(exc):
                    key = (name, *_signature(e)[:2])
                    example = "\n".join(getattr(e, "__notes__", []))
                    entry = failures.setdefault(key, {"target": name, "type": key[1], "where": key[2],
                                                      "message": _signature(e)[2], "count": 0,
                                                      "example": example[:4000]})
                    entry["count"] += 1
                    if args.examples and entry["count"] == 1:
                        Path(args.examples).mkdir(parents=True, exist_ok=True)
                        (Path(args.examples) / f"{len(failures)}-{name}.txt").write_text(
                            f"{key[1]} at {key[2]}: {entry['message']}\n{example}\n")
                    print(f"FAILURE {name}: {key[1]} at {key[2]}: {entry['message'][:160]}", flush=True)
            spent[name] += time.time() - t0
            rounds[name] += 1
        _write(args.out, targets, spent, rounds, failures, started)
    table = _write(args.out, targets, spent, rounds, failures, started)
    print(f"{'target':<18}{'inputs':>9}{'refused':>9}{'failures':>10}{'seconds':>9}")
    for row in table["targets"]:
        print(f"{row['target']:<18}{row['inputs']:>9}{row['refused']:>9}{row['failures']:>10}{row['seconds']:>9.0f}")
    print(f"{'total':<18}{table['inputs']:>9}{table['refused']:>9}{len(failures):>10}{table['seconds']:>9.0f}")
    for f in failures.values():
        print(f"- {f['target']}: {f['type']} at {f['where']} ({f['count']}x): {f['message'][:200]}")
    print(f"wrote {args.out}")
    return 1 if failures else 0


def _write(out: str, targets, spent, rounds, failures, started) -> dict:
    import fuzz_support

    rows = [{"target": name, "inputs": fuzz_support.TRIED[name], "refused": fuzz_support.REFUSED[name],
             "failures": sum(1 for f in failures.values() if f["target"] == name), "rounds": rounds[name],
             "seconds": round(spent[name], 1)} for name in targets]
    table = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "cpu": cpu_model(),
             "python": platform.python_version(), "threads": 1, "seconds": round(time.time() - started, 1),
             "inputs": sum(r["inputs"] for r in rows), "refused": sum(r["refused"] for r in rows),
             "targets": rows, "failures": list(failures.values())}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(table, indent=1) + "\n")
    return table


if __name__ == "__main__":
    raise SystemExit(main())
