"""Write, load and re-render report directories.

A report directory holds the files of its formats (``refbp.report.formats``: by default
``results.parquet`` -- the tidy table, provenance JSON also in the Parquet key-value metadata
under ``refbp.provenance`` --, ``results.csv``, ``summary.md``, ``report.html``) and
``provenance.json``.

Atomicity: ``write_report`` builds the whole directory in a hidden temporary sibling
(``.<name>.tmp-*``), then swaps it in with renames: old directory -> hidden backup, new ->
``out_dir``, backup deleted. Readers therefore see either the previous complete report or the
new complete report (or, only inside the instant between the two renames, no directory); a
failure while writing deletes the temporary directory and leaves the previous report
untouched. An existing ``out_dir`` is only replaced when it is empty or holds nothing but a
previous refbp report -- recognised by its provenance (a ``provenance.json`` written by refbp),
every entry being one of ``REPORT_FILES`` -- so ``--out`` can never wipe an unrelated directory.
:func:`check_report_target` makes the same check without writing, so callers can refuse an
unusable output before any work is done.
Loading never unpickles: Parquet via pyarrow, JSON via ``json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from refbp.errors import UsageError
from refbp.report.digest import Digest, combine, digest
from refbp.report.formats import (
    FORMAT_NAMES,
    PROVENANCE,
    REPORT_FILES,
    REPORT_FORMATS,
    ReportFormat,
    get_format,
)
from refbp.report.schema import coerce_results
from refbp.report.validate import ReportFormatError, check_values

PARQUET = get_format("parquet").file
CSV = get_format("csv").file
PROVENANCE_KEY = b"refbp.provenance"
PROVENANCE_KEYS: tuple[str, ...] = ("refbp",)
"""Keys every provenance written by ``write_report`` carries (``refbp``: the version); how a
report directory is recognised."""
_MAX_PROVENANCE = 1 << 20


class ReportWriteError(UsageError, OSError):
    """A report could not be written (unwritable or unsuitable output directory)."""


def umask_mode(base: int) -> int:
    """``base`` masked by the process umask (tempfile creates private 0o700/0o600 entries)."""
    umask = os.umask(0)
    os.umask(umask)
    return base & ~umask


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8", newline="\n")


FORMATS = FORMAT_NAMES
"""The names of the report formats (``refbp.report.formats``)."""
RENDERED: tuple[ReportFormat, ...] = tuple(f for f in REPORT_FORMATS if f.renderer is not None)
"""The formats rendered from the table's digest (the others are the table itself)."""

CSV_DEFAULT_MAX_ROWS = 10_000
"""Above this many rows the CSV (about 450 bytes a row, the Parquet file's 9x) is only written
when asked for with ``formats``."""
ROW_GROUP_ROWS = 1 << 15
"""When a table is written part by part, consecutive parts are gathered into batches of about
this many rows; each batch is validated, digested and written as one Parquet row group."""


def parse_formats(text: str) -> tuple[str, ...]:
    """``"parquet,md"`` -> ``("parquet", "md")``; ValueError naming an unknown format."""
    names = tuple(dict.fromkeys(p.strip().lower() for p in text.split(",") if p.strip()))
    unknown = [n for n in names if n not in FORMATS]
    if unknown or not names:
        raise ValueError(f"unknown report format(s) {', '.join(unknown) or repr(text)}; "
                         f"choose from {', '.join(FORMATS)}")
    return names


