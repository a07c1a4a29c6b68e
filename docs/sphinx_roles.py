"""A griffe extension for the API reference: the docstrings' Sphinx roles as Markdown code.

refbp's docstrings name other objects the Sphinx way (``:func:`assert_parity```,
``:class:`~refbp.verdict.Verdict```); mkdocstrings renders Markdown, where the role would show
as text. This turns each into inline code of the name (``~`` keeps its last part, as Sphinx
shows it). mkdocs.yml loads it (``extensions:`` of the python handler).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:func|class|meth|mod|attr|data|exc|obj|math):`(~?)([^`]+)`")


def plain(text: str) -> str:
    """``text`` with every Sphinx role replaced by inline code of its target."""
    return ROLE.sub(lambda m: f"`{m.group(2).rsplit('.', 1)[-1] if m.group(1) else m.group(2)}`",
                    text)


class SphinxRoles(griffe.Extension):
    """Rewrite the roles of every docstring of a package once it is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        stack: list[griffe.Object] = [pkg]
        while stack:
            obj = stack.pop()
            if obj.docstring is not None:
                obj.docstring.value = plain(obj.docstring.value)
            stack.extend(m for m in obj.members.values() if not m.is_alias)
