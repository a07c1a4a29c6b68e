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

from refbp.cli.commands import console_main, main

__all__ = ["console_main", "main"]