class _TableFiles:
    """``results.parquet`` (and, while wanted, ``results.csv``) written batch by batch, one
    Parquet row group per batch."""

    def __init__(self, out: Path, provenance: dict[str, Any], csv: bool | None) -> None:
        self.out, self.provenance, self.csv = out, provenance, csv
        self.schema: pa.Schema | None = None
        self.writers: dict[str, pq.ParquetWriter | pacsv.CSVWriter] = {}
        self.rows = 0

    def write(self, df: pd.DataFrame) -> None:
        """Append the rows of ``df`` (a validated batch)."""
        table = pa.Table.from_pandas(df, preserve_index=False)
        if self.schema is None:
            meta = dict(table.schema.metadata or {})
            meta[PROVENANCE_KEY] = json.dumps(self.provenance).encode("utf-8")
            self.schema = table.schema.with_metadata(meta)
            self.writers["parquet"] = pq.ParquetWriter(self.out / PARQUET, self.schema)
        elif table.schema.names != self.schema.names:
            raise ValueError("parts of the results have different columns: "
                             f"{table.schema.names} vs {self.schema.names}")
        table = table.cast(self.schema)
        self.writers["parquet"].write_table(table)
        self.rows += len(df)
        # CSV: when asked for, or by default only while the table stays small
        if self.csv is None and self.rows > CSV_DEFAULT_MAX_ROWS:
            self.csv = False
            if "csv" in self.writers:
                self.writers.pop("csv").close()
                (self.out / CSV).unlink()
        if self.csv is not False:
            if "csv" not in self.writers:
                self.writers["csv"] = pacsv.CSVWriter(
                    self.out / CSV, self.schema,
                    write_options=pacsv.WriteOptions(quoting_style="needed"))
            self.writers["csv"].write_table(table)

    def close(self) -> None:
        """Close the files."""
        while self.writers:
            with contextlib.suppress(Exception):
                self.writers.popitem()[1].close()


