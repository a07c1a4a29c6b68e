"""``python -m refbp.cli``: the ``refbp`` command."""

from __future__ import annotations

from refbp.cli import console_main

console_main()
