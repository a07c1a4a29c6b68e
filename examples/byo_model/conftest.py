"""Load refbp's pytest plugin when its ``pytest11`` entry point has not already done so.

With refbp pip-installed the entry point registers the plugin in every pytest run and this file
is not needed; from a source checkout it loads ``refbp.pytest_plugin`` explicitly. Loading it
twice would be an error, hence the check.
"""

from __future__ import annotations

import os
from importlib.metadata import entry_points


def _autoloaded() -> bool:
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        return False
    return any(ep.value == "refbp.pytest_plugin" for ep in entry_points(group="pytest11"))


pytest_plugins = [] if _autoloaded() else ["refbp.pytest_plugin"]