def batches(parts: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Consecutive ``parts`` joined into frames of about ``ROW_GROUP_ROWS`` rows."""
    batch: list[pd.DataFrame] = []
    rows = 0
    for part in parts:
        batch.append(part)
        rows += len(part)
        if rows >= ROW_GROUP_ROWS:
            yield pd.concat(batch, ignore_index=True) if len(batch) > 1 else batch[0]
            batch, rows = [], 0
    if batch:
        yield pd.concat(batch, ignore_index=True) if len(batch) > 1 else batch[0]


def _write_files(parts: Iterable[pd.DataFrame], out: Path, provenance: dict[str, Any],
                 formats: Sequence[str] | None, plots: Callable[[str], bool] | None
                 ) -> Digest:
    """The chosen report files (and always Parquet + provenance) into ``out``, streaming
    ``parts`` once; the digest of the whole table."""
    wanted = None if formats is None else {"parquet", *formats}
    files = _TableFiles(out, provenance, None if wanted is None else "csv" in wanted)
    digests = []
    try:
        for batch in batches(parts):
            batch = coerce_results(batch)
            files.write(batch)
            digests.append(digest(batch))
    finally:
        files.close()
    if files.schema is None:
        raise ValueError("no results to write: the table is empty")
    whole = combine(digests)
    _write_text(out / PROVENANCE, json.dumps(provenance, indent=2) + "\n")
    for fmt in RENDERED:
        if fmt.default if wanted is None else fmt.name in wanted:
            _write_text(out / fmt.file, fmt.render(whole, provenance, plots=plots))
    return whole


def _refbp_version() -> str:
    import refbp

    return str(refbp.__version__)


def _is_provenance(path: Path) -> bool:
    """True when ``path`` is a provenance file written by refbp (JSON with its keys)."""
    try:
        if not path.is_file() or path.is_symlink() or path.stat().st_size > _MAX_PROVENANCE:
            return False
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and all(k in doc for k in PROVENANCE_KEYS)


def is_report_dir(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a directory holding nothing but a refbp report.

    Recognised by its provenance (``provenance.json`` with refbp's keys), not by one file
    name; every entry must be a regular file named in ``REPORT_FILES``.
    """
    p = Path(path)
    if p.is_symlink() or not p.is_dir():
        return False
    entries = list(p.iterdir())
    if any(e.name not in REPORT_FILES or e.is_symlink() or not e.is_file() for e in entries):
        return False
    return _is_provenance(p / PROVENANCE)


def _check_replaceable(out_dir: Path) -> None:
    if out_dir.is_symlink():
        raise ReportWriteError(f"report path {out_dir} is a symlink; give the real "
                               "directory (a symlink cannot be replaced atomically)")
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise ReportWriteError(f"report path {out_dir} exists and is not a directory")
    try:
        empty = not any(out_dir.iterdir())
    except OSError as exc:
        raise ReportWriteError(f"cannot read {out_dir}: {exc.strerror or exc}") from exc
    if not empty and not is_report_dir(out_dir):
        raise ReportWriteError(
            f"refusing to replace {out_dir}: it is not empty and not a refbp report directory "
            f"(a report holds only {', '.join(REPORT_FILES)}, with refbp's {PROVENANCE}); "
            "give a new or empty directory")


def check_report_target(out_dir: str | os.PathLike[str], *, create_parent: bool = False
                        ) -> Path:
    """Check that a report can be written to ``out_dir``; return its absolute path.

    Raises :class:`ReportWriteError` when ``out_dir`` is a symlink, a file, a non-empty
    directory that is not a refbp report, or when its parent cannot be written (a parent that
    does not exist yet is created only with ``create_parent=True``; otherwise its nearest
    existing ancestor must be writable: a temporary directory is created there and removed at
    once). Nothing else is written.
    """
    out = Path(out_dir).absolute()
    _check_replaceable(out)
    parent = out.parent
    if create_parent:
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ReportWriteError(f"cannot create the report's parent directory {parent}: "
                                   f"{exc.strerror or exc}") from exc
    existing = parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ReportWriteError(f"cannot write the report {out}: {existing} is not a directory")
    try:  # a real probe: os.access says yes to root even on read-only file systems
        os.rmdir(tempfile.mkdtemp(prefix=f".{out.name}.probe-", dir=existing))
    except OSError as exc:
        raise ReportWriteError(f"cannot write the report {out}: {existing} is not writable "
                               f"({exc.strerror or exc})") from exc
    return out


def _prepare_parent(out_dir: Path) -> Path:
    """Create the parent of ``out_dir`` and check that ``out_dir`` may be replaced."""
    check_report_target(out_dir, create_parent=True)
    return out_dir.parent


def _swap_in(tmp: Path, out_dir: Path) -> None:
    """Rename ``tmp`` to ``out_dir``, moving an existing ``out_dir`` aside first."""
    backup = None
    if out_dir.exists():
        backup = out_dir.with_name(f".{out_dir.name}.old-{uuid.uuid4().hex[:12]}")
        os.rename(out_dir, backup)
    try:
        os.rename(tmp, out_dir)
    except BaseException:
        if backup is not None:
            os.rename(backup, out_dir)
        raise
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


BASELINE_PROVENANCE: tuple[str, ...] = ("refbp", "numpy", "torch")
"""Provenance a baseline must carry: the versions its numbers come from."""


class BaselineError(UsageError, ValueError):
    """A report that must not become a baseline (no rows, no provenance)."""


def write_baseline(df: pd.DataFrame, out_dir: str | os.PathLike[str],
                   provenance: dict[str, Any], *, source: str | os.PathLike[str] = "the report"
                   ) -> Path:
    """Write a baseline: a report of only ``results.parquet`` and ``provenance.json``
    (atomically, replacing a previous report or baseline); return its path.

    Raises :class:`BaselineError` for a table with no rows (every later comparison would
    fail) and for a provenance without the versions of ``BASELINE_PROVENANCE`` (refbp does
    not make one up); ``source`` names the report in the message.
    """
    if df.empty:
        raise BaselineError(f"{source} has no rows: it cannot be a baseline (every later "
                            "`refbp compare` would fail); give a report with results")
    missing = [k for k in BASELINE_PROVENANCE if not provenance.get(k)]
    if missing:
        raise BaselineError(f"{source} has no provenance ({', '.join(missing)} missing): a "
                            "baseline must record the versions its numbers come from, and "
                            "refbp does not make them up; give a report written by refbp")
    return write_report(df, out_dir, provenance, formats=("parquet",))


def write_report(df: pd.DataFrame, out_dir: str | os.PathLike[str],
                 provenance: dict[str, Any], *, formats: Sequence[str] | None = None,
                 plots: Callable[[str], bool] | None = None) -> Path:
    """Validate ``df`` and write a complete report directory atomically; return its path.

    ``formats`` (a subset of :data:`FORMATS`; default: the default formats of
    ``refbp.report.formats``, ``results.csv`` only for a table of at most
    ``CSV_DEFAULT_MAX_ROWS`` rows) chooses the files besides
    ``results.parquet`` and ``provenance.json``; ``plots`` selects, by scenario
    name, the scenarios that get plots in ``report.html`` in addition to the failing ones and
    the few closest to failing (see ``refbp.report.html.render_html``). A table too large to
    hold in memory is written with :func:`write_report_parts`.

    Raises
    ------
    ValueError
        ``df`` does not follow ``refbp.report.schema.COLUMNS``.
    ReportWriteError (an OSError)
        The output directory cannot be created or written, or exists and is not a report.
    """
    return write_report_parts([df], out_dir, provenance, formats=formats, plots=plots)[0]


def write_report_parts(parts: Iterable[pd.DataFrame], out_dir: str | os.PathLike[str],
                       provenance: dict[str, Any], *, formats: Sequence[str] | None = None,
                       plots: Callable[[str], bool] | None = None) -> tuple[Path, Digest]:
    """:func:`write_report` of the table made of ``parts`` (frames of whole scenarios, in
    table order), holding one part in memory at a time; returns the report's path and the
    table's digest (``refbp.report.digest``).

    Parts are gathered into batches of about ``ROW_GROUP_ROWS`` rows (see there).
    """
    provenance = {"refbp": _refbp_version(), **provenance}
    out = Path(out_dir).absolute()
    parent = _prepare_parent(out)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=parent))
    except OSError as exc:
        raise ReportWriteError(f"cannot write the report {out}: {exc.strerror or exc}") from exc
    try:
        tmp.chmod(umask_mode(0o777))
        whole = _write_files(parts, tmp, provenance, formats, plots)
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out, whole


