"""Faults a run meets: broken deployments, unwritable and read-only places, a full disk, kill -9 during export and
training, threads sharing a Pipeline. One `error:` line and nothing left behind, or the same result as without
the fault."""

import os
import re
import shutil

import pytest
import torch
from hostile import copy_model, mount_tmpfs, snapshot, truncate, umount


@pytest.mark.parametrize("kind, message", [("none", "model_path is None"),
                                           ("tokenizer", "tokenizer.json cannot be read"),
                                           ("config", "config.json is not a JSON object")])
def test_pipeline_refuses_broken_deployments(kind, message, tiny_deployment, tmp_path):
    from sparsecore import Pipeline
    from sparsecore.errors import SparsecoreError

    folder = tmp_path / "d"
    shutil.copytree(tiny_deployment, folder)
    if kind == "tokenizer":
        truncate(folder / "tokenizer.json", 0.3)
    elif kind == "config":
        (folder / "config.json").write_text('"just a string"')
    with pytest.raises(SparsecoreError, match=re.escape(message)) as err:
        Pipeline.create(model_path=None if kind == "none" else folder)
    assert "\n" not in str(err.value)


def test_predict_to_an_unwritable_place(tiny_deployment, tmp_path, capsys):
    from sparsecore.cli.predict import main

    texts = tmp_path / "t.txt"
    texts.write_text("a fine film\n")
    with pytest.raises(SystemExit) as exit_:
        main(["--model_path", str(tiny_deployment), "--input", str(texts), "--output", "/proc/no/preds.jsonl"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "error: /proc/no/preds.jsonl is not writable" in err and "Traceback" not in err


def test_evaluate_deployment_on_a_read_only_folder(tiny_deployment, tmp_path, capsys):
    import subprocess

    from sparsecore.cli.evaluate_deployment import main

    mount = mount_tmpfs(tmp_path / "ro", "16m")
    try:
        shutil.copytree(tiny_deployment, mount / "deployment")
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        with pytest.raises(SystemExit) as exit_:
            main(["--model_path", str(mount / "deployment"), "--task_name", "sst2", "--max_eval_samples", "8"])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and "is not writable" in err and "eval_onnx_results.json" in err
        assert "Traceback" not in err
    finally:
        umount(mount)


def test_disk_full_training_leaves_nothing_and_says_so(tmp_path, cli):
    mount = mount_tmpfs(tmp_path / "small", "20m")
    try:
        (mount / "before.txt").write_text("was here")
        out = mount / "run"  # MiniLM's weights alone are 90 MB
        code, _, stderr = cli("--model_name_or_path", "minilm", "--one_shot", "--recipe", "minilm-gmp80-demo",
                              "--max_eval_samples", "8", "--max_seq_length", "32", "--output_dir", str(out))
        errors = [line for line in stderr.splitlines() if "error:" in line]
        assert code == 2 and errors == [f"error: no space left on the disk of {out} (--output_dir) — free some space "
                                        "or choose another folder; nothing of this run was kept"], stderr[-2000:]
        assert "Traceback" not in stderr and not out.exists() and (mount / "before.txt").read_text() == "was here"
    finally:
        umount(mount)


def test_disk_full_export_keeps_the_old_deployment(tiny_model, tmp_path, capsys):
    from sparsecore.cli.export_onnx import main as export_main

    size = sum(p.stat().st_size for p in tiny_model.rglob("*") if p.is_file())
    mount = mount_tmpfs(tmp_path / "small", f"{size // 1024 + 1536}k")  # the model fits, its ONNX copy does not
    try:
        model = copy_model(tiny_model, mount)
        (model / "deployment").mkdir()
        (model / "deployment" / "model.onnx").write_text("the previous export")
        with pytest.raises(SystemExit) as exit_:
            export_main(["--model_path", str(model), "--sequence_length", "32"])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and f"error: no space left on the disk of {model}" in err, err[-2000:]
        assert "Traceback" not in err and not list(model.glob(".deployment*"))
        assert (model / "deployment" / "model.onnx").read_text() == "the previous export"
    finally:
        umount(mount)


def test_killed_export_leaves_a_temporary_the_next_export_removes(tiny_deployment, tmp_path, caplog):
    import signal
    import subprocess
    import sys
    import time

    from sparsecore.workflows import export

    model = tmp_path / "m"
    shutil.copytree(tiny_deployment.parent, model)
    before = snapshot(model / "deployment")
    proc = subprocess.Popen([sys.executable, "-m", "sparsecore.transformers.export_onnx", "--model_path", str(model),
                             "--num_export_samples", "50"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not [p for p in model.glob(".deployment-*") if "-old-" not in p.name] and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    left = list(model.glob(".deployment-*"))
    assert left, "the export was not caught mid-way"
    assert snapshot(model / "deployment") == before  # the old deployment survives a kill
    result = export(model_path=model)
    assert result.report["passed"] and not list(model.glob(".deployment-*"))
    assert f"an interrupted earlier export left files behind: removed {left[0].name}" in caplog.text


def test_killed_training_resumes_to_the_same_masks(tiny_model, tmp_path, cli):
    """kill -9 mid-run (a checkpoint may be half-written), resume 'last': the masks of an uninterrupted run."""
    import signal
    import subprocess
    import sys
    import time

    from safetensors.torch import load_file

    recipe = tmp_path / "gmp.yaml"
    recipe.write_text("modifiers:\n  - !GMPruningModifier\n    params: __ALL_PRUNABLE__\n    final_sparsity: 0.6\n"
                      "    start_epoch: 0\n    end_epoch: 1.5\n    update_frequency: 0.25\n"
                      "  - !EpochRangeModifier\n    end_epoch: 2\n")
    args = ["--model_name_or_path", str(tiny_model), "--recipe", str(recipe), "--do_train", "--max_train_samples",
            "64", "--per_device_train_batch_size", "4", "--max_seq_length", "32", "--seed", "3",
            "--save_strategy", "steps", "--save_steps", "2", "--disable_tqdm", "true", "--logging_strategy", "no"]
    code, _, stderr = cli(*args, "--output_dir", str(tmp_path / "full"))
    assert code == 0, stderr[-2000:]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "sparsecore.transformers.text_classification", *args,
                             "--output_dir", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while not (killed / "checkpoint-10" / "trainer_state.json").exists() and time.time() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "model.safetensors").exists(), "the run finished before it was killed"
    code, _, stderr = cli(*args, "--output_dir", str(killed), "--resume_from_checkpoint", "last")
    assert code == 0, stderr[-2000:]
    a, b = load_file(tmp_path / "full" / "model.safetensors"), load_file(killed / "model.safetensors")
    for name, w in a.items():
        assert torch.equal(w == 0, b[name] == 0), name
    import json

    reports = [json.loads((d / "sparsity_report.json").read_text())["total"] for d in (tmp_path / "full", killed)]
    assert reports[0] == reports[1] and abs(reports[0]["sparsity"] - 0.6) < 0.01


def test_eight_threads_share_one_pipeline(tiny_deployment):
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    from sparsecore import Pipeline

    pipe = Pipeline.create(model_path=tiny_deployment, batch_size=4)
    batches = [[f"sentence {i} number {j}" for j in range(i % 5 + 1)] for i in range(24)]
    sequential = [pipe.logits(b) for b in batches]
    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(pipe.logits, batches))
    assert all(np.array_equal(a, b) for a, b in zip(sequential, parallel))


def test_predict_refuses_pairs_for_a_single_sentence_model(tiny_deployment, tmp_path, capsys):
    from sparsecore.cli.predict import main

    src, out = tmp_path / "pairs.csv", tmp_path / "preds.jsonl"
    src.write_text('a,b\n"A man is eating.","Someone eats."\n')
    with pytest.raises(SystemExit) as exit_:
        main(["--model_path", str(tiny_deployment), "--input", str(src), "--output", str(out),
              "--text_column", "a", "--text_pair_column", "b"])
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert exit_.value.code == 2 and len(errors) == 1 and not out.exists()
    assert errors[0].startswith("error: this model was trained on single sentences but got sentence pairs")
