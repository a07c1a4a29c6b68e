"""The part store of a sweep: one Parquet file per finished scenario, trusted only once checked.

A store is a hidden directory beside the report (``.<report name>.parts/``, see
:func:`part_store_for`). Its files are named by a part *key*: the scenario key of
``refbp.parity.sweep.scenario_key`` (32 hex digits), or ``<xdist worker>-<n>`` for the checks
of the pytest plugin's workers. Every part carries a record in its Parquet metadata
(``refbp.part``): its key and a digest of its rows.

What refbp does and does not do with a store:

- It never follows a symlink: a store that is a symlink, or an entry named as a part that is
  not a regular file (a symlink, a directory), is refused with :class:`PartStoreError`
  before anything runs (:meth:`PartStore.check`).
- A part is trusted only after :meth:`PartStore.load` checked it: readable Parquet, refbp's
  record with the expected key, the digest of its rows, the results schema
  (``refbp.report.schema``), and rows of the expected scenario, suite, dtype and seed. A part
  that fails is run again (``refbp run --resume`` says so in one line).
- It deletes only what it wrote (:meth:`PartStore.clear`): the parts it knows, other files
  named as parts only when they carry refbp's record, and its own temporary files; anything
  else stays, and so does the directory holding it.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from refbp.errors import UsageError

PART_KEY = re.compile(r"[0-9a-f]{32}|gw\d+-\d+")
"""A part's key: a scenario key, or an xdist worker's check number (``gw0-000001``)."""
_PART_FILE = re.compile(rf"(?:{PART_KEY.pattern})\.parquet")
_TEMP_FILE = re.compile(rf"\.(?:{PART_KEY.pattern})\.[A-Za-z0-9_]+\.tmp")
RECORD = b"refbp.part"
"""Parquet metadata key of a part's record: ``{"key": ..., "digest": ...}`` as JSON."""


class PartStoreError(UsageError, ValueError):
    """A part store refbp must not use (a symlink, a foreign entry) or could not write."""


class InvalidPart(Exception):
    """A stored part that cannot be trusted; the message says why."""


@dataclass(frozen=True)
class Expected:
    """What every row of a scenario's part holds."""

    scenario: str
    suite: str
    dtype: str
    seed: int


