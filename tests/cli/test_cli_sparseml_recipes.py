"""Each SparseML-style fixture recipe (tests/recipe/sparseml_style/) through a short real CLI run on MiniLM."""

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file

STYLE = Path(__file__).resolve().parents[1] / "recipe" / "sparseml_style"
TINY = ["--max_train_samples", "16", "--max_eval_samples", "16", "--max_seq_length", "32",
        "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "16", "--pad_to_max_length", "false",
        "--save_strategy", "no", "--disable_tqdm", "true", "--logging_strategy", "no"]


def run(cli, tmp_path, recipe, *extra):
    out = tmp_path / "out"
    code, stdout, stderr = cli("--model_name_or_path", "minilm", "--task_name", "sst2", "--recipe", recipe,
                               "--do_train", "--do_eval", "--output_dir", out, *TINY, *extra)
    assert code == 0, stderr
    return out, stderr


def sparsity_of(out: Path) -> dict[str, float]:
    return {row["name"]: row["sparsity"] for row in json.loads((out / "sparsity_report.json").read_text())["params"]}


@pytest.mark.parametrize("name, sparse, expected", [
    ("md_licence_comment.md", "attention.self.query.weight", 0.5),
    ("log_types.yaml", "output.dense.weight", 0.4),
    ("int_booleans.yaml", "intermediate.dense.weight", 0.5),
    ("staged.yaml", "attention.self.key.weight", 0.6),
    ("exponent_floats.yaml", "attention.output.dense.weight", 0.3),
    ("eval_functions.yaml", "layer.2.output.dense.weight", 0.5),
])
def test_fixture_recipe_trains_on_minilm(cli, tmp_path, name, sparse, expected):
    out, stderr = run(cli, tmp_path, STYLE / name)
    assert 0.0 <= json.loads((out / "eval_results.json").read_text())["eval_accuracy"] <= 1.0
    hits = [s for n, s in sparsity_of(out).items() if n.endswith(sparse)]
    if name in ("int_booleans.yaml", "exponent_floats.yaml"):  # global sparsity (1 / OBS default): the mean
        assert len(set(hits)) > 1 and abs(sum(hits) / len(hits) - expected) < 1e-3, hits
    else:
        assert hits and all(abs(s - expected) < 1e-3 for s in hits), (name, hits)
    if name == "log_types.yaml":
        assert "note: log_types ignored on 2 modifier(s)" in stderr


def test_legacy_quantization_recipe_trains_quantized(cli, tmp_path):
    out, _ = run(cli, tmp_path, STYLE / "legacy_quantization.yaml")
    sites = json.loads((out / "sparsecore_quantization.json").read_text())
    assert sites and (out / "sparsecore_quantization.safetensors").is_file()


def test_layer_dropping_recipe_leaves_a_shallower_model(cli, tmp_path):
    out, _ = run(cli, tmp_path, STYLE / "layer_dropping.yaml", "--distill_teacher", "self")
    config = json.loads((out / "config.json").read_text())
    assert config["num_hidden_layers"] == 3
    assert config["sparsecore_layer_pruning"] == {
        "removed": ["bert.encoder.layer.1", "bert.encoder.layer.3", "bert.encoder.layer.5"],
        "original_num_hidden_layers": 6, "kept_original_layers": [0, 2, 4]}
    weights = load_file(out / "model.safetensors")
    layers = {int(k.split(".")[3]) for k in weights if k.startswith("bert.encoder.layer.")}
    assert layers == {0, 1, 2}
    report = sparsity_of(out)
    assert len(report) == 18 and all(abs(report[f"bert.encoder.layer.{i}.intermediate.dense.weight"] - 0.5) < 1e-3
                                     for i in range(3))
    # the saved folder is an ordinary 3-layer BERT; reapplying the recipe to it is refused
    again = tmp_path / "again"
    from sparsecore.cli.text_classification import main
    with pytest.raises(SystemExit) as exit_info:
        main(["--model_name_or_path", str(out), "--task_name", "sst2", "--recipe", str(STYLE / "layer_dropping.yaml"),
              "--output_dir", str(again), *TINY])
    assert exit_info.value.code == 2 and not again.exists()


def test_distill_keys_the_model_lacks_fail_before_training(cli, tmp_path):
    recipe = tmp_path / "qa_keys.yaml"
    recipe.write_text("modifiers:\n  - !EpochRangeModifier\n    end_epoch: 1\n  - !DistillationModifier\n"
                      "    distill_output_keys: [start_logits, end_logits]\n")
    out = tmp_path / "out"
    code, _, stderr = cli("--model_name_or_path", "minilm", "--recipe", recipe, "--distill_teacher", "self",
                          "--output_dir", out, *TINY)
    assert code == 2 and not out.exists()
    assert stderr.strip().splitlines()[-1].startswith("error: !DistillationModifier.distill_output_keys names "
                                                      "'start_logits', which the model does not produce")


def test_sparseml_console_script_names_are_installed():
    """SparseML's console-script names are installed and point at our CLIs; one of them runs (each ``--help`` imports
    torch and transformers: the launchers differ only in the name, tests/test_checkout_layout.py runs the modules)."""
    import os
    import shutil
    import subprocess
    import sys
    from importlib.metadata import entry_points

    targets = {"sparsecore.transformers.text_classification": "sparsecore.cli.text_classification:main",
               "sparsecore.transformers.train.text_classification": "sparsecore.cli.text_classification:main",
               "sparsecore.transformers.export_onnx": "sparsecore.cli.export_onnx:main",
               "sparsecore-text-classification": "sparsecore.cli.text_classification:main"}
    scripts = {ep.name: ep for ep in entry_points(group="console_scripts")}
    for name, target in targets.items():
        assert scripts[name].value == target, name
        assert callable(scripts[name].load()), name
        path = shutil.which(name) or str(Path(sys.executable).parent / name)
        assert os.access(path, os.X_OK), path
    name = "sparsecore.transformers.text_classification"
    path = shutil.which(name) or str(Path(sys.executable).parent / name)
    proc = subprocess.run([path, "--help"], check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "--model_" in proc.stdout, proc.stderr[-2000:]
