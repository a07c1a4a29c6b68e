"""Error classes shared by the library and the ``refbp`` command, and message hygiene.

:class:`UsageError` marks an error in what the user gave (a flag, a file, a scenario, their
own code, an output path): the command prints it as one line ``refbp: error: ...`` and exits
with code 2, never with a traceback. Library errors of that nature subclass it alongside the
built-in class callers already catch (``ScenarioFileError`` is also a ``ValueError``,
``ReportWriteError`` an ``OSError``, ``UserCodeError`` a ``ValueError``).
"""

from __future__ import annotations


class UsageError(Exception):
    """An error in the user's input; ``refbp`` prints its message and exits with code 2."""


class LimitError(UsageError, ValueError):
    """A size beyond a stated limit of ``refbp.limits`` (lifted with ``--allow-large``)."""


class UnsupportedOpError(UsageError, TypeError):
    """A captured graph (``torch.export``) uses an ATen operator refbp does not declare; the
    message names the operator, the graph node, the user's source line and what is supported."""


def printable(text: str) -> str:
    r"""``text`` with every non-printable character escaped (``"a\x1bb"`` -> ``"a\\x1bb"``).

    Names and messages that reach a terminal or a report go through this, so control
    characters (terminal escapes, carriage returns) cannot rewrite what is shown.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)
