"""Hostile inputs as a new user finds them: corrupt and malicious files, impossible flags, links, partial
checkpoints. Each gets exit code 2, exactly one `error:` line of its own, no traceback, and the output folder
exactly as before (absent, or byte-identical)."""

import os
import pickle
import re
import shutil

import pytest
import torch
from hostile import TINY, Exploit, copy_model, run_cli, truncate

from sparsecore.cli.text_classification import main as train_main


def model_case(tiny_model, tmp, kind):
    folder = copy_model(tiny_model, tmp)
    weights = folder / "model.safetensors"
    if kind == "config only":
        for f in folder.iterdir():
            if f.name != "config.json":
                f.unlink()
    elif kind == "truncated":
        truncate(weights)
    elif kind == "garbage":
        weights.write_bytes(b"\x00\xffnot safetensors" * 100)
    elif kind == "malicious bin":
        weights.unlink()
        with open(folder / "pytorch_model.bin", "wb") as f:
            pickle.dump(Exploit(), f)
    elif kind == "config list":
        (folder / "config.json").write_text("[1, 2]")
    return folder


MODEL_CASES = {
    "config only": "model folder has no weights",
    "truncated": "model.safetensors is truncated or corrupt",
    "garbage": "model.safetensors is truncated or corrupt",
    "malicious bin": "refusing to unpickle pytorch_model.bin",
    "config list": "config.json is not a JSON object",
}


@pytest.mark.parametrize("kind", MODEL_CASES)
@pytest.mark.parametrize("role", ["model", "teacher"])
def test_broken_model_folders(kind, role, tiny_model, tmp_path, cli):
    broken = model_case(tiny_model, tmp_path, kind)
    out = tmp_path / "out"
    argv = ["--model_name_or_path", broken, "--output_dir", out, *TINY] if role == "model" else [
        "--model_name_or_path", tiny_model, "--distill_teacher", broken, "--recipe", "minilm-gmp80-demo",
        "--output_dir", out, *TINY]
    line = run_cli(cli, argv, out)
    assert MODEL_CASES[kind] in line and ("--distill_teacher" in line) == (role == "teacher"), line
    assert not os.path.exists("/tmp/sparsecore-pwned")


@pytest.mark.parametrize("kind", ["config only", "truncated", "malicious bin", "config list"])
def test_export_refuses_broken_model_folders(kind, tiny_model, tmp_path, capsys):
    from sparsecore.cli.export_onnx import main

    broken = model_case(tiny_model, tmp_path, kind)
    with pytest.raises(SystemExit) as exit_:
        main(["--model_path", str(broken)])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and MODEL_CASES[kind] in err and "Traceback" not in err
    assert not (broken / "deployment").exists() and not list(broken.glob(".deployment*"))


FLAG_CASES = {
    "train batch 0": (["--per_device_train_batch_size", "0"], "--per_device_train_batch_size is 0"),
    "train batch -4": (["--per_device_train_batch_size", "-4"], "--per_device_train_batch_size is -4"),
    "eval batch -1": (["--per_device_eval_batch_size", "-1"], "--per_device_eval_batch_size is -1"),
    "accumulation 0": (["--gradient_accumulation_steps", "0"], "--gradient_accumulation_steps is 0"),
    "negative learning rate": (["--learning_rate", "-1"], "--learning_rate is -1"),
    "negative epochs": (["--num_train_epochs", "-1"], "--num_train_epochs is -1"),
    "save steps 0": (["--save_strategy", "steps", "--save_steps", "0"], "--save_steps is 0 with --save_strategy steps"),
    "negative seed": (["--seed", "-1"], "--seed is -1"),
}


@pytest.mark.parametrize("name", FLAG_CASES)
def test_impossible_flags(name, tiny_model, tmp_path, cli):
    flags, message = FLAG_CASES[name]
    out = tmp_path / "out"
    argv = ["--model_name_or_path", tiny_model, "--output_dir", out, *TINY]
    argv = [a for a in argv if a not in ("--save_strategy", "no")] if "--save_strategy" in flags else argv
    line = run_cli(cli, argv + flags + (["--max_steps", "-1"] if name == "negative epochs" else []), out)
    assert message in line, line


def recipe_case(tmp, kind):
    path = tmp / "recipe.yaml"
    if kind == "binary":
        path.write_bytes(b"modifiers:\x00\x01\x02" * 50)
    elif kind == "not utf-8":
        path.write_bytes("modifiers: []\n# caf\xe9\n".encode("latin-1"))
    elif kind == "huge eval":
        path.write_text("x: eval(" + "+".join(["1"] * 100_000) + ")\nmodifiers:\n  - !EpochRangeModifier\n"
                        "    end_epoch: eval(x)\n")
    elif kind == "alias bomb":
        levels = ["a: &a [x, x, x, x, x, x, x, x, x]"]
        levels += [f"{c}: &{c} [{', '.join(['*' + p] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi")]
        path.write_text("\n".join(levels) + "\nmodifiers: []\n")
    return path


