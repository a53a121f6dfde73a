"""The one error type users see.

Every user-facing failure (bad recipe, missing file, unknown column, ...) is a
``SparsecoreError``. Its message is a single line of the form
``<what> (<where>) — <how to fix>``; the CLI prints it as ``error: ...`` and exits 2.
Anything else escaping to the CLI is a bug and keeps its traceback.
"""

from __future__ import annotations


# control characters (a newline in a column name, say) are shown escaped, so a message is always one line
_ESCAPES = {c: repr(chr(c))[1:-1] for c in (*range(32), 127, 0x85, 0x2028, 0x2029)}


class SparsecoreError(Exception):
    """A user error: what is wrong, where, and how to fix it."""

    def __init__(self, what: str, where: str = "", fix: str = "") -> None:
        self.what, self.where, self.fix = what, where, fix
        msg = what
        if where:
            msg += f" ({where})"
        if fix:
            msg += f" — {fix}"
        super().__init__(msg.translate(_ESCAPES))
