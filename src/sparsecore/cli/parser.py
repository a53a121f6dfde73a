"""One-line user errors for every CLI: ``error: <what> (<where>) — <fix>`` on stderr, exit code 2."""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from typing import Iterator

from sparsecore.errors import SparsecoreError


def fail(message: str):
    stream = sys.stderr
    newline = "" if getattr(stream, "at_line_start", True) else "\n"  # a progress bar may be mid-line
    stream.write(f"{newline}error: {message}\n")
    sys.exit(2)


class _LineTracker:
    """stderr, remembering whether the last thing written ended a line (tqdm bars end with ``\r…`` instead)."""

    def __init__(self, stream) -> None:
        self._stream, self.at_line_start = stream, True

    def write(self, text: str) -> int:
        if text:
            self.at_line_start = text.endswith("\n")
        return self._stream.write(text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a :class:`SparsecoreError` raised inside the block into one ``error:`` line (on a line of its own)
    and exit 2."""
    original = sys.stderr
    sys.stderr = _LineTracker(original)
    try:
        yield
    except SparsecoreError as exc:
        fail(str(exc))
    finally:
        sys.stderr = original


class OneLineErrors:
    """argparse mixin: a parse error is one line (the usage block of HF's parser is hundreds of flags)."""

    def error(self, message: str):  # noqa: D401 - argparse API
        fail(f"{message} — run with --help to see the flags")


class OneLineArgumentParser(OneLineErrors, argparse.ArgumentParser):
    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(allow_abbrev=False, **kwargs)
