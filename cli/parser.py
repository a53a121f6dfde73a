"""One-line user errors for every CLI: ``error: <what> (<where>) — <fix>`` on stderr, exit code 2."""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from typing import Iterator

from sparsecore.errors import SparsecoreError


def fail(message: str):
    sys.stderr.write(f"error: {message}\n")
    sys.exit(2)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a :class:`SparsecoreError` raised inside the block into one ``error:`` line and exit 2."""
    try:
        yield
    except SparsecoreError as exc:
        fail(str(exc))


class OneLineErrors:
    """argparse mixin: a parse error is one line (the usage block of HF's parser is hundreds of flags)."""

    def error(self, message: str):  # noqa: D401 - argparse API
        fail(f"{message} — run with --help to see the flags")


class OneLineArgumentParser(OneLineErrors, argparse.ArgumentParser):
    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(allow_abbrev=False, **kwargs)
