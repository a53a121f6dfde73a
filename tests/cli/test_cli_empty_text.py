"""Training data with empty text cells through the training CLI: a note and training, or one error line."""

from __future__ import annotations

import csv
import json

from hostile import TINY, run_cli

from sparsecore.tasks import sample_glue_dir


def write_train(path, n: int, empty: set[int]):
    """The first ``n`` rows of the bundled SST-2 sample as a csv, rows in ``empty`` with a blank sentence."""
    with open(sample_glue_dir() / "sst2" / "train.tsv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t"))[1:n + 1]
    blanks = ["", "  ", "\t"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["sentence", "label"])
        w.writerows([(blanks[i % 3] if i in empty else s, label) for i, (s, label) in enumerate(rows)])
    return path


def test_a_few_empty_rows_are_dropped_with_a_note_and_predictions_keep_every_test_row(tiny_model, tmp_path, cli):
    train = write_train(tmp_path / "train.csv", 60, {3, 20, 41})
    test = tmp_path / "test.jsonl"
    texts = ["a fine film", None, "   ", "dull"]
    test.write_text("".join(json.dumps({"sentence": t}) + "\n" for t in texts), encoding="utf-8")
    out = tmp_path / "out"
    code, _, err = cli("--model_name_or_path", tiny_model, "--train_file", train, "--validation_file", train,
                       "--test_file", test, "--do_train", "--do_eval", "--do_predict", "--output_dir", out, *TINY)
    assert code == 0, err
    notes = [line for line in err.splitlines() if line.startswith("note: ")]
    assert f"note: dropped 3 of 60 rows of train ({train}) whose sentence is empty" in notes
    assert f"note: dropped 3 of 60 rows of validation ({train}) whose sentence is empty" in notes
    assert f"note: 2 of 4 rows of test ({test}) have an empty sentence: kept, so predictions line up with the " \
           "file's rows" in notes
    lines = (out / "predict_results.txt").read_text().splitlines()
    assert lines[0] == "index\tprediction" and [line.split("\t")[0] for line in lines[1:]] == ["0", "1", "2", "3"]


def test_half_empty_training_data_is_one_error_line(tiny_model, tmp_path, cli):
    train = write_train(tmp_path / "train.csv", 60, set(range(0, 60, 2)))
    out = tmp_path / "out"
    line = run_cli(cli, ["--model_name_or_path", tiny_model, "--train_file", train, "--validation_file", train,
                         "--do_train", "--output_dir", out, *TINY], out)
    assert "30 of 60 rows of train have an empty sentence: probably not the text column" in line
    assert f"({train}, column 'sentence')" in line and "--input_column_names" in line
    assert not out.exists()
