"""``sparsecore-demo`` flags: bad values are one error line, exit 2, before anything is written."""

from __future__ import annotations

import pytest

from sparsecore.cli.demo import format_summary, main


@pytest.mark.parametrize("argv, says", [
    (["--max_train_samples", "5000"], "--max_train_samples 5000 is outside the bundled sample"),
    (["--max_train_samples", "0"], "--max_train_samples 0 is outside the bundled sample"),
    (["--dense_epochs", "0"], "--dense_epochs 0.0 is not a positive number of epochs"),
    (["--prune_epochs", "-1"], "--prune_epochs -1.0 is not a positive number of epochs"),
    (["--prune_epochs", "two"], "argument --prune_epochs: invalid float value: 'two'"),
])
def test_bad_flags(run_main, tmp_path, argv, says):
    out = tmp_path / "demo"
    code, stdout, stderr = run_main(main, "--output_dir", out, *argv)
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1 and says in lines[0], stderr
    assert not out.exists()


def test_summary_names_the_speedup():
    text = format_summary({"model": "m", "task": "t", "train_samples": 2000, "eval_samples": 872,
                           "encoder_sparsity": 0.8, "dense_accuracy": 0.805, "pruned_accuracy": 0.80,
                           "engine_rows": 256, "engine_dense_s": 10.0, "engine_pruned_s": 5.0,
                           "wall_time_s": 200.0, "dense_dir": "a", "pruned_dir": "b"})
    assert "80.00% of Linear weights" in text and "2.00× faster" in text and "80.50%" in text
