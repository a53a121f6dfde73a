"""sparsecore.benchmark: deepsparse.benchmark's flags and JSON keys, on our engine, ONNX Runtime and DeepSparse."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sparsecore.cli.benchmark import main

KEYS = {"items_per_sec", "seconds_ran", "iterations", "median", "mean", "std", "25.0%", "50.0%", "75.0%", "90.0%",
        "95.0%", "99.0%", "99.9%", "scenario"}


def bench(*argv, script=False):
    command = [str(Path(sys.executable).with_name("sparsecore.benchmark"))] if script else [
        sys.executable, "-m", "sparsecore.benchmark"]
    done = subprocess.run([*command, *map(str, argv)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_engine_mode_as_deepsparse_users_type_it(tiny_deployment, tmp_path):
    """A command from DeepSparse's benchmark docs with the one word changed: -b, -s async, -nstreams, -t, -w, -x."""
    out = tmp_path / "results.json"
    text = bench(tiny_deployment / "model.onnx", "-b", 4, "-shapes", "[4,32]", "-s", "async", "-nstreams", 2,
                 "-ncores", 2, "-t", 1, "-w", 0.2, "-x", out, script=True)
    for line in ("Batch Size: 4", "Sequence Length: 32", "Scenario: async", "Throughput (items/sec):",
                 "Latency Median (ms/batch):", "Iterations:"):
        assert line in text
    r = json.loads(out.read_text())
    assert r["batch_size"] == 4 and r["num_streams"] == 2 and r["scheduler"] == "multistream"
    assert KEYS <= set(r["benchmark_result"]) and r["benchmark_result"]["items_per_sec"] > 0
    assert r["benchmark_result"]["iterations"] >= 2 and r["fraction_of_supported_ops"] == 1.0
    assert r["sparsecore"]["threads_per_stream"] == 1 and r["sparsecore"]["linear_formats"]
    assert r["input_shapes"] == [[4, 32]] * 3


def test_pipeline_mode_and_compare(tiny_deployment, tmp_path):
    data = tmp_path / "texts.txt"
    data.write_text("a gripping film\na dull mess\nfine\nmoving and sad\n")
    out = tmp_path / "compare.json"
    text = bench(tiny_deployment, "--pipeline", "--data", data, "-b", 2, "-t", 0.6, "-w", 0.1,
                 "--compare", "sparsecore,onnxruntime", "-x", out)
    assert "items/s ÷ first" in text and "onnxruntime" in text and "pipeline mode" in text
    runs = json.loads(out.read_text())["compare"]
    assert [r["sparsecore"]["engine_name"] for r in runs] == ["sparsecore", "onnxruntime"]
    assert all(r["sparsecore"]["mode"] == "pipeline" and r["benchmark_result"]["items_per_sec"] > 0 for r in runs)


def test_deepsparse_engine_runs_in_its_environment(tiny_deployment, tmp_path):
    from sparsecore.cli.deepsparse_env import DEFAULT, works

    if not works(DEFAULT):
        pytest.skip(f"no DeepSparse environment at {DEFAULT} (python -m sparsecore.cli.deepsparse_env builds it)")
    out = tmp_path / "ds.json"
    bench(tiny_deployment, "-e", "deepsparse", "-b", 2, "-seq_len", 16, "-t", 1, "-w", 0.2, "-q", "-x", out)
    r = json.loads(out.read_text())
    assert r["version"].startswith("1.8") and KEYS <= set(r["benchmark_result"])
    assert r["benchmark_result"]["items_per_sec"] > 0 and r["input_shapes"] == [[2, 16]] * 3


@pytest.mark.parametrize("argv, pattern", [
    (["-b", "0"], "batch size 0 is below 1"),
    (["-shapes", "[1,x]"], "cannot read -shapes"),
    (["-shapes", "[2,16]", "-b", "4"], "-shapes batch 2 differs from -b 4"),
    (["-seq_len", "100000"], "sequence length 100000 is outside"),
    (["-ncores", "100000"], "--num_cores 100000 is outside"),
    (["-t", "0"], "--time must be > 0"),
    (["--data", "x.txt"], "--data is read in --pipeline mode only"),
    (["--compare", "sparsecore"], "name at least two engines"),
    (["--compare", "sparsecore,tensorrt"], "unknown engine 'tensorrt'"),
    (["-e", "tensorrt"], "invalid choice"),
])
def test_bad_flags_are_one_line_exit_2(tiny_deployment, argv, pattern, capsys):
    with pytest.raises(SystemExit) as exc:
        main([str(tiny_deployment), *argv])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1 and pattern in err, err


def test_missing_model_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / "nowhere")])
    assert exc.value.code == 2 and "model path does not exist" in capsys.readouterr().err
