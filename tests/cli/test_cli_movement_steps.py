"""A step-scheduled movement-pruning run through the CLI: training length from end_step, updates in the logs."""

import json

import pytest


def test_movement_in_steps_trains_to_end_step_and_logs_each_update(tiny_model, tmp_path, cli):
    recipe = tmp_path / "movement.yaml"
    recipe.write_text("modifiers:\n  - !MovementPruningModifier\n    params: __ALL_PRUNABLE__\n"
                      "    final_sparsity: 0.6\n    start_step: 2\n    end_step: 8\n    update_frequency_steps: 2\n")
    out = tmp_path / "out"
    code, _, stderr = cli("--model_name_or_path", tiny_model, "--recipe", recipe, "--do_train", "--output_dir",
                               out, "--max_train_samples", 32, "--per_device_train_batch_size", 4, "--max_seq_length",
                               32, "--logging_steps", 2, "--save_strategy", "no", "--disable_tqdm", "true")
    assert code == 0, stderr[-2000:]
    assert "note: training for 9 optimizer steps, as the recipe's end_step says" in stderr
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    updates = [e for e in history if "sparsecore/MovementPruningModifier/sparsity" in e]
    assert [e["step"] for e in updates] == [2, 4, 6, 8]
    assert updates[-1]["sparsecore/sparsity"] == pytest.approx(0.6, abs=0.01)
    assert all("sparsecore/lr" in e for e in updates)
    assert json.loads((out / "eval_results.json").read_text())["encoder_sparsity"] == pytest.approx(0.6, abs=0.02)