def _parquet_path(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if p.is_dir():
        p = p / PARQUET
    if not p.is_file():
        raise FileNotFoundError(f"no refbp results at {path}: expected a report directory "
                                f"containing {PARQUET} or a .parquet file")
    return p


def _provenance(p: Path, metadata: dict[bytes, bytes] | None) -> dict[str, Any]:
    """Provenance from Parquet ``metadata``, else a ``provenance.json`` beside ``p``, else
    ``{}``."""
    meta = metadata or {}
    if PROVENANCE_KEY in meta:
        provenance = json.loads(meta[PROVENANCE_KEY].decode("utf-8"))
    elif (p.parent / PROVENANCE).is_file():
        provenance = json.loads((p.parent / PROVENANCE).read_text(encoding="utf-8"))
    else:
        provenance = {}
    if not isinstance(provenance, dict):
        raise ReportFormatError(f"{p}: provenance is not a JSON object")
    return provenance


def load_results(path: str | os.PathLike[str]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Load ``(results, provenance)`` from a report directory or a ``results.parquet`` file.

    Provenance comes from the Parquet metadata, else from a ``provenance.json`` next to the
    file, else is ``{}``. The table is validated and given the canonical dtypes.
    """
    p = _parquet_path(path)
    try:
        table = pq.read_table(p)
        provenance = _provenance(p, table.schema.metadata)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise ReportFormatError(f"cannot read the refbp results {p}: {exc}") from exc
    return _validated(table, p), provenance


def _validated(table: pa.Table, p: Path) -> pd.DataFrame:
    try:
        df = coerce_results(table.to_pandas())
        check_values(df)
    except ValueError as exc:
        raise ReportFormatError(f"{p}: {exc}") from exc
    return df


class ResultsFile:
    """A report's ``results.parquet`` read a row group at a time, so that a report larger
    than memory can be re-rendered or merged: :meth:`index` says which row groups hold each
    scenario, :meth:`scenario` reads one scenario's rows (only the row groups that hold it,
    the last few kept in memory), :meth:`scenarios` yields them all in table order."""

    CACHED_GROUPS = 4

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = _parquet_path(path)
        try:
            self.file = pq.ParquetFile(self.path)
            self.provenance = _provenance(self.path, self.file.schema_arrow.metadata)
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise ReportFormatError(f"cannot read the refbp results {self.path}: {exc}"
                                    ) from exc
        self._index: dict[str, list[int]] | None = None
        self._cache: dict[int, pd.DataFrame] = {}

    def _read_group(self, i: int, columns: list[str] | None = None) -> pa.Table:
        try:
            return self.file.read_row_group(i, columns=columns)
        except (OSError, ValueError, KeyError, pa.ArrowException) as exc:
            raise ReportFormatError(f"cannot read the refbp results {self.path}: {exc}"
                                    ) from exc

    def index(self) -> dict[str, list[int]]:
        """Scenario name -> the row groups that hold its rows, in table order (reads only
        the scenario column)."""
        if self._index is None:
            index: dict[str, list[int]] = {}
            for i in range(self.file.num_row_groups):
                names = self._read_group(i, ["scenario"]).column("scenario").unique()
                for name in names.to_pylist():
                    index.setdefault(str(name), []).append(i)
            self._index = index
        return self._index

    def scenario(self, name: str) -> pd.DataFrame:
        """The rows of scenario ``name`` (validated), in table order."""
        frames = []
        for i in self.index()[name]:
            if i not in self._cache:
                if len(self._cache) >= self.CACHED_GROUPS:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[i] = _validated(self._read_group(i), self.path)
            group = self._cache[i]
            frames.append(group[group["scenario"] == name])
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else \
            frames[0].reset_index(drop=True)

    def scenarios(self) -> Iterator[pd.DataFrame]:
        """Each scenario's rows, in table order."""
        for name in self.index():
            yield self.scenario(name)


def load_scenarios(path: str | os.PathLike[str]) -> tuple[list[str], dict[str, Any]]:
    """``(scenario names in table order, provenance)`` of a report, reading only that column
    (see :func:`load_results`)."""
    p = _parquet_path(path)
    try:
        table = pq.read_table(p, columns=["scenario"])  # keeps the file's metadata
        provenance = _provenance(p, table.schema.metadata)
    except (OSError, ValueError, KeyError, pa.ArrowException) as exc:
        raise ReportFormatError(f"cannot read the refbp results {p}: {exc}") from exc
    return list(dict.fromkeys(table.column("scenario").to_pylist())), provenance


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temporary sibling file + ``os.replace``)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.chmod(tmp, umask_mode(0o666))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def render(report_dir: str | os.PathLike[str]) -> Path:
    """Re-render the digest formats of a report directory from its Parquet: the default ones
    (``summary.md``, ``report.html``) and any other the directory holds.

    Each file is replaced atomically. Returns the report directory.
    """
    directory = Path(report_dir)
    if not directory.is_dir():
        raise FileNotFoundError(f"no report directory at {report_dir}")
    results = ResultsFile(directory)  # a batch at a time: the report may be large
    provenance = results.provenance
    whole = combine([digest(batch) for batch in batches(results.scenarios())])
    for fmt in RENDERED:
        if fmt.default or (directory / fmt.file).is_file():
            atomic_write_text(directory / fmt.file, fmt.render(whole, provenance))
    return directory
