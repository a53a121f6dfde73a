"""Every bad input: one `error:` line naming what/where/how, exit 2, nothing written."""

import re

import pytest

QAT = "modifiers:\n  - !QuantizationModifier\n"
GOOD_RECIPE = "modifiers:\n  - !GMPruningModifier\n    params: __ALL_PRUNABLE__\n    final_sparsity: 0.5\n    end_epoch: 1\n"


def write(path, text):
    path.write_text(text)
    return path


def cases(tmp):
    csv = write(tmp / "data.csv", "text,label\ngood movie,pos\nbad movie,neg\nfine,pos\n")
    bad_yaml = write(tmp / "bad.yaml", "modifiers:\n  - !GMPruningModifier\n    params: [oops\n")
    nothing = write(tmp / "nothing.yaml", GOOD_RECIPE.replace("__ALL_PRUNABLE__", "re:decoder\\..*"))
    blocker = write(tmp / "blocker", "a file where a folder should be")
    full = tmp / "full"
    full.mkdir()
    (full / "keep.txt").write_text("x")
    return {
        "missing data file": (["--train_file", tmp / "nope.csv", "--validation_file", csv],
                              "file not found|does not exist|no such"),
        "unknown task": (["--task_name", "sst3"], "sst3"),
        "bad column name": (["--train_file", csv, "--validation_file", csv, "--input_column_names", "sentence"],
                            "sentence"),
        "bad label column": (["--train_file", csv, "--validation_file", csv, "--label_column_name", "target"],
                             "target"),
        "malformed recipe": (["--recipe", bad_yaml], "malformed recipe YAML"),
        "selector matches nothing": (["--recipe", nothing], "selector 're:decoder.* matches no parameter"),
        "unknown modifier": (["--recipe", "modifiers:\n  - !PruneItAll\n    x: 1\n"], "unknown modifier !PruneItAll"),
        "unknown recipe variable": (["--recipe", "minilm-gmp80-demo", "--recipe_args", "epochs=3"],
                                    "unknown variable 'epochs'"),
        "epochs conflict": (["--recipe", "minilm-gmp80-demo", "--num_train_epochs", "3"],
                            "--num_train_epochs 3 conflicts with the recipe's 6 epochs"),
        "zoo model stub": (["--model_name_or_path", "zoo:nlp/text_classification/bert-base/pytorch/huggingface/"
                            "mnli/12layer_pruned90-none"], "not in the local SparseZoo cache"),
        "missing model folder": (["--model_name_or_path", tmp / "no-model"], "model folder does not exist"),
        "missing teacher": (["--distill_teacher", tmp / "no-teacher", "--recipe", "minilm-gmp80-demo"],
                            "distill_teacher"),
        "output dir not writable": (["--output_dir", "/proc/sparsecore-run"], "output_dir is not writable"),
        "output dir under a file": (["--output_dir", blocker / "run"], "output_dir is not writable"),
        "output dir not empty": (["--output_dir", full], "output_dir exists and is not empty"),
        "bad max_seq_length": (["--max_seq_length", "0"], "--max_seq_length is 0"),
        "unknown flag": (["--learning_rat", "1e-4"], "unrecognized arguments|learning_rat"),
        "old and new sampling flag": (["--group_by_length", "--train_sampling_strategy", "random"],
                                      "--group_by_length and --train_sampling_strategy both given"),
        "group_by_length value": (["--group_by_length=maybe"], "--group_by_length takes true or false"),
        "predict without test file": (["--do_predict"], "--do_predict needs --test_file"),
        "missing glue folder": (["--task_name", "rte", "--glue_dir", tmp / "no-glue"], "GLUE folder does not exist"),
        "task without data": (["--task_name", "cola"], "no data for task 'cola'"),
        "one shot without recipe": (["--one_shot"], "--one_shot needs a recipe"),
        "resume without checkpoint": (["--resume_from_checkpoint", tmp / "nowhere"], "not a training checkpoint"),
        "sequence longer than the model": (["--max_seq_length", "1024"], "exceeds the model's 512 positions"),
        "quantization bits outside 2-8": (["--recipe", QAT + "    activation_bits: 16\n"],
                                          "activation_bits.num_bits is 16"),
        "unknown quantization strategy": (["--recipe", QAT + "    scheme: {weights: {strategy: block}}\n"],
                                          "strategy is 'block'"),
        "quantized submodule missing": (["--recipe", QAT + "    submodules: [bert.decoder]\n"],
                                        "submodule 'bert.decoder' does not exist"),
        "quantization after training end": (["--recipe", "minilm-pruned-qat", "--recipe_args",
                                             "quantization_start_epoch=2,observer_freeze_epoch=2"],
                                            "is not before the end of training"),
        "quantization after flag epochs": (["--recipe", QAT + "    start_epoch: 4.0\n", "--num_train_epochs", "3"],
                                           "is not before the end of training"),
        "siamese on single texts": (["--pair_encoding", "siamese"], "--pair_encoding siamese needs text pairs"),
        "unknown pair encoding": (["--pair_encoding", "both"], "invalid choice: 'both'"),
    }


CASES = ["missing data file", "unknown task", "bad column name", "bad label column", "malformed recipe",
         "selector matches nothing", "unknown modifier", "unknown recipe variable", "epochs conflict",
         "zoo model stub", "missing model folder", "missing teacher", "output dir not writable",
         "output dir under a file", "output dir not empty", "bad max_seq_length", "unknown flag",
         "predict without test file", "missing glue folder", "task without data", "one shot without recipe",
         "resume without checkpoint", "sequence longer than the model", "quantization bits outside 2-8",
         "unknown quantization strategy", "quantized submodule missing", "quantization after training end",
         "quantization after flag epochs", "siamese on single texts", "unknown pair encoding"]


@pytest.mark.parametrize("name", CASES)
def test_bad_input_gives_one_line_and_exit_2(name, tmp_path, cli, monkeypatch):
    monkeypatch.delenv("SPARSECORE_GLUE_DIR", raising=False)
    argv, pattern = cases(tmp_path)[name]
    out_dir = tmp_path / "out"
    if "--output_dir" not in argv:
        argv = argv + ["--output_dir", out_dir]
    argv += ["--max_steps", "1", "--max_train_samples", "8", "--max_eval_samples", "8"]  # cheap if it ever ran
    code, stdout, stderr = cli(*argv)
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert code == 2, stderr
    assert len(lines) == 1, stderr
    assert re.search(pattern, lines[0]), lines[0]
    assert " — " in lines[0] or "--help" in lines[0]  # says how to fix it
    assert "Traceback" not in stderr
    assert not out_dir.exists()


def test_real_entry_point_exits_2(tmp_path, cli_subprocess):
    code, _, stderr = cli_subprocess("--task_name", "sst3", "--output_dir", tmp_path / "o")
    assert code == 2
    assert stderr.strip().splitlines()[-1].startswith("error: unknown task 'sst3'") or "sst3" in stderr
    assert not (tmp_path / "o").exists()
