"""Provenance of a report: what produced these numbers, so any row can be reproduced.

Recorded: refbp, numpy, pandas, torch and Python versions, numpy's BLAS/LAPACK build, the CPU
model, the platform, the git commit of the working directory (if it is a git checkout), the
seeds, the start time and the wall time. No hostname and no user name are recorded. torch's
version is read from the installed package metadata, so collecting provenance never imports
torch.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import refbp
from refbp.versions import is_validated, package_version

PROVENANCE_KEYS: tuple[str, ...] = (
    "refbp", "numpy", "pandas", "torch", "torch_validated", "python", "platform", "cpu", "blas",
    "git_commit",
    "seeds", "started", "wall_time_s",
)


def blas_info() -> dict[str, Any]:
    """numpy's BLAS and LAPACK build (name, version, configuration) and its SIMD extensions."""
    try:
        config: Any = np.show_config(mode="dicts")  # numpy >= 1.26
    except TypeError:
        return {"blas": "unknown (numpy < 1.26 has no show_config(mode='dicts'))"}
    if not isinstance(config, dict):
        return {"blas": "unknown"}
    deps = config.get("Build Dependencies", {})
    out: dict[str, Any] = {}
    for lib in ("blas", "lapack"):
        info: dict[str, Any] = deps.get(lib, {})
        out[lib] = {k: str(info[k]) for k in ("name", "version", "openblas configuration")
                    if k in info}
    simd = config.get("SIMD Extensions", {})
    if "found" in simd:
        out["simd"] = [str(s) for s in simd["found"]]
    return out


def cpu_model() -> str:
    """The CPU model name (``/proc/cpuinfo`` on Linux, else ``platform``) and logical CPUs."""
    name = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        try:
            for line in cpuinfo.read_text(errors="replace").splitlines():
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    name = line.split(":", 1)[1].strip()
                    break
        except OSError:
            name = ""
    name = name or platform.processor() or platform.machine() or "unknown"
    return f"{name} ({os.cpu_count() or '?'} logical CPUs)"


def git_commit(cwd: str | os.PathLike[str] | None = None) -> str:
    """``<sha>`` (``<sha>-dirty`` with uncommitted changes) of the git checkout at ``cwd``.

    Returns ``'unknown'`` when git is missing or ``cwd`` is not in a repository. Read-only:
    ``GIT_OPTIONAL_LOCKS=0`` keeps ``git status`` from rewriting the index.
    """
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()

    try:
        sha = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def collect_provenance(*, seeds: list[int], started: datetime, wall_time_s: float,
                       extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything needed to reproduce a report, as a JSON-serialisable dict.

    Parameters
    ----------
    seeds : list of int
        The seeds of the scenarios in the report (each row also carries its own seed).
    started : datetime
        Start of the run; a naive datetime is taken as local time. Stored as ISO 8601.
    wall_time_s : float
        Wall time of the run in seconds.
    extra : dict, optional
        More entries (e.g. suite name, number of jobs); they must not reuse a key of
        ``PROVENANCE_KEYS`` and must be JSON-serialisable.
    """
    if not isinstance(started, datetime):
        raise TypeError(f"started must be a datetime, got {type(started).__name__}")
    if started.tzinfo is None:
        started = started.astimezone()
    prov: dict[str, Any] = {
        "refbp": refbp.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "torch": package_version("torch"),
        "torch_validated": is_validated(package_version("torch")),
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
        "cpu": cpu_model(),
        "blas": blas_info(),
        "git_commit": git_commit(),
        "seeds": sorted({int(s) for s in seeds}),
        "started": started.isoformat(timespec="seconds"),
        "wall_time_s": round(float(wall_time_s), 3),
    }
    clash = sorted(set(extra or {}) & set(prov))
    if clash:
        raise ValueError(f"extra provenance keys {clash} clash with the built-in keys "
                         f"{list(PROVENANCE_KEYS)}")
    prov.update(extra or {})
    try:
        json.dumps(prov)
    except TypeError as exc:
        raise TypeError(f"provenance must be JSON-serialisable: {exc}") from exc
    return prov
