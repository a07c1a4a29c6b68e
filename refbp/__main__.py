"""``python -m refbp``: the ``refbp`` command."""

from __future__ import annotations

import sys

from refbp.cli import main

sys.exit(main())
