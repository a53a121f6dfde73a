"""Run a deployed classifier over a file of texts and write predictions.

    python -m sparsecore.cli.predict --model_path out/sst2-gmp80/deployment --input reviews.txt --output preds.jsonl

Input: .txt (one text per line), .csv/.tsv (column --text_column, and --text_pair_column for pairs),
.json/.jsonl (same keys), .parquet, .arrow, or a ``datasets.Dataset.save_to_disk`` folder.
Output: JSON lines {"text": ..., "label": ..., "score": ...} (plus "labels" with
--top_k > 1). Long inputs are truncated to the sequence length.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tqdm import tqdm

from sparsecore.cli.parser import OneLineArgumentParser, user_errors
from sparsecore.deploy import Pipeline
from sparsecore.deploy.engines import ENGINES
from sparsecore.errors import SparsecoreError
from sparsecore.file_checks import check_writable
from sparsecore.tasks import read_table
from sparsecore.tasks.tables import cache_root, open_table


def read_texts(path: Path, column: str, pair_column: str | None) -> list:
    if path.is_dir() or path.suffix.lower() in (".parquet", ".arrow"):
        return _columns(open_table(path, cache_root(None)).ds, path, column, pair_column)
    if not path.is_file():
        raise SparsecoreError("input file not found", str(path), "check the path")
    if path.suffix == ".txt":
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as exc:
            raise SparsecoreError(f"not UTF-8 text (byte {exc.start})", str(path), "save the file as UTF-8") from None
        texts = [line for line in lines if line.strip()]
        if not texts:
            raise SparsecoreError("input file has no text lines", str(path), "one text per line")
        return texts
    return _columns(read_table(path), path, column, pair_column)


def _columns(table, path: Path, column: str, pair_column: str | None) -> list:
    """The text (or text-pair) column of a dict of columns or a ``datasets.Dataset``."""
    names = list(table.column_names if hasattr(table, "column_names") else table)
    for name in filter(None, (column, pair_column)):
        if name not in names:
            raise SparsecoreError(f"no column {name!r}", str(path), f"columns: {', '.join(names)}")
    if pair_column:
        return [[str(a), str(b)] for a, b in zip(table[column], table[pair_column])]
    return [str(t) for t in table[column]]


def main(argv: list[str] | None = None) -> None:
    p = OneLineArgumentParser(prog="python -m sparsecore.cli.predict", description=__doc__)
    p.add_argument("--model_path", required=True)
    p.add_argument("--input", required=True, type=Path)
    p.add_argument("--output", required=True, type=Path)
    p.add_argument("--text_column", default="text")
    p.add_argument("--text_pair_column", default=None)
    p.add_argument("--engine", default="onnxruntime", choices=ENGINES)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--sequence_length", type=int, default=None)
    p.add_argument("--top_k", type=int, default=1)
    args = p.parse_args(argv)
    with user_errors():
        if args.output.is_dir():
            raise SparsecoreError("--output is a folder", str(args.output), "give a file path such as preds.jsonl")
        check_writable(args.output, f"--output {args.output}")
        texts = read_texts(args.input, args.text_column, args.text_pair_column)
        pipe = Pipeline.create(model_path=args.model_path, engine=args.engine, batch_size=args.batch_size,
                               sequence_length=args.sequence_length)
        rows = []
        for i in tqdm(range(0, len(texts), args.batch_size), desc="predict", unit="batch", file=sys.stderr):
            chunk = texts[i:i + args.batch_size]
            for text, labels in zip(chunk, pipe(chunk, top_k=args.top_k)):
                row = {"text": text, "label": labels[0]["label"], "score": labels[0]["score"]}
                rows.append(row | ({"labels": labels} if args.top_k > 1 else {}))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    sys.stderr.write(f"wrote {len(rows)} predictions to {args.output}\n")


if __name__ == "__main__":
    main()
