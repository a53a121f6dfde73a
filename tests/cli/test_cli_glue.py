"""The CLI on real MiniLM weights and real GLUE rows (small samples, so the suite stays fast)."""

import json

import pytest
import torch
from safetensors.torch import load_file

from sparsecore.recipe import load_recipe

GMP50 = """
modifiers:
  - !EpochRangeModifier
    end_epoch: 1
  - !GMPruningModifier
    params: ["re:.*encoder\\\\.layer\\\\.\\\\d+\\\\..*dense\\\\.weight", "re:.*attention\\\\.self\\\\.(query|key|value)\\\\.weight"]
    final_sparsity: 0.5
    start_epoch: 0
    end_epoch: 0.5
    update_frequency: 0.25
  - !DistillationModifier
    hardness: 0.5
    temperature: 2.0
"""


def small(n_train=32, n_eval=48):
    return ["--max_train_samples", n_train, "--max_eval_samples", n_eval]


def test_sst2_gmp_with_self_distillation_writes_a_complete_output(tmp_path, cli, fast_args, glue_dir):
    recipe = tmp_path / "gmp50.yaml"
    recipe.write_text(GMP50)
    out = tmp_path / "out"
    code, stdout, stderr = cli("--model_name_or_path", "minilm", "--task_name", "sst2", "--glue_dir", glue_dir,
                               "--recipe", recipe, "--distill_teacher", "self", "--do_train", "--do_eval",
                               "--output_dir", out, *small(), *fast_args)
    assert code == 0, stderr
    results = json.loads((out / "eval_results.json").read_text())
    assert 0.0 <= results["eval_accuracy"] <= 1.0
    for name in ("config.json", "model.safetensors", "tokenizer.json", "recipe.yaml", "eval_results.json",
                 "sparsity_report.json", "sparsity_report.png", "sparsecore_training.json"):
        assert (out / name).is_file(), name
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    report = json.loads((out / "sparsity_report.json").read_text())
    assert len(report["params"]) == 36
    weights = load_file(out / "model.safetensors")
    for row in report["params"]:  # exactly k zeros per layer, as saved
        w = weights[row["name"]]
        assert int((w == 0).sum()) == int(0.5 * w.numel() + 0.5)
    assert (weights["bert.encoder.layer.0.attention.self.query.bias"] != 0).all()
    saved = load_recipe(str(out / "recipe.yaml"))
    assert saved.modifiers[1].final_sparsity == 0.5 and saved.modifiers[2].hardness == 0.5
    assert (out / "sparsity_report.png").read_bytes()[:4] == b"\x89PNG"


def test_mrpc_sentence_pairs_report_f1(tmp_path, cli, fast_args, glue_dir):
    out = tmp_path / "mrpc"
    code, stdout, stderr = cli("--task_name", "mrpc", "--glue_dir", glue_dir, "--do_train", "--do_eval",
                               "--num_train_epochs", "1", "--output_dir", out, *small(), *fast_args,
                               "--eval_strategy", "epoch")  # evaluation during training works too
    assert code == 0, stderr
    results = json.loads((out / "eval_results.json").read_text())
    assert {"eval_accuracy", "eval_f1", "eval_combined_score"} <= set(results)
    assert json.loads((out / "config.json").read_text())["id2label"]["1"] == "equivalent"


def test_stsb_regression(tmp_path, cli, fast_args, glue_dir):
    out = tmp_path / "stsb"
    code, stdout, stderr = cli("--task_name", "stsb", "--glue_dir", glue_dir, "--recipe", "minilm-gmp80-demo",
                               "--recipe_args", "num_epochs=1,pruning_start_epoch=0,pruning_end_epoch=0.5",
                               "--distill_teacher", "self", "--output_dir", out, *small(), *fast_args)
    assert code == 0, stderr
    results = json.loads((out / "eval_results.json").read_text())
    assert {"eval_pearson", "eval_spearmanr"} <= set(results)
    config = json.loads((out / "config.json").read_text())
    assert len(config["id2label"]) == 1 and config["problem_type"] == "regression"
    assert abs(results["encoder_sparsity"] - 0.8) < 1e-4


def test_custom_csv_with_string_labels_and_one_shot(tmp_path, cli, fast_args, glue_dir):
    rows = (glue_dir / "rte" / "validation.tsv").read_text().splitlines()[1:41]
    import csv
    import io
    parsed = list(csv.reader(io.StringIO("\n".join(rows)), delimiter="\t"))
    data = tmp_path / "pairs.csv"
    with open(data, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["premise", "claim", "verdict"])
        for s1, s2, label in parsed:
            writer.writerow([s1, s2, "yes" if label == "0" else "no"])
    out = tmp_path / "custom"
    code, stdout, stderr = cli("--train_file", data, "--validation_file", data, "--input_column_names",
                               "premise,claim", "--label_column_name", "verdict", "--one_shot", "--do_eval",
                               "--recipe", "minilm-gmp80-demo", "--output_dir", out, *fast_args)
    assert code == 0, stderr
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "no", "1": "yes"}
    assert abs(json.loads((out / "eval_results.json").read_text())["encoder_sparsity"] - 0.8) < 1e-4


