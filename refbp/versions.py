"""The torch releases this refbp release was tested against, and what a report says about them.

refbp declares ``torch>=2.4`` without an upper cap (a cap would force a multi-GB reinstall on
every newer torch). Parity is established release by release: ``nox -s torch`` runs the
parity tests under each torch version of its list and records the outcome in
``refbp/torch_versions.json`` (:data:`TESTED_TORCH`, rendered by
:func:`torch_versions_table`). The pinned release (:data:`PINNED_TORCH`) and every
``major.minor`` release whose recorded runs all passed are validated (:data:`VALIDATED_TORCH`).

On any other torch refbp works as usual and says so once where results are read, never as a
warning that a test suite with ``filterwarnings = error`` would turn into failures: every
report records the torch version and whether it was validated (``provenance.json``: ``torch``,
``torch_validated``), ``summary.md`` and ``refbp run`` print :func:`torch_note`, and the pytest
plugin adds it to pytest's header.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import metadata, resources


@dataclass(frozen=True)
class TorchRun:
    """One recorded run of the parity tests (``parity_tests/``) under one torch version."""

    torch: str
    """torch's ``__version__`` (``2.13.0+cpu``)."""
    python: str
    """The Python version the tests ran on."""
    refbp_commit: str
    """The git commit of refbp that was tested."""
    date: str
    """ISO date of the run."""
    passed: int
    """Parity tests passed."""
    failed: int
    """Parity tests failed or in error (0 for a validated release)."""
    skipped: int
    """Parity tests skipped."""


TABLE_FILE = "torch_versions.json"
"""The file in the ``refbp`` package that ``nox -s torch`` writes."""


def load_tested_torch() -> tuple[TorchRun, ...]:
    """The recorded runs of ``refbp/torch_versions.json``, oldest torch first."""
    text = resources.files("refbp").joinpath(TABLE_FILE).read_text(encoding="utf-8")
    runs = tuple(TorchRun(**row) for row in json.loads(text)["runs"])
    return tuple(sorted(runs, key=lambda r: _version_key(r.torch)))


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("+")[0].split(".") if p.isdigit())


def torch_release(version: str) -> str:
    """``'2.13.0+cpu'`` -> ``'2.13'``."""
    return ".".join(version.split("+")[0].split(".")[:2])


PINNED_TORCH = "2.13"
"""The release ``constraints.txt`` pins: CI (``.ci/run``) runs the parity tests under it on
every change, so it is validated whatever the table holds."""


def validated_releases(runs: tuple[TorchRun, ...]) -> tuple[str, ...]:
    """The pinned release, and the ``major.minor`` releases with at least one recorded run and
    no failed run."""
    failed = {torch_release(r.torch) for r in runs if r.failed}
    return tuple(dict.fromkeys([PINNED_TORCH, *(torch_release(r.torch) for r in runs
                                                if torch_release(r.torch) not in failed)]))


TESTED_TORCH: tuple[TorchRun, ...] = load_tested_torch()
"""Every recorded parity-test run (``refbp/torch_versions.json``)."""

VALIDATED_TORCH: tuple[str, ...] = validated_releases(TESTED_TORCH)
"""``major.minor`` torch releases whose parity tests passed with this refbp release."""


def is_validated(version: str) -> bool:
    """True when ``version`` (a torch ``__version__``) is a validated release."""
    return torch_release(version) in VALIDATED_TORCH


def torch_note(version: str) -> str | None:
    """One sentence for an unvalidated torch ``version``; None for a validated one."""
    return None if is_validated(version) else unvalidated_torch_sentence(version)


def unvalidated_torch_sentence(version: str) -> str:
    """What a report says when torch ``version`` was not a validated release."""
    return (f"torch {version} is not a release refbp {_refbp_version()} was tested against "
            f"(validated: {', '.join(VALIDATED_TORCH)}); refbp runs as usual, but parity "
            "results may differ in the last bits: please report failures.")


def torch_versions_table(runs: tuple[TorchRun, ...] = TESTED_TORCH) -> str:
    """The recorded runs as a Markdown table (the README's "Tested torch versions")."""
    lines = ["| torch | Python | parity tests passed | failed | skipped | refbp commit | date |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r.torch} | {r.python} | {r.passed} | {r.failed} | {r.skipped} | "
              f"{r.refbp_commit[:10]} | {r.date} |" for r in runs]
    return "\n".join(lines)