def _digest(frame: pd.DataFrame) -> str:
    """A digest of the rows (values and column names, not the dtypes' spelling)."""
    h = hashlib.sha256("\x1f".join(map(str, frame.columns)).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()


def _record(table: pa.Table) -> dict[str, str] | None:
    raw = (table.schema.metadata or {}).get(RECORD)
    try:
        record = json.loads(raw) if raw is not None else None
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    raise AssertionError("unreachable")  # pragma: no cover


def free_space(directory: Path) -> str:
    """The free space of the file system holding ``directory`` (or its nearest existing
    ancestor), e.g. ``"0 B"`` or ``"1.5 GB"``; ``"unknown"`` when it cannot be measured."""
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        return _size(shutil.disk_usage(existing).free)
    except OSError:
        return "unknown"


def write_failure(what: str, directory: Path, exc: OSError) -> str:
    """``cannot write WHAT to DIR: REASON (N free there)``: the message of a failed write."""
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        reason += f" ({free_space(directory)} free there)"
    return f"cannot write {what} to {directory}: {reason}"


class PartStore:
    """One Parquet file per finished scenario, named by its key; writes are atomic."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.parquet"

    def check(self) -> None:
        """Refuse a store refbp must not use (:class:`PartStoreError`): a symlink, a path that
        is not a directory, or an entry named as a part that is not a regular file."""
        d = self.directory
        if d.is_symlink():
            raise PartStoreError(f"the part store {d} is a symlink; refbp never follows one "
                                 "(it would write where the link points): remove the link")
        if not d.exists():
            return
        if not d.is_dir():
            raise PartStoreError(f"the part store {d} exists and is not a directory; move it "
                                 "away (refbp deletes only what it wrote)")
        with os.scandir(d) as entries:
            for entry in entries:
                if _PART_FILE.fullmatch(entry.name) and not entry.is_file(follow_symlinks=False):
                    what = ("a symlink" if entry.is_symlink() else "a directory"
                            if entry.is_dir(follow_symlinks=False) else "not a regular file")
                    raise PartStoreError(
                        f"{d / entry.name} is {what}, not a part refbp wrote; remove it "
                        "(refbp neither follows symlinks nor deletes what it did not write)")

    def has(self, key: str) -> bool:
        """True when a regular file is stored under ``key`` (see :meth:`load` for trust)."""
        try:
            return stat.S_ISREG(os.lstat(self.path(key)).st_mode)
        except OSError:
            return False

    def keys(self) -> list[str]:
        """The keys of the parts in the store, sorted."""
        if self.directory.is_symlink() or not self.directory.is_dir():
            return []
        return sorted(p.name.removesuffix(".parquet") for p in self.directory.iterdir()
                      if _PART_FILE.fullmatch(p.name) and self.has(p.stem))

    def write(self, key: str, frame: pd.DataFrame) -> None:
        """Store ``frame`` as the part of ``key`` with its record (temporary file + rename)."""
        if not PART_KEY.fullmatch(key):
            raise ValueError(f"invalid part key {key!r}: expected {PART_KEY.pattern}")
        table = pa.Table.from_pandas(frame, preserve_index=False)
        record = {"key": key, "digest": _digest(table.to_pandas())}
        table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                               RECORD: json.dumps(record).encode()})
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=self.directory)
        os.close(fd)
        try:
            pq.write_table(table, tmp)
            os.replace(tmp, self.path(key))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def read(self, key: str) -> pd.DataFrame:
        """The rows of the part of ``key`` (a part checked by :meth:`load` or written now)."""
        return pd.read_parquet(self.path(key))

    def load(self, key: str, expected: Expected) -> pd.DataFrame:
        """The rows of the part of ``key`` once checked (see the module docstring); raises
        :class:`InvalidPart` saying what is wrong."""
        from refbp.report.schema import coerce_results

        if not self.has(key):
            raise InvalidPart("it is missing or not a regular file")
        try:
            table = pq.read_table(self.path(key))
        except (OSError, pa.ArrowException) as exc:  # truncated, or not Parquet at all
            raise InvalidPart("it is not a readable Parquet file") from exc
        record = _record(table)
        if record is None:
            raise InvalidPart("it has no record of refbp's: refbp did not write it")
        if record.get("key") != key:
            raise InvalidPart(f"it was written for another scenario (key {record.get('key')})")
        frame = table.to_pandas()
        if record.get("digest") != _digest(frame):
            raise InvalidPart("its rows changed after refbp wrote them")
        try:
            coerced = coerce_results(frame)
        except ValueError as exc:
            raise InvalidPart(f"it is not a results table: {exc}") from exc
        if coerced.empty:
            raise InvalidPart("it holds no row")
        for column in ("scenario", "suite", "dtype", "seed"):
            want = getattr(expected, column)
            got = sorted(set(coerced[column].tolist()))
            if got != [want]:
                raise InvalidPart(f"its rows hold {column} {got}, expected {want!r}")
        return frame

    def _ours(self, path: Path, known: set[str]) -> bool:
        """True for a regular file refbp wrote: a known part, a part with refbp's record, or
        one of its temporary files."""
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
        if _TEMP_FILE.fullmatch(path.name):
            return True
        if not _PART_FILE.fullmatch(path.name):
            return False
        if path.stem in known:
            return True
        try:
            return RECORD in (pq.read_schema(path).metadata or {})
        except (OSError, pa.ArrowException):
            return False

    def clear(self, known: Iterable[str] = ()) -> None:
        """Delete the files refbp wrote (``known`` keys are its own without a look; other
        parts only with refbp's record), then the directory when nothing else is left."""
        d = self.directory
        if d.is_symlink() or not d.is_dir():
            return
        keys = set(known)
        for path in list(d.iterdir()):
            try:
                if self._ours(path, keys):
                    path.unlink()
            except FileNotFoundError:
                continue
        try:
            d.rmdir()
        except OSError:  # it holds something refbp did not write: that stays
            pass


def part_store_for(out_dir: Path) -> PartStore:
    """The part store of a report directory: a hidden sibling ``.<name>.parts``."""
    out = out_dir.absolute()
    return PartStore(out.parent / f".{out.name}.parts")
