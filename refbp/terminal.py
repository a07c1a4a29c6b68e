"""What refbp prints: every control character that report data may carry is escaped.

Scenario names, error messages and explanations come from files (scenario files, reports,
the user's code) and may hold terminal escape sequences, carriage returns or bidirectional
overrides that would rewrite what a person sees. The ``refbp`` command prints through
:func:`sanitized_stdout` (``refbp.exit_codes.run_command``), which escapes them in everything
written to standard output, keeping only newlines and tabs; messages on standard error go
through ``refbp.errors.printable``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from refbp.errors import printable


def printable_text(text: str) -> str:
    r"""``text`` with every non-printable character escaped except newlines and tabs
    (``"a\x1b[2Jb\n"`` -> ``"a\\x1b[2Jb\n"``)."""
    if text.isprintable():
        return text
    return "\n".join("\t".join(printable(cell) for cell in line.split("\t"))
                     for line in text.split("\n"))


class SanitizedStream:
    """A text stream that writes :func:`printable_text` of everything to ``stream``."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(printable_text(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:  # flush, fileno, isatty, encoding, ...
        return getattr(self.stream, name)


@contextmanager
def sanitized_stdout() -> Iterator[None]:
    """Inside the block ``sys.stdout`` escapes control characters (see the module
    docstring)."""
    saved = sys.stdout
    sys.stdout = SanitizedStream(saved)  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout = saved
