"""The ``refbp`` command line: the one face of refbp that parses arguments and sets exit codes.

It sits on top of the library packages and no library package imports it:

- :mod:`refbp.cli.commands`: the parser, ``run``, ``list``, ``compare``, ``merge``,
  ``baseline``, ``report``, ``example`` and :func:`main` / :func:`console_main`;
- :mod:`refbp.cli.diagnose`: ``check-optimizer``, ``check-layer`` and ``check-loss`` (explain
  mode, :mod:`refbp.diagnose`);
- :mod:`refbp.cli.argtypes` (checked flag values), :mod:`refbp.cli.outputs` (``--out`` and
  output files checked before any work) and :mod:`refbp.cli.config` (``[tool.refbp]`` in
  ``pyproject.toml``).

``refbp`` (the console script), ``python -m refbp`` and ``python -m refbp.cli`` all run
:func:`console_main`. Building the parser imports no heavy package (pandas, torch,
matplotlib, pyarrow): every subcommand imports what it needs when it runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from refbp.exit_codes import EXIT_INTERRUPTED, error, exit_process

if TYPE_CHECKING:
    from refbp.cli.commands import main

__all__ = ["console_main", "main"]


def console_main() -> NoReturn:
    """The ``refbp`` command (:func:`refbp.cli.commands.console_main`).

    Importing the package is light on purpose: a Ctrl-C that arrives while Python still
    imports refbp's modules (NumPy, pandas: up to seconds on a loaded machine), before the
    command's own handler is in place, ends the command as one later does: "refbp:
    interrupted", exit code 130, no traceback.
    """
    try:
        from refbp.cli import commands

        commands.console_main()
    except KeyboardInterrupt:
        error("interrupted")
        exit_process(EXIT_INTERRUPTED)


def __getattr__(name: str) -> Any:
    """``refbp.cli.main``, imported when first used (see :func:`console_main`)."""
    if name == "main":
        from refbp.cli.commands import main

        return main
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
