"""MkDocs hook: Sphinx cross-reference roles in docstrings (``:class:`Recipe```) render as plain code.

mkdocstrings renders docstrings as Markdown, where a role would show up literally as ``:class:`` before the
code span; this drops the role and keeps the code span (``~`` prefixes, which shorten a dotted name to its
last part in Sphinx, are applied too).
"""

from __future__ import annotations

import re

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|data|attr|obj|exc):<code>(~?)([^<]*)</code>")


def _name(match: re.Match) -> str:
    tilde, name = match.groups()
    return f"<code>{name.rsplit('.', 1)[-1] if tilde else name}</code>"


def on_page_content(html: str, *, page, config, files) -> str:
    return ROLE.sub(_name, html)
