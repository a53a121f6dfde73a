"""Run a deployed classifier over a file of texts and write predictions.

    python -m sparsecore.cli.predict --model_path out/sst2-gmp80/deployment --input reviews.txt --output preds.jsonl

Input: .txt (one text per line), .csv/.tsv (column --text_column, and --text_pair_column for pairs),
.json/.jsonl (same keys), .parquet, .arrow, or a ``datasets.Dataset.save_to_disk`` folder.
Output: JSON lines {"text": ..., "label": ..., "score": ...} (plus "labels" with
--top_k > 1), in the input's order. Long inputs are truncated to the sequence length.

The input is streamed: a .txt file line by line, the other formats through their memory-mapped Arrow table
(:func:`sparsecore.tasks.tables.open_table`), ``--chunk_size`` rows at a time, so memory does not grow with the
file. Results are written as they come to ``<output>.partial``, renamed to ``--output`` when every row is done.
``--num_workers N`` runs N chunks at once on one copy of the weights (the Pipeline's streams).
"""

from __future__ import annotations

import json
import sys
from collections import deque
from pathlib import Path
from typing import Iterator

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
    if path.suffix.lower() == ".txt":  # read as the streaming reader reads it: lines end at \n, \r\n or \r only
        return [text for batch in _text_lines(path, 1 << 16) for text in batch]
    return _columns(read_table(path), path, column, pair_column)


def stream_texts(path: Path, column: str, pair_column: str | None, chunk: int) -> tuple[int | None, Iterator[list]]:
    """``(rows or None when unknown, chunks of up to chunk texts or pairs)`` of the input, read lazily."""
    if path.is_file() and path.suffix.lower() == ".txt":
        return None, _text_lines(path, chunk)
    if not path.exists():
        raise SparsecoreError("input file not found", str(path), "check the path")
    table = open_table(path, cache_root(None)).ds
    _columns(table.select(range(min(1, len(table)))), path, column, pair_column)  # the columns exist
    names = [column] + ([pair_column] if pair_column else [])

    def chunks() -> Iterator[list]:
        for start in range(0, len(table), chunk):
            part = table[start:start + chunk]
            yield [[str(a), str(b)] for a, b in zip(*(part[n] for n in names))] if pair_column else \
                [str(t) for t in part[column]]
    return len(table), chunks()


def _text_lines(path: Path, chunk: int) -> Iterator[list]:
    """The non-blank lines of a UTF-8 text file, ``chunk`` at a time. Lines end at \\n, \\r\\n or \\r (a Unicode
    line separator or form feed inside a text stays in it)."""
    try:
        with path.open(encoding="utf-8") as lines:
            batch, seen = [], False
            for line in lines:
                line = line.rstrip("\n")
                if line.strip():
                    batch.append(line)
                    seen = True
                    if len(batch) == chunk:
                        yield batch
                        batch = []
            if batch:
                yield batch
            if not seen:
                raise SparsecoreError("input file has no text lines", str(path), "one text per line")
    except UnicodeDecodeError as exc:
        raise SparsecoreError(f"not UTF-8 text (byte {exc.start})", str(path), "save the file as UTF-8") from None


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
    p.add_argument("--num_workers", type=int, default=1, help="chunks run at once (the Pipeline's streams)")
    p.add_argument("--chunk_size", type=int, default=1024, help="rows read, predicted and written at a time")
    args = p.parse_args(argv)
    with user_errors():
        if args.output.is_dir():
            raise SparsecoreError("--output is a folder", str(args.output), "give a file path such as preds.jsonl")
        for name in ("num_workers", "chunk_size"):
            if getattr(args, name) < 1:
                raise SparsecoreError(f"--{name} is {getattr(args, name)}", f"--{name}", "use 1 or more")
        check_writable(args.output, f"--output {args.output}")
        total, chunks = stream_texts(args.input, args.text_column, args.text_pair_column, args.chunk_size)
        pipe = Pipeline.create(model_path=args.model_path, engine=args.engine, batch_size=args.batch_size,
                               sequence_length=args.sequence_length, num_streams=args.num_workers)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        partial = args.output.with_name(args.output.name + ".partial")
        written = 0
        try:
            with partial.open("w", encoding="utf-8") as out, tqdm(total=total, desc="predict", unit="row",
                                                                  file=sys.stderr) as bar:
                pending: deque = deque()
                for chunk in chunks:
                    pending.append((chunk, pipe.submit(chunk, top_k=args.top_k)))
                    while len(pending) > 2 * args.num_workers or (pending and pending[0][1].done()):
                        written += _write(out, *pending.popleft(), args.top_k, bar)
                while pending:
                    written += _write(out, *pending.popleft(), args.top_k, bar)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(args.output)
    sys.stderr.write(f"wrote {written} predictions to {args.output}\n")


def _write(out, chunk: list, future, top_k: int, bar) -> int:
    """One chunk's rows, in order."""
    for text, labels in zip(chunk, future.result()):
        labels = labels if isinstance(labels, list) else [labels]
        row = {"text": text, "label": labels[0]["label"], "score": labels[0]["score"]}
        out.write(json.dumps(row | ({"labels": labels} if top_k > 1 else {})) + "\n")
    bar.update(len(chunk))
    return len(chunk)


if __name__ == "__main__":
    main()
