"""Writing where nothing can be written: a read-only model folder (export, training), a folder without write
permission, a write refused midway. One `error:` line naming the folder and the way out, nothing half-written,
the old deployment untouched; `--output_dir` exports elsewhere."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import tempfile

import pytest
from hostile import TINY, mount_tmpfs, snapshot, umount

from sparsecore.cli.export_onnx import main as export_main


def export_cli(capsys, *argv):
    try:
        export_main([str(a) for a in argv])
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def one_error(err: str) -> str:
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith("error: ") and " — " in errors[0], err[-2000:]
    assert "Traceback" not in err
    return errors[0]


@pytest.fixture
def read_only_model(tiny_deployment, tmp_path):
    """A trained folder with an earlier deployment/, on a file system mounted read-only (skips without root)."""
    mount = mount_tmpfs(tmp_path / "ro", "32m")
    try:
        shutil.copytree(tiny_deployment.parent, mount / "m")
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        yield mount / "m"
    finally:
        umount(mount)


def test_export_from_a_read_only_folder_says_where_and_how(read_only_model, tmp_path, capsys):
    from sparsecore import Pipeline

    model = read_only_model
    before = snapshot(model)
    code, err = export_cli(capsys, "--model_path", model, "--sequence_length", "32")
    line = one_error(err)
    assert code == 2 and line.startswith(f"error: {model} is not writable (") and "Read-only file system" in line
    assert f"(--model_path {model})" in line and "--output_dir" in line, line
    assert snapshot(model) == before

    out = tmp_path / "exports" / "tiny"  # parents are created
    code, err = export_cli(capsys, "--model_path", model, "--sequence_length", "32", "--output_dir", out)
    assert code == 0, err[-2000:]
    assert snapshot(model) == before and not list(out.parent.glob(".tiny-*"))
    pipe = Pipeline.create(model_path=out)
    assert len(pipe(["a fine film", "a dull one"])) == 2 and pipe.logits(["a fine film"]).shape == (1, 2)


def test_export_into_a_folder_without_write_permission(tiny_deployment, tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root writes through permission bits: the EACCES test below simulates it")
    model = tmp_path / "m"
    shutil.copytree(tiny_deployment.parent, model)
    before = snapshot(model)
    model.chmod(0o555)
    try:
        code, err = export_cli(capsys, "--model_path", model, "--sequence_length", "32")
    finally:
        model.chmod(0o755)
    line = one_error(err)
    assert code == 2 and f"error: {model} is not writable" in line and "Permission denied" in line
    assert "--output_dir" in line and snapshot(model) == before


@pytest.mark.parametrize("code_", [errno.EROFS, errno.EACCES])
def test_a_refused_temporary_folder_is_one_line_also_as_root(code_, tiny_deployment, tmp_path, capsys, monkeypatch):
    """mkdtemp refused in the model folder (what a read-only mount or missing permission does)."""
    model = tmp_path / "m"
    shutil.copytree(tiny_deployment.parent, model)
    before = snapshot(model)
    real = tempfile.mkdtemp

    def refused(suffix=None, prefix=None, dir=None):
        if dir is not None and os.path.abspath(dir) == str(model):
            raise OSError(code_, os.strerror(code_), os.path.join(dir, f"{prefix or 'tmp'}x"))
        return real(suffix, prefix, dir)

    monkeypatch.setattr(tempfile, "mkdtemp", refused)
    code, err = export_cli(capsys, "--model_path", model, "--sequence_length", "32")
    line = one_error(err)
    assert code == 2 and f"error: {model} is not writable" in line and os.strerror(code_) in line
    assert f"(--model_path {model})" in line and "export elsewhere with --output_dir DIR" in line
    assert snapshot(model) == before


def test_a_write_refused_while_publishing_keeps_the_old_deployment(tiny_deployment, tmp_path, capsys, monkeypatch):
    """The probe passes but the final rename is refused (a folder turned read-only mid-export): one line, the old
    deployment back in place, no temporary left."""
    from pathlib import Path

    model = tmp_path / "m"
    shutil.copytree(tiny_deployment.parent, model)
    before = snapshot(model)
    real = Path.rename

    def rename(self, target):
        if Path(target).name == "deployment" and "-old-" not in self.name:  # publishing, not restoring
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self), str(target))
        return real(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    code, err = export_cli(capsys, "--model_path", model, "--sequence_length", "32")
    monkeypatch.undo()
    line = one_error(err)
    assert code == 2 and f"error: {model} is not writable (Read-only file system)" in line and "--output_dir" in line
    assert snapshot(model) == before and not list(model.glob(".deployment*"))


def test_output_dir_is_checked_before_anything_is_replaced(tiny_deployment, tmp_path, capsys):
    model = tmp_path / "m"
    shutil.copytree(tiny_deployment.parent, model)
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    code, err = export_cli(capsys, "--model_path", model, "--output_dir", precious)
    assert code == 2 and "--output_dir exists and is not an earlier export" in one_error(err)
    assert (precious / "notes.txt").read_text() == "keep me"
    for holder in (model, tmp_path):
        code, err = export_cli(capsys, "--model_path", model, "--output_dir", holder)
        assert code == 2 and "--output_dir holds the model folder" in one_error(err)
    assert (model / "config.json").is_file()


def test_python_export_takes_output_dir_and_replaces_an_earlier_export(tiny_deployment, tmp_path):
    from sparsecore.workflows import export

    out = tmp_path / "exported"
    first = export(model_path=tiny_deployment.parent, output_dir=out, sequence_length=32)
    assert first.deployment == out and first.onnx_path == out / "model.onnx" and first.report["passed"]
    again = export(model_path=tiny_deployment.parent, output_dir=str(out), sequence_length=32, onnx_file_name="g.onnx")
    assert (out / "g.onnx").is_file() and not (out / "model.onnx").exists() and again.report["passed"]


def test_training_into_a_read_only_output_dir(read_only_model, tmp_path, cli):
    out = read_only_model.parent / "run"
    code, _, err = cli("--model_name_or_path", read_only_model, "--output_dir", out, *TINY)
    line = one_error(err)
    assert code == 2 and "output_dir is not writable" in line and "Read-only file system" in line, line
    assert not out.exists()


def test_backbone_pruning_and_sensitivity_into_a_read_only_folder(read_only_model, tmp_path, run_main):
    from sparsecore.cli.masked_language_modeling import main as mlm_main
    from sparsecore.cli.sensitivity import main as sensitivity_main

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a fine film\na dull one\n")
    out = read_only_model / "backbone"
    code, _, err = run_main(mlm_main, "--model_name_or_path", read_only_model, "--train_file", corpus,
                            "--output_dir", out)
    line = one_error(err)
    assert code == 2 and f"{out} is not writable" in line and "Read-only file system" in line, line
    code, _, err = run_main(sensitivity_main, "--model_path", read_only_model, "--task_name", "sst2",
                            "--num_rows", "8", "--sparsities", "0.5", "--methods", "magnitude")
    line = one_error(err)
    assert code == 2 and f"(--output_dir {read_only_model / 'sensitivity'})" in line and "--output_dir" in line, line
