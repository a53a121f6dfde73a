"""The data flags of the training CLI: --dataset_name, parquet files, --validation_ratio, --eval_on_test, the cache."""

from __future__ import annotations

import json

import datasets
import pyarrow as pa
import pyarrow.parquet as pq

from sparsecore.workflows.features import cached_features

TRAIN = {"sentence": [f"a {'good' if i % 2 else 'bad'} film number {i}" for i in range(40)],
         "label": [i % 2 for i in range(40)]}


def test_parquet_with_validation_ratio_and_a_warm_cache(tmp_path, cli, fast_args, tiny_model):
    pq.write_table(pa.table(TRAIN), tmp_path / "train.parquet")
    cache = tmp_path / "cache"
    argv = ["--model_name_or_path", tiny_model, "--train_file", tmp_path / "train.parquet", "--validation_ratio",
            "0.25", "--do_train", "--do_eval", "--max_steps", "2", "--cache_dir", cache, *fast_args]
    code, out, err = cli(*argv, "--output_dir", tmp_path / "a")
    assert code == 0, err
    metrics = json.loads((tmp_path / "a" / "eval_results.json").read_text())
    assert metrics["eval_samples"] == 10  # 25% of 40, 5 of each class
    built = cached_features(cache)
    assert len(built) == 2  # train and validation features
    code, _, err = cli(*argv, "--output_dir", tmp_path / "b", "--preprocessing_num_workers", "1")
    assert code == 0, err
    assert cached_features(cache) == built  # same data and settings: read back from the cache
    code, _, err = cli(*argv, "--output_dir", tmp_path / "c", "--max_seq_length", "32")
    assert code == 0, err
    assert len(cached_features(cache)) == 4  # another length: new features, the old ones stay valid


def test_dataset_name_saved_folder_with_eval_on_test(tmp_path, cli, fast_args, tiny_model):
    ds = datasets.Dataset.from_dict(TRAIN)
    datasets.DatasetDict({"train": ds, "validation": ds.select(range(8)), "test": ds.select(range(30, 36))}
                         ).save_to_disk(str(tmp_path / "dd"))
    code, out, err = cli("--model_name_or_path", tiny_model, "--dataset_name", tmp_path / "dd", "--eval_on_test",
                         "--do_eval", "--output_dir", tmp_path / "o", "--cache_dir", tmp_path / "cache", *fast_args)
    assert code == 0, err
    assert json.loads((tmp_path / "o" / "eval_results.json").read_text())["eval_samples"] == 6


def test_data_flag_errors_are_one_line_and_write_nothing(tmp_path, cli, fast_args, tiny_model):
    pq.write_table(pa.table(TRAIN), tmp_path / "train.parquet")
    base = ["--model_name_or_path", tiny_model, "--output_dir", tmp_path / "o", "--cache_dir", tmp_path / "cache"]
    cases = [
        (["--train_file", tmp_path / "train.parquet", "--validation_ratio", "2"], "--validation_ratio"),
        (["--train_file", tmp_path / "train.parquet", "--validation_file", tmp_path / "train.parquet",
          "--validation_ratio", "0.1"], "has a validation split"),
        (["--train_file", tmp_path / "train.parquet", "--eval_on_test"], "--eval_on_test"),
        (["--dataset_name", "nyu-mll/glue", "--dataset_config_name", "sst2"], "could not be loaded"),
        (["--dataset_name", tmp_path, "--train_file", tmp_path / "train.parquet"], "--dataset_name"),
        (["--train_file", tmp_path / "train.parquet", "--preprocessing_num_workers", "0"],
         "--preprocessing_num_workers"),
    ]
    for extra, expected in cases:
        code, out, err = cli(*base, *extra, *fast_args)
        lines = [x for x in err.strip().splitlines() if x.startswith("error:")]
        assert code == 2 and len(lines) == 1 and expected in lines[0], (extra, err)
        assert not (tmp_path / "o").exists()
