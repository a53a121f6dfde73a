"""benchmarks/alternated_timing.py: engines in serving child processes, timed in rotating turns."""

import sys
import textwrap
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from alternated_timing import Child, alternate, round_ratios  # noqa: E402

CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {bench!r})
    from alternated_timing import serve
    print("a library's own line before ready", flush=True)
    calls = []
    def once():
        calls.append(1)
        with open({log!r}, "a") as f:
            f.write({name!r} + "\\n")
        time.sleep({sleep})
    serve(once, info=lambda: {{"calls": len(calls)}})
""")


def child(tmp_path, name: str, sleep: float) -> Child:
    script = tmp_path / f"{name}.py"
    script.write_text(CHILD.format(bench=str(BENCHMARKS), log=str(tmp_path / "order.log"), name=name, sleep=sleep))
    return Child([sys.executable, str(script)])


def test_turns_rotate_and_each_engine_reports_its_own_times(tmp_path):
    children = {"slow": child(tmp_path, "slow", 0.02), "fast": child(tmp_path, "fast", 0.002)}
    try:
        result = alternate(children, rounds=3, iters=2)
        assert children["slow"].ask("info") == {"calls": 6} and children["fast"].ask("info") == {"calls": 6}
    finally:
        for c in children.values():
            c.close()
    order = (tmp_path / "order.log").read_text().split()
    assert order == ["slow"] * 2 + ["fast"] * 4 + ["slow"] * 4 + ["fast"] * 2  # A B | B A | A B
    assert len(result["slow"]["round_ms"]) == 3 and result["slow"]["ms"] >= 20 > result["fast"]["ms"]
    assert all(r < 0.5 for r in round_ratios(result, "fast", "slow"))
    assert all(c.proc.returncode == 0 for c in children.values())


def test_a_child_that_dies_is_an_error_naming_it(tmp_path):
    script = tmp_path / "broken.py"
    script.write_text("raise SystemExit(3)\n")
    with pytest.raises(RuntimeError, match=r"exit code 3\) before answering"):
        Child([sys.executable, str(script)])