RECIPE_CASES = {"binary": "recipe file is binary", "not utf-8": "recipe file is not UTF-8 text",
                "huge eval": "eval expression of 199,999 characters", "alias bomb": "YAML nodes through its *aliases"}


@pytest.mark.parametrize("kind", RECIPE_CASES)
def test_hostile_recipes_are_refused_quickly(kind, tiny_model, tmp_path, cli):
    out = tmp_path / "out"
    line = run_cli(cli, ["--model_name_or_path", tiny_model, "--recipe", recipe_case(tmp_path, kind),
                         "--output_dir", out, *TINY], out)
    assert RECIPE_CASES[kind] in line, line


def test_dangling_symlink_as_output_dir(tiny_model, tmp_path, cli):
    out = tmp_path / "out"
    out.symlink_to(tmp_path / "gone")
    line = run_cli(cli, ["--model_name_or_path", tiny_model, "--output_dir", out, *TINY], tmp_path / "gone")
    assert "output_dir is a symlink to a missing place" in line and out.is_symlink()
    assert not (tmp_path / "gone").exists()


def test_never_writes_through_a_planted_symlink(tiny_model, tmp_path, cli):
    out, victim = tmp_path / "out", tmp_path / "precious.txt"
    out.mkdir()
    victim.write_text("keep me")
    (out / "eval_results.json").symlink_to(victim)
    line = run_cli(cli, ["--model_name_or_path", tiny_model, "--output_dir", out, "--overwrite_output_dir", *TINY],
                   out)
    assert "output_dir holds a symlink" in line and victim.read_text() == "keep me"


