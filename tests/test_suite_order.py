"""The suite's scheduling list (conftest.LONG_FILES) names files that exist, and they are collected first."""

from pathlib import Path

from conftest import LONG_FILES, pytest_collection_modifyitems

ROOT = Path(__file__).resolve().parents[1]


def test_long_files_exist():
    missing = [name for name in LONG_FILES if not (ROOT / name).is_file()]
    assert not missing, f"conftest.LONG_FILES names files that do not exist: {missing}"


def test_long_files_go_first_and_the_rest_keep_their_order():
    class Item:
        def __init__(self, nodeid):
            self.nodeid = nodeid

    names = ["tests/a.py::t1", f"{LONG_FILES[1]}::x", "tests/b.py::t2", f"{LONG_FILES[0]}::y", "tests/a.py::t3",
             f"{LONG_FILES[1]}::z"]
    items = [Item(n) for n in names]
    pytest_collection_modifyitems(None, items)
    assert [i.nodeid for i in items] == [names[3], names[1], names[5], names[0], names[2], names[4]]
