"""The package behaves like a library: version, ``python -m refbp``, a lazy CLI, typed marker,
validated torch releases."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import refbp
from refbp.versions import (
    VALIDATED_TORCH,
    UnvalidatedTorchWarning,
    is_validated,
    torch_release,
    warn_if_unvalidated,
)


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120,
                          check=False)


def test_version_flag_and_python_dash_m() -> None:
    done = _python("-m", "refbp", "--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"refbp {refbp.__version__}"


def test_building_the_cli_parser_imports_no_heavy_package() -> None:
    code = ("import sys\nfrom refbp.cli.commands import _parser\n_parser().format_help()\n"
            "print(sorted(m for m in ('pandas', 'matplotlib', 'torch', 'pyarrow') "
            "if m in sys.modules))")
    done = _python("-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_package_faces_are_lazy_and_complete() -> None:
    import refbp.diagnose as diagnose
    import refbp.report as report

    for package in (diagnose, report):
        for name in package.__all__:
            assert getattr(package, name) is not None
        with pytest.raises(AttributeError, match="has no attribute 'nope'"):
            package.nope  # noqa: B018
    assert callable(diagnose.localize) and callable(report.write_report)


def test_py_typed_marker_is_shipped() -> None:
    assert (Path(refbp.__file__).parent / "py.typed").is_file()


@pytest.mark.parametrize(("version", "release", "validated"), [
    ("2.13.0+cpu", "2.13", True), ("2.13.1", "2.13", True), ("2.15.0", "2.15", False),
    ("2.4.1+cu121", "2.4", "2.4" in VALIDATED_TORCH),
])
def test_validated_torch_releases(version: str, release: str, validated: bool) -> None:
    assert torch_release(version) == release
    assert is_validated(version) is validated


def test_an_unvalidated_torch_warns_and_does_not_fail() -> None:
    with pytest.warns(UnvalidatedTorchWarning, match=r"validated against torch 2\.13; torch "
                      r"2\.99\.0 is installed"):
        warn_if_unvalidated("2.99.0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_unvalidated("2.13.0")
