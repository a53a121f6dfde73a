"""argparse for the small CLIs: errors are one line (``error: ...``) and exit code 2."""

from __future__ import annotations

import argparse
import sys


class OneLineArgumentParser(argparse.ArgumentParser):
    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(allow_abbrev=False, **kwargs)

    def error(self, message: str):  # noqa: D401 - argparse API
        sys.stderr.write(f"error: {message} — run with --help to see the flags\n")
        sys.exit(2)
