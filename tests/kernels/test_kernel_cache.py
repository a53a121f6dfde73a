"""The in-tree Numba cache is dropped when any kernel source changes (Numba itself only checks a kernel's own file)."""

import os

from sparsecore.kernels._config import STAMP, drop_stale_cache


def test_cache_is_dropped_when_a_source_changes_and_kept_otherwise(tmp_path):
    (tmp_path / "tiles.py").write_text("WIDTH = 64\n")
    (tmp_path / "driver.py").write_text("from tiles import WIDTH\n")
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    compiled = [cache / "driver._linear-10.py311.nbi", cache / "driver._linear-10.py311.1.nbc"]
    for path in compiled:
        path.write_bytes(b"old machine code")
    other = cache / "tiles.cpython-311.pyc"
    other.write_bytes(b"bytecode")
    assert drop_stale_cache(tmp_path)  # no stamp yet: whatever is there may be stale
    assert not any(p.exists() for p in compiled) and other.exists() and (cache / STAMP).is_file()
    for path in compiled:
        path.write_bytes(b"new machine code")
    assert not drop_stale_cache(tmp_path)  # same sources: the cache stays
    assert all(p.exists() for p in compiled)
    (tmp_path / "tiles.py").write_text("WIDTH = 32\n")  # only the inlined module changes
    assert drop_stale_cache(tmp_path)
    assert not any(p.exists() for p in compiled) and other.exists()
    assert not [p for p in os.listdir(cache) if p.startswith(f"{STAMP}.")]  # no partial stamp left behind


def test_a_folder_without_a_cache_gets_one_and_an_unwritable_one_is_left_alone(tmp_path):
    (tmp_path / "k.py").write_text("X = 1\n")
    assert not drop_stale_cache(tmp_path) and (tmp_path / "__pycache__" / STAMP).is_file()
    (tmp_path / "k.py").write_text("X = 2\n")
    blocker = tmp_path / "__pycache__"
    for path in blocker.iterdir():
        path.unlink()
    blocker.rmdir()
    blocker.write_text("a file where the cache folder would be")  # mkdir fails: nothing raised
    assert not drop_stale_cache(tmp_path)
