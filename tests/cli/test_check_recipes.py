"""python -m sparsecore.cli.check_recipes: one line per recipe, a count, exit 0 / 1 / 2."""

import shutil
from pathlib import Path

import pytest

from sparsecore.cli.check_recipes import main

STYLE = Path(__file__).resolve().parents[1] / "recipe" / "sparseml_style"


def run(capsys, *argv):
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in argv])
    return info.value.code, capsys.readouterr()


def test_fixture_folder_all_load(capsys):
    code, out = run(capsys, STYLE)
    count = len(list(STYLE.iterdir()))
    assert code == 0 and out.out.strip().endswith(f"{count} of {count} recipes load")
    assert "ok    " in out.out and "LayerPruningModifier" in out.out and "2 stages" in out.out


def test_a_bad_recipe_is_named_and_exits_1(capsys, tmp_path):
    shutil.copy(STYLE / "staged.yaml", tmp_path / "good.yaml")
    (tmp_path / "new.yaml").write_text("s_stage:\n  m_modifiers:\n    SparseGPTModifier: {sparsity: 0.5}\n")
    code, out = run(capsys, tmp_path, "--quiet")
    assert code == 1 and "good.yaml" not in out.out
    assert "ERROR" in out.out and "newer SparseML / llm-compressor" in out.out and "1 of 2 recipes load" in out.out


def test_missing_path_is_one_error_line(capsys, tmp_path):
    code, out = run(capsys, tmp_path / "nope")
    assert code == 2 and out.err.startswith("error: no such file or folder")