def test_resume_from_checkpoint_keeps_masks_and_schedule(tmp_path, cli, fast_args, glue_dir):
    args = ["--task_name", "sst2", "--glue_dir", glue_dir, "--recipe", "minilm-gmp80-demo",
            "--recipe_args", "num_epochs=2,pruning_start_epoch=0,pruning_end_epoch=1.5,pruning_update_frequency=0.5",
            "--max_train_samples", 32, "--max_eval_samples", 16, "--do_train", "--seed", 7,
            "--dataloader_num_workers", 0]
    i = fast_args.index("--save_strategy")
    fast = fast_args[:i] + fast_args[i + 2:]
    full = tmp_path / "full"
    code, _, stderr = cli(*args, "--output_dir", full, "--save_strategy", "epoch", *fast,
                          "--logging_strategy", "steps", "--logging_steps", 1)
    assert code == 0, stderr
    # the recipe's linear LR (1e-4 → 1e-6 over 2 epochs of 2 steps) is what trained and what was logged
    history = json.loads((full / "checkpoint-4" / "trainer_state.json").read_text())["log_history"]
    logged = [(h["step"], h["learning_rate"]) for h in history if "learning_rate" in h]
    assert [s for s, _ in logged] == [1, 2, 3, 4]
    for step, lr in logged:
        assert lr == pytest.approx(1e-4 + (1e-6 - 1e-4) * ((step - 1) / 2) / 2)
    ckpt = full / "checkpoint-2"
    assert (ckpt / "sparsecore_masks.safetensors").is_file() and (ckpt / "sparsecore_session.json").is_file()
    session = json.loads((ckpt / "sparsecore_session.json").read_text())
    assert session["step"] == 2
    resumed = tmp_path / "resumed"
    import shutil
    shutil.copytree(ckpt, resumed / "checkpoint-2")
    code, _, stderr = cli(*args, "--output_dir", resumed, "--save_strategy", "no",
                          "--resume_from_checkpoint", resumed / "checkpoint-2", *fast)
    assert code == 0, stderr
    a, b = load_file(full / "model.safetensors"), load_file(resumed / "model.safetensors")
    for name, w in a.items():
        assert torch.equal(w == 0, b[name] == 0), name
        torch.testing.assert_close(w, b[name], atol=1e-5, rtol=1e-4)


def _rows(glue_dir, task, n):
    import csv
    with open(glue_dir / task / "validation.tsv", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))[:n]


def test_multi_label_jsonl_and_predictions(tmp_path, cli, fast_args, glue_dir):
    rows = _rows(glue_dir, "sst2", 40)
    train = tmp_path / "train.jsonl"
    with open(train, "w") as f:
        for i, r in enumerate(rows):
            labels = (["positive"] if r["label"] == "1" else ["negative"]) + (["long"] if len(r["sentence"]) > 100 else [])
            f.write(json.dumps({"text": r["sentence"], "tags": labels}) + "\n")
    test = tmp_path / "test.csv"
    test.write_text("text\n" + "\n".join(f'"{r["sentence"].strip()}"' for r in rows[:5]) + "\n")
    out = tmp_path / "multi"
    code, _, stderr = cli("--train_file", train, "--validation_file", train, "--test_file", test,
                          "--label_column_name", "tags", "--do_train", "--do_eval", "--do_predict",
                          "--num_train_epochs", "1", "--output_dir", out, *fast_args)
    assert code == 0, stderr
    config = json.loads((out / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    assert set(config["label2id"]) == {"long", "negative", "positive"}
    results = json.loads((out / "eval_results.json").read_text())
    assert {"eval_f1", "eval_accuracy"} <= set(results)
    lines = (out / "predict_results.txt").read_text().splitlines()
    assert lines[0] == "index\tprediction" and len(lines) == 6


def test_mnli_reports_matched_and_mismatched(tmp_path, cli, fast_args, glue_dir):
    """MNLI is not in the shared data: build its layout from real RTE/MRPC sentence pairs."""
    mnli = tmp_path / "glue" / "mnli"
    mnli.mkdir(parents=True)
    sources = {"train": ("rte", 0), "validation_matched": ("rte", 40), "validation_mismatched": ("mrpc", 0)}
    for split, (task, skip) in sources.items():
        rows = _rows(glue_dir, task, skip + 30)[skip:]
        with open(mnli / f"{split}.tsv", "w", newline="") as f:
            import csv
            w = csv.writer(f, delimiter="\t")
            w.writerow(["premise", "hypothesis", "label"])
            for i, r in enumerate(rows):
                w.writerow([r["sentence1"], r["sentence2"], i % 3])
    out = tmp_path / "mnli-out"
    code, _, stderr = cli("--task_name", "mnli", "--glue_dir", tmp_path / "glue", "--do_train", "--do_eval",
                          "--num_train_epochs", "1", "--output_dir", out, *fast_args)
    assert code == 0, stderr
    results = json.loads((out / "eval_results.json").read_text())
    assert {"eval_validation_matched_accuracy", "eval_validation_mismatched_accuracy"} <= set(results)
    assert json.loads((out / "config.json").read_text())["id2label"]["2"] == "contradiction"


def test_one_shot_obs_from_the_cli_uses_training_rows_for_gradients(tmp_path, cli, fast_args, glue_dir):
    recipe = tmp_path / "obs.yaml"
    recipe.write_text("modifiers:\n  - !OBSPruningModifier\n    params: ['bert.encoder.layer.0.intermediate.dense.weight']\n"
                      "    final_sparsity: 0.6\n    end_epoch: 1\n    num_grads: 4\n    damp: 1e-5\n"
                      "    fisher_block_size: 32\n    grad_sampler_kwargs: {batch_size: 4}\n")
    out = tmp_path / "obs"
    code, _, stderr = cli("--task_name", "sst2", "--glue_dir", glue_dir, "--recipe", recipe, "--one_shot",
                          "--do_eval", "--max_train_samples", 16, "--max_eval_samples", 16, "--output_dir", out,
                          *fast_args)
    assert code == 0, stderr
    assert "!OBSPruningModifier gradients" in stderr  # progress shown
    w = load_file(out / "model.safetensors")["bert.encoder.layer.0.intermediate.dense.weight"]
    assert int((w == 0).sum()) == round(0.6 * w.numel())