@pytest.mark.parametrize("kind", ["no tokenizer", "foreign tokenizer"])
def test_model_folder_without_its_tokenizer(kind, tiny_model, tmp_path, cli, capsys):
    """transformers would build a 5-token tokenizer (every word [UNK]): train and export refuse, and an existing
    deployment/ keeps its tokenizer."""
    from sparsecore.cli.export_onnx import main as export_main

    folder = copy_model(tiny_model, tmp_path)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        (folder / name).unlink(missing_ok=True)
    message = "model folder has no tokenizer"
    if kind == "foreign tokenizer":  # a tokenizer of another model: 3 tokens for a 30,522-row table
        from tokenizers import Tokenizer, models, trainers
        from transformers import PreTrainedTokenizerFast

        tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
        tok.train_from_iterator(["a b c"] * 3, trainers.WordLevelTrainer(special_tokens=["[UNK]", "[PAD]"]))
        PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]").save_pretrained(folder)
        message = "the tokenizer has 3 tokens but the model's embedding table has 30,522"
    out = tmp_path / "out"
    assert message in run_cli(cli, ["--model_name_or_path", folder, "--output_dir", out, *TINY], out)
    (folder / "deployment").mkdir()
    (folder / "deployment" / "tokenizer.json").write_text("the good one")
    with pytest.raises(SystemExit) as exit_:
        export_main(["--model_path", str(folder), "--sequence_length", "32"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err and "Traceback" not in err
    assert (folder / "deployment" / "tokenizer.json").read_text() == "the good one"


@pytest.fixture(scope="module")
def checkpointed(tiny_model, tmp_path_factory):
    """A 2-step run of the tiny model saving checkpoint-1 and checkpoint-2 (GMP recipe: session state saved)."""
    out = tmp_path_factory.mktemp("ckpt") / "run"
    recipe = ("modifiers:\n  - !GMPruningModifier\n    params: __ALL_PRUNABLE__\n    final_sparsity: 0.5\n"
              "    start_epoch: 0\n    end_epoch: 1\n    update_frequency: 0.5\n")
    train_main([str(a) for a in ["--model_name_or_path", tiny_model, "--recipe", recipe, "--output_dir", out,
                                 "--do_train", "--max_train_samples", "8", "--per_device_train_batch_size", "4",
                                 "--max_seq_length", "32", "--save_strategy", "steps", "--save_steps", "1",
                                 "--disable_tqdm", "true", "--logging_strategy", "no"]])
    assert (out / "checkpoint-1").is_dir() and (out / "checkpoint-2").is_dir()
    return out, recipe


CHECKPOINT_CASES = {
    "truncated session json": ("sparsecore_session.json", "sparsecore_session.json is not valid JSON"),
    "corrupt masks": ("sparsecore_masks.safetensors", "sparsecore_masks.safetensors is truncated or corrupt"),
    "pickled optimizer": ("optimizer.pt", "refusing to unpickle optimizer.pt"),
    "pickled rng state": ("rng_state.pth", "refusing to unpickle rng_state.pth"),
    "truncated weights": ("model.safetensors", "model.safetensors is truncated or corrupt"),
    "killed before the session state": ("sparsecore_session.json", "sparsecore_session.json is missing"),
}


@pytest.mark.parametrize("name", CHECKPOINT_CASES)
def test_broken_checkpoints(name, checkpointed, tiny_model, tmp_path, cli):
    run, recipe = checkpointed
    out = tmp_path / "run"
    shutil.copytree(run, out)
    file, message = CHECKPOINT_CASES[name]
    target = out / "checkpoint-2" / file
    if name.startswith("killed"):  # the Trainer's files are complete, ours (written after them) are not
        target.unlink()
    elif file.endswith((".pt", ".pth")):
        torch.save({"x": Exploit()}, target)
    else:
        truncate(target)
    line = run_cli(cli, ["--model_name_or_path", tiny_model, "--recipe", recipe, "--output_dir", out,
                         "--do_train", "--max_train_samples", "8", "--per_device_train_batch_size", "4",
                         "--max_seq_length", "32", "--save_strategy", "no", "--disable_tqdm", "true",
                         "--resume_from_checkpoint", out / "checkpoint-2"], out)
    assert f"checkpoint cannot be resumed: {message}" in line, line


def test_resume_last_skips_a_partial_newest_checkpoint(checkpointed, tiny_model, tmp_path, cli):
    run, recipe = checkpointed
    out = tmp_path / "run"
    shutil.copytree(run, out)
    truncate(out / "checkpoint-2" / "model.safetensors")  # a run killed while saving it
    code, _, stderr = cli("--model_name_or_path", str(tiny_model), "--recipe", recipe, "--output_dir", str(out),
                          "--do_train", "--max_train_samples", "8", "--per_device_train_batch_size", "4",
                          "--max_seq_length", "32", "--save_strategy", "no", "--disable_tqdm", "true",
                          "--resume_from_checkpoint", "last")
    assert code == 0, stderr[-3000:]
    assert re.search(r"note: skipping checkpoint-2 for resume: model.safetensors is truncated", stderr)
    for name in ("checkpoint-1", "checkpoint-2"):
        truncate(out / name / "model.safetensors")
    line = run_cli(cli, ["--model_name_or_path", tiny_model, "--recipe", recipe, "--output_dir", out,
                         "--do_train", "--max_train_samples", "8", "--save_strategy", "no",
                         "--resume_from_checkpoint", "last"], out)
    assert "no complete checkpoint to resume from" in line


def test_checkpoints_and_output_carry_no_pickle(checkpointed):
    run, _ = checkpointed
    for folder in (run, run / "checkpoint-1", run / "checkpoint-2"):
        assert not (folder / "training_args.bin").exists() and (folder / "training_args.json").is_file()


def test_the_error_line_starts_its_own_line_after_a_progress_bar(capsys):
    import sys

    from sparsecore.cli.parser import user_errors
    from sparsecore.errors import SparsecoreError

    with pytest.raises(SystemExit) as exit_:
        with user_errors():
            sys.stderr.write("\rexport:  50%|█████     | 2/4 [00:01<00:01,  1.25step/s]")  # a bar mid-line
            raise SparsecoreError("something is wrong", "here", "fix it")
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.endswith("step/s]\nerror: something is wrong (here) — fix it\n")
    with pytest.raises(SystemExit):
        with user_errors():
            raise SparsecoreError("no bar", "here", "fix it")
    assert capsys.readouterr().err == "error: no bar (here) — fix it\n"  # no empty line when nothing was on screen


@pytest.mark.parametrize("rows, message", [
    ("good,positive\nbad,0\nfine,true\nawful,negative\n",
     "label column mixes words and numbers and booleans ('positive', '0', 'true')"),
    ("good,positive\nfine,positive\ngreat,positive\n",
     "the label column holds one value ('positive') in all 3 train rows"),
])
def test_labels_that_would_train_nonsense(rows, message, tiny_model, tmp_path, cli):
    data = tmp_path / "labels.csv"
    data.write_text("text,label\n" + rows)
    out = tmp_path / "out"
    line = run_cli(cli, ["--model_name_or_path", tiny_model, "--train_file", data, "--validation_file", data,
                         "--input_column_names", "text", "--output_dir", out, *TINY], out)
    assert message in line and "'label'" in line, line


def test_catastrophic_selector_ends_quickly_and_writes_nothing(tiny_model, tmp_path, cli):
    import time

    out = tmp_path / "out"
    recipe = ("modifiers:\n  - !GMPruningModifier\n    params: ['re:(.*.*)*z']\n    final_sparsity: 0.5\n"
              "    end_epoch: 1\n")
    started = time.monotonic()
    line = run_cli(cli, ["--model_name_or_path", tiny_model, "--recipe", recipe, "--output_dir", out, *TINY], out)
    assert "selector 're:(.*.*)*z' matches no parameter" in line and time.monotonic() - started < 60


def test_a_selector_that_runs_too_long_is_an_error(monkeypatch):
    from torch import nn

    from sparsecore import selectors
    from sparsecore.errors import SparsecoreError

    class Slow:  # what the regex engine does when a match exceeds its timeout
        def fullmatch(self, name, timeout):
            raise TimeoutError

    monkeypatch.setattr(selectors, "compile_selector", lambda selector, where: Slow())
    with pytest.raises(SparsecoreError, match=r"selector 're:x' takes over 2 s to match .*catastrophic backtracking"):
        selectors.resolve_params(nn.Linear(2, 2), ("re:x",), "recipe")
