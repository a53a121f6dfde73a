import json
import subprocess
import sys

import pytest

from sparsecore.cli.text_classification import main

FAST_ARGS = ["--pad_to_max_length", "false", "--max_seq_length", "64", "--per_device_train_batch_size", "16",
        "--per_device_eval_batch_size", "32", "--save_strategy", "no", "--disable_tqdm", "true",
        "--logging_strategy", "no"]


@pytest.fixture
def run_main(capsys):
    """Run any CLI's ``main(argv)`` in-process: ``run_main(main, *argv)`` → (exit_code, stdout, stderr)."""
    def invoke(entry, *argv):
        code = 0
        try:
            entry([str(a) for a in argv])
        except SystemExit as exc:
            code = exc.code
        out = capsys.readouterr()
        return code, out.out, out.err
    return invoke


@pytest.fixture
def cli(run_main):
    """Run the training CLI in-process; return (exit_code, stdout, stderr)."""
    return lambda *argv: run_main(main, *argv)


@pytest.fixture
def cli_subprocess():
    def invoke(*argv):
        proc = subprocess.run([sys.executable, "-m", "sparsecore.transformers.text_classification",
                               *map(str, argv)], capture_output=True, text=True, timeout=300)
        return proc.returncode, proc.stdout, proc.stderr
    return invoke


@pytest.fixture
def fast_args():
    """Flags that keep real-model CLI runs to seconds: short sequences, no checkpoints, no logging."""
    return list(FAST_ARGS)


def read_json(path):
    return json.loads(path.read_text())
