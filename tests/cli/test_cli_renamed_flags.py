"""SparseML-era flags that transformers 5 renamed still parse, to today's TrainingArguments."""

import pytest

from sparsecore.cli.args import parse_training, renamed_flags


@pytest.mark.parametrize("argv, expected", [
    (["--group_by_length"], ["--train_sampling_strategy", "group_by_length"]),
    (["--group_by_length", "true", "--seed", "1"], ["--train_sampling_strategy", "group_by_length", "--seed", "1"]),
    (["--group_by_length=True"], ["--train_sampling_strategy", "group_by_length"]),
    (["--group_by_length", "false"], []),
    (["--group_by_length=0", "--do_train"], ["--do_train"]),
    (["--do_train", "--group_by_length", "--do_eval"], ["--do_train", "--train_sampling_strategy", "group_by_length",
                                                        "--do_eval"]),
    (["--group_by_length", "Y"], ["--train_sampling_strategy", "group_by_length"]),  # transformers' t/f/y/n too
    (["--group_by_length=f"], []),
    (["--seed", "3"], ["--seed", "3"]),
])
def test_group_by_length_is_translated(argv, expected):
    assert renamed_flags(argv) == expected


def test_old_flag_reaches_training_arguments(tmp_path):
    _, _, training, _ = parse_training(["--group_by_length", "--output_dir", str(tmp_path / "run")])
    assert str(training.train_sampling_strategy) == "group_by_length"
    _, _, default, _ = parse_training(["--output_dir", str(tmp_path / "run")])
    assert str(default.train_sampling_strategy) != "group_by_length"
