"""Helpers of the hostile-input and fault tests (tests/cli): a pickle that runs code, file damage, the
one-line-error assertion, small tmpfs mounts."""

import os
import shutil
import subprocess

import pytest

TINY = ["--max_steps", "1", "--max_train_samples", "8", "--max_eval_samples", "8", "--max_seq_length", "32",
        "--per_device_train_batch_size", "4", "--save_strategy", "no", "--disable_tqdm", "true"]


class Exploit:
    """Unpickling this would run a command: weights_only loading must refuse it."""

    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/sparsecore-pwned",))


def copy_model(tiny_model, tmp, name="model"):
    folder = tmp / name
    shutil.copytree(tiny_model, folder)
    return folder


def truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


def snapshot(folder):
    if not folder.exists():
        return None
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def run_cli(cli, argv, out):
    before = snapshot(out)
    code, _, stderr = cli(*argv)
    lines = stderr.splitlines()
    errors = [line for line in lines if "error:" in line]
    assert code == 2, stderr[-3000:]
    assert len(errors) == 1 and errors[0].startswith("error: "), stderr[-3000:]  # one line, on its own line
    assert " — " in errors[0] and "Traceback" not in stderr
    assert snapshot(out) == before  # nothing written, nothing changed
    return errors[0]


def mount_tmpfs(path, size):
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN): {proc.stderr.decode().strip()}")
    return path


def umount(path):
    subprocess.run(["umount", "-l", str(path)], capture_output=True)