def package_version(name: str) -> str:
    """Installed version of a distribution, or ``'not installed'`` (never imports it)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


@functools.cache
def installed_torch() -> str | None:
    """The installed torch's version, read from its package metadata (torch is not imported);
    None when torch is not installed. Read once per process."""
    version = package_version("torch")
    return None if version == "not installed" else version


def torch_at_least(release: str, version: str | None = None) -> bool:
    """Whether torch ``version`` (a ``__version__``; default :func:`installed_torch`) is
    ``release`` (``"2.14"``) or newer. False when no version is given and torch is not
    installed. Where torch changed a convention between releases, refbp's default follows
    the installed torch through this (:data:`CONVENTION_CHANGES`)."""
    version = installed_torch() if version is None else version
    return version is not None and _version_key(version)[:2] >= _version_key(release)[:2]


@dataclass(frozen=True)
class ConventionChange:
    """A convention a torch release changed, which refbp implements both ways and takes as a
    refbp-only keyword-only constructor argument of the ops concerned (torch has no such
    argument: it follows its own release). The argument's default, None, is the installed
    torch's convention (the pinned release's, 2.13, when torch is not installed).

    Declaring one here is all it takes: :data:`CONVENTION_CHANGES` (the README's list) and
    the registry's refbp-only arguments (``refbp.registry.opinfo.REFBP_ONLY_EVERYWHERE``) are
    built from :data:`CONVENTIONS`, and the op validates its argument with :meth:`check`.
    """

    keyword: str
    """The refbp-only constructor argument (``kink``)."""
    release: str
    """The torch release that changed the convention (``"2.14"``)."""
    before: str
    """The argument's value for the convention of torch releases before :attr:`release`."""
    after: str
    """Its value for the convention of :attr:`release` and later."""
    change: str
    """What torch changed, and which ops follow it (:data:`CONVENTION_CHANGES`)."""
    argument: str
    """What the argument selects (``REFBP_ONLY_EVERYWHERE``)."""
    label: str = "convention"
    """What an error message calls the choice (``"the installed torch's <label>"``)."""

    @property
    def choices(self) -> tuple[str, str]:
        """The argument's values: the older convention, then the newer."""
        return (self.before, self.after)

    def default(self, version: str | None = None) -> str:
        """The convention of torch ``version`` (default: the installed torch; without torch,
        the pinned release's)."""
        return self.after if torch_at_least(self.release, version) else self.before

    def check(self, value: str | None) -> str:
        """``value``, or the installed torch's convention for None; ValueError naming the
        choices for anything else."""
        if value is None:
            return self.default()
        if value not in self.choices:
            raise ValueError(f"{self.keyword} must be one of "
                             f"{', '.join(map(repr, self.choices))} or None "
                             f"(the installed torch's {self.label}), got {value!r}")
        return value


HINGE_KINK = ConventionChange(
    keyword="kink", release="2.14", before="hinge", after="flat",
    change="clamp_min's backward at the bound is 0 (was the incoming gradient): "
           "the gradient at the kink of HingeEmbeddingLoss, MarginRankingLoss, "
           "CosineEmbeddingLoss and the TripletMargin losses (their ``kink`` argument)",
    argument="which side owns the gradient at a kink where torch releases differ "
             "(the hinge losses; default: the installed torch's convention)")
"""Which side owns the gradient of a hinge torch composes with ``clamp_min`` at its kink: the
hinge ("hinge": torch up to 2.13 passes the gradient at the bound) or the flat side ("flat")."""

EMBEDDING_BAG_FREQUENCIES = ConventionChange(
    keyword="frequencies", release="2.14", before="kernel", after="counts", label="rule",
    change="EmbeddingBag's scale_grad_by_freq divides by each index's number of occurrences "
           "(its CPU kernel took another count before; ``frequencies``)",
    argument="EmbeddingBag's scale_grad_by_freq divisor, which torch releases compute "
             "differently (default: the installed torch's rule)")
"""The divisor of EmbeddingBag's ``scale_grad_by_freq``: torch's CPU kernel's count
("kernel", up to 2.13) or each index's number of occurrences ("counts", torch's documented
rule, which its kernel follows from 2.14)."""

CONVENTIONS: tuple[ConventionChange, ...] = (HINGE_KINK, EMBEDDING_BAG_FREQUENCIES)
"""Every convention torch changed that refbp takes as an argument, declared once."""

CONVENTION_CHANGES: dict[str, str] = {
    release: "; ".join(c.change for c in CONVENTIONS if c.release == release)
    for release in dict.fromkeys(c.release for c in CONVENTIONS)}
"""torch releases that changed a convention refbp follows, and what changed (built from
:data:`CONVENTIONS`). refbp takes the convention as an argument whose default is the installed
torch's (the pinned release's, 2.13, when torch is not installed)."""


def installed_torch_note() -> str | None:
    """:func:`torch_note` for the installed torch (None when torch is not installed)."""
    version = package_version("torch")
    return None if version == "not installed" else torch_note(version)


def _refbp_version() -> str:
    from refbp import __version__

    return __version__
