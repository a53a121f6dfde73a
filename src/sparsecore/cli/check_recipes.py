"""``python -m sparsecore.cli.check_recipes PATH...``: which SparseML recipes load, and why the others do not.

A migration aid: give recipe files (``.yaml``/``.yml``/``.md``) or folders of them; each is loaded as
``--recipe`` would load it (nothing is trained) and reported on one line — ``ok`` with its modifiers,
or the one-line error. Exit code 0 when every recipe loads, 1 otherwise, 2 on bad arguments.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from sparsecore.cli.parser import OneLineArgumentParser, user_errors
from sparsecore.errors import SparsecoreError
from sparsecore.recipe import load_recipe

SUFFIXES = (".yaml", ".yml", ".md")


def recipe_files(paths: list[str]) -> list[Path]:
    files = []
    for name in paths:
        path = Path(name).expanduser()
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
        elif path.is_file():
            files.append(path)
        else:
            raise SparsecoreError("no such file or folder", name, "pass recipe files or folders holding them")
    if not files:
        raise SparsecoreError("no .yaml/.yml/.md recipe found", " ".join(paths), "pass recipe files or folders")
    return files


def check(path: Path) -> tuple[bool, str]:
    try:
        recipe = load_recipe(str(path))
    except SparsecoreError as exc:
        return False, str(exc)
    tags = Counter(m.tag for m in recipe.modifiers)
    stages = f", {len(set(recipe.stages))} stages" if recipe.staged else ""
    return True, ", ".join(f"{n}×{t}" if n > 1 else t for t, n in tags.items()) + stages


def main(argv: list[str] | None = None) -> None:
    parser = OneLineArgumentParser(prog="python -m sparsecore.cli.check_recipes", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="recipe files or folders")
    parser.add_argument("--quiet", action="store_true", help="print only the recipes that fail, and the summary")
    args = parser.parse_args(argv)
    with user_errors():
        files = recipe_files(args.paths)
    failed = 0
    for path in files:
        ok, message = check(path)
        failed += not ok
        if not (ok and args.quiet):
            print(f"{'ok   ' if ok else 'ERROR'} {path}: {message}")
    print(f"{len(files) - failed} of {len(files)} recipes load")
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
