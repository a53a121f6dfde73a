"""python -m sparsecore.cli.sensitivity on a tiny BERT: JSON, heat map and a recipe that trains; bad input is one
line, exit 2, and leaves no folder behind."""

import json

import pytest

from sparsecore.cli.sensitivity import main
from sparsecore.recipe import load_recipe

ARGS = ["--task_name", "sst2", "--num_rows", "48", "--num_grads", "4", "--fisher_block_size", "8",
        "--sparsities", "0.5,0.9"]


def test_writes_results_picture_and_a_recipe_that_trains(tiny_model, tmp_path, run_main, cli):
    out = tmp_path / "sens"
    code, stdout, stderr = run_main(main, "--model_path", tiny_model, *ARGS, "--target_sparsity", "0.7",
                                  "--search_rounds", "2", "--search_rows", "32", "--output_dir", out)
    assert code == 0, stderr[-2000:]
    assert set(json.loads(stdout)) == {"results", "picture", "recipe"}
    data = json.loads((out / "sensitivity.json").read_text())
    assert set(data["results"]) == {"magnitude", "obs"} and len(data["layers"]) == 12 and data["rows"] == 48
    assert (out / "sensitivity.png").read_bytes()[:4] == b"\x89PNG"
    search = data["search"]
    assert search["rows"] == 32 and search["start"] in ("uniform", "curves") and len(search["history"]) >= 2
    assert set(search["validation"]) == {"uniform", "curves", "searched"}
    losses = [h["loss"] for h in search["history"]]
    assert losses == sorted(losses, reverse=True) and losses[0] == search["start_losses"][search["start"]]
    assert "searched with all layers pruned together on 32 training rows" in (out / "recipe.yaml").read_text()
    recipe = load_recipe((out / "recipe.yaml").read_text())
    assert recipe.num_epochs == 3
    code, _, stderr = cli("--model_name_or_path", tiny_model, "--recipe", out / "recipe.yaml", "--one_shot", "true",
                          "--output_dir", tmp_path / "pruned", "--max_eval_samples", 8, "--max_seq_length", 32)
    assert code == 0, stderr[-2000:]
    report = json.loads((tmp_path / "pruned" / "sparsity_report.json").read_text())
    linears = [p for p in report["params"] if p["name"] in data["layers"]]
    assert sum(p["zeros"] for p in linears) / sum(p["numel"] for p in linears) == pytest.approx(0.7, abs=1e-3)


@pytest.mark.parametrize("extra, error", [
    (["--sparsities", "0.5,x"], "--sparsities '0.5,x' is not a list of numbers"),
    (["--sparsities", "0.5,1.2"], "must be in (0, 1)"),
    (["--methods", "magnitude,taylor"], "unknown method taylor"),
    (["--target_sparsity", "0.97"], "--target_sparsity 0.97 is outside (0, 0.9]"),
    (["--num_rows", "0"], "--num_rows is 0"),
    (["--search_rows", "0"], "--search_rows is 0"),
])
def test_bad_flags_are_one_line_and_write_nothing(tiny_model, tmp_path, run_main, extra, error):
    out = tmp_path / "sens"
    code, _, stderr = run_main(main, "--model_path", tiny_model, *ARGS, *extra, "--output_dir", out)
    assert code == 2 and error in stderr and "Traceback" not in stderr
    assert not out.exists() and not list(tmp_path.glob(".sens-*"))


def test_an_existing_folder_is_kept(tiny_model, tmp_path, run_main):
    out = tmp_path / "sens"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    code, _, stderr = run_main(main, "--model_path", tiny_model, *ARGS, "--output_dir", out)
    assert code == 2 and "output folder exists" in stderr and (out / "mine.txt").read_text() == "keep"
