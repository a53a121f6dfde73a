"""``--dataset_name`` / ``--dataset_config_name``: a whole dataset (several splits) through ``datasets``.

  a folder written by ``DatasetDict.save_to_disk``   → ``datasets.load_from_disk``
  any other local folder or a hub id                → ``datasets.load_dataset(name, config)`` (a folder of data
                                                      files; a hub dataset online, or from the cache offline)
Offline and not cached, a hub id is a one-line error naming the local ways to give the same data.
"""

from __future__ import annotations

from pathlib import Path

from sparsecore.errors import SparsecoreError
from sparsecore.tasks.tables import Table, content_key, first_line

LOCAL_WAYS = ("--glue_dir with --task_name, --train_file/--validation_file (csv, tsv, json, jsonl, parquet, arrow), "
              "or --dataset_name <folder written by save_to_disk>")


def load_splits(name: str, config: str | None, cache_dir: str | Path | None) -> dict[str, Table]:
    """Split name → :class:`Table` of dataset ``name`` (config ``config``)."""
    import datasets

    folder = Path(name).expanduser()
    flag = f"--dataset_name {name}" + (f" --dataset_config_name {config}" if config else "")
    try:
        if (folder / "dataset_dict.json").is_file():
            loaded = datasets.load_from_disk(str(folder))
        elif (folder / "state.json").is_file():
            loaded = datasets.DatasetDict({"train": datasets.load_from_disk(str(folder))})
        else:
            loaded = datasets.load_dataset(name, config, cache_dir=None if cache_dir is None else str(cache_dir))
    except OSError as e:  # offline and not cached, not found (datasets' errors are ConnectionError/FileNotFoundError)
        raise SparsecoreError(f"dataset {name!r} could not be loaded ({first_line(e, 200)})", flag,
                              f"check the name; without the hub, give the data locally: {LOCAL_WAYS}") from None
    except ValueError as e:  # a config name the dataset does not have, files it cannot read
        raise SparsecoreError(f"cannot load dataset {name!r}: {first_line(e, 200)}", flag,
                              "check --dataset_config_name and the dataset's files") from None
    if not isinstance(loaded, datasets.DatasetDict):
        loaded = datasets.DatasetDict({"train": loaded})
    return {split: Table(ds, _key(name, config, split, ds)) for split, ds in loaded.items()}


def _key(name: str, config: str | None, split: str, ds) -> str:
    return content_key(name, config, split, getattr(ds, "_fingerprint", None), len(ds))
