"""The documentation: every relative link of the Markdown files resolves, every page is in the
site's navigation, and the site builds strictly and offline (``mkdocs.yml``).

``mkdocs build --strict`` checks the links between the site's pages; the link check here also
covers the files outside the site (README.md, CHANGELOG.md, CONTRIBUTING.md, ARCHITECTURE.md,
examples/), which people read on a code host, and the ``--8<--`` sections the site includes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

import refbp

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MARKDOWN = sorted({ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "CONTRIBUTING.md",
                   ROOT / "ARCHITECTURE.md", *DOCS.rglob("*.md"),
                   *(ROOT / "examples").rglob("*.md")})
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
SNIPPET = re.compile(r'^--8<-- "([^":]+)(?::([\w-]+))?"$', re.M)
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def include_snippets(text: str) -> str:
    """``text`` with its ``--8<-- "FILE[:SECTION]"`` lines replaced by what they include, as
    pymdownx.snippets does (sections are marked ``[start:NAME]`` ... ``[end:NAME]``)."""
    def one(m: re.Match[str]) -> str:
        included = (ROOT / m.group(1)).read_text(encoding="utf-8")
        if m.group(2) is None:
            return included
        section = re.search(rf"\[start:{m.group(2)}\][^\n]*\n(.*?)\n[^\n]*\[end:{m.group(2)}\]",
                            included, re.S)
        if section is None:
            raise ValueError(f"{m.group(1)} has no snippet section {m.group(2)!r}")
        return section.group(1)
    return SNIPPET.sub(one, text)


def slug(heading: str) -> str:
    """The anchor of a heading, as Python-Markdown's toc and the code hosts make it."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", include_snippets(page.read_text(encoding="utf-8")))
    return {slug(h) for h in re.findall(r"^#{1,6} (.+?)\s*$", text, re.M)}


def links(page: Path) -> list[str]:
    text = FENCE.sub("", include_snippets(page.read_text(encoding="utf-8")))
    text = re.sub(r"`[^`\n]*`", "", text)
    return LINK.findall(text)


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in links(page):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        # a snippet's links are written for the page that includes it
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target} (no heading #{anchor})")
    return broken


def test_the_link_check_finds_a_broken_link_and_anchor(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Other\n\n## The `run` command\n")
    page.write_text("[a](other.md#the-run-command) [b](missing.md) [c](other.md#nowhere) "
                    "[d](https://example.org/x) `[e](code.md)`\n\n```text\n[f](fenced.md)\n```\n")
    assert broken_links(page) == ["missing.md (no such file)",
                                  "other.md#nowhere (no heading #nowhere)"]


@pytest.mark.parametrize("page", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    assert not broken_links(page), f"{page.relative_to(ROOT)}: {broken_links(page)}"


def test_readme_links_to_the_site_pages() -> None:
    """Each page of its own, and the file each page that only includes a file shows."""
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in links(ROOT / "README.md")}
    pages = set()
    for page in DOCS.glob("*.md"):
        whole = SNIPPET.fullmatch(page.read_text(encoding="utf-8").strip())
        pages.add((ROOT / whole.group(1)).resolve() if whole else page.resolve())
    pages.discard((DOCS / "index.md").resolve())
    assert pages <= linked, sorted(str(p.relative_to(ROOT)) for p in pages - linked)


def _nav_pages() -> set[str]:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = config[config.index("\nnav:"):]
    return set(re.findall(r":\s*(\S+\.md)\s*$", nav, re.M))


def test_every_page_is_in_the_navigation() -> None:
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert _nav_pages() == pages


def test_the_changelog_names_the_package_version_first() -> None:
    versions = re.findall(r"^## (\d+\.\d+\.\d+)\b", (ROOT / "CHANGELOG.md").read_text(), re.M)
    declared = re.search(r'^version = "([^"]+)"$', (ROOT / "pyproject.toml").read_text(), re.M)
    assert declared is not None
    assert versions and versions[0] == refbp.__version__ == declared.group(1)


CHANGELOG_HEADING = re.compile(r"^## (\d+\.\d+\.\d+) \((\d{4}-\d{2}-\d{2}|unreleased)\)$", re.M)


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                          check=False)


def test_release_tags_match_the_changelog() -> None:
    """Every version heading is ``## X.Y.Z (YYYY-MM-DD)`` or ``## X.Y.Z (unreleased)``. A tag
    ``vX.Y.Z`` (where the checkout has git history) is annotated, on a commit whose
    pyproject.toml says X.Y.Z, and its changelog heading carries a date. A dated heading
    without a tag is the release commit before it is tagged."""
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = dict(CHANGELOG_HEADING.findall(text))
    assert list(headings) == re.findall(r"^## (\S+)", text, re.M)
    if _git("rev-parse", "--git-dir").returncode != 0:
        pytest.skip("not a git checkout (an sdist): no tags to check")
    for tag in _git("tag", "--list", "v*").stdout.split():
        version = tag[1:]
        assert headings.get(version, "unreleased") != "unreleased", (
            f"tag {tag} has no dated heading '## {version} (YYYY-MM-DD)' in CHANGELOG.md")
        assert _git("cat-file", "-t", tag).stdout.strip() == "tag", f"{tag} is not annotated"
        pyproject = _git("show", f"{tag}:pyproject.toml").stdout
        assert re.search(rf'^version = "{re.escape(version)}"$', pyproject, re.M), (
            f"pyproject.toml at {tag} does not say version {version}")


def _mkdocs_available() -> bool:
    try:
        import material  # noqa: F401
        import mkdocs  # noqa: F401
        import mkdocstrings_handlers.python  # noqa: F401
    except ImportError:
        return False
    return True


EXTERNAL = re.compile(r"""(?:<script[^>]*\ssrc|<link[^>]*\shref|<img[^>]*\ssrc)"""
                      r"""=["']?(?:https?:)?//|url\(["']?(?:https?:)?//""")


def test_the_offline_check_tells_a_fetched_resource_from_a_link() -> None:
    fetched = ['<script src="https://unpkg.com/shim">', "<link href='//fonts.example/css'>",
               '<img alt="" src="http://example.org/a.png">', "url(https://example.org/f.woff2)"]
    kept = ['<a href="https://example.org">', '<script src="../assets/bundle.js">',
            "url(../fonts/f.woff2)"]
    assert all(EXTERNAL.search(s) for s in fetched)
    assert not any(EXTERNAL.search(s) for s in kept)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not _mkdocs_available():
        if os.environ.get("CI") == "true":
            pytest.fail("the docs extra is not installed (the dev extra includes it)")
        pytest.skip("the docs extra is not installed: pip install -c constraints.txt -e '.[docs]'")
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, proc.stderr
    assert "WARNING" not in proc.stderr
    return out


@pytest.mark.slow  # builds the site (~10 s); CI runs -m slow and mkdocs --strict
def test_the_site_builds_every_page(site: Path) -> None:
    built = {str(p.relative_to(site)) for p in site.rglob("*.html")}
    assert {page.removesuffix(".md") + ".html" for page in _nav_pages()} <= built


@pytest.mark.slow
def test_the_site_loads_nothing_from_the_network(site: Path) -> None:
    """No web font, script, style sheet or image from another host: the pages work offline."""
    for path in [*site.rglob("*.html"), *site.rglob("*.css")]:
        found = EXTERNAL.search(path.read_text(encoding="utf-8"))
        assert found is None, f"{path.relative_to(site)} loads {found.group(0)}..."


@pytest.mark.slow
def test_the_search_works_from_disk(site: Path) -> None:
    """The offline plugin's inlined index and the vendored worker shim (the first script of
    every page, before Material's bundle), so the search box needs no HTTP server."""
    assert (site / "search" / "search_index.js").read_text(encoding="utf-8").startswith(
        "var __index = {")
    assert (site / "assets" / "javascripts" / "iframe-worker" / "shim.js").is_file()
    for path in site.rglob("*.html"):
        scripts = re.findall(r'<script src="([^"]+)"', path.read_text(encoding="utf-8"))
        assert scripts[0].endswith("assets/javascripts/iframe-worker/shim.js"), path


@pytest.mark.slow
def test_the_api_reference_documents_the_public_functions(site: Path) -> None:
    page = (site / "api" / "testing.html").read_text(encoding="utf-8")
    for name in ("assert_parity", "parity_table", "assert_close", "check_gradients"):
        assert f'id="refbp.testing.{name}"' in page, name
    assert 'id="refbp.nn.Linear"' in (site / "api" / "nn.html").read_text(encoding="utf-8")
    for path in (site / "api").glob("*.html"):  # Sphinx roles shown as code (sphinx_roles.py)
        text = path.read_text(encoding="utf-8")
        assert not re.search(r":(func|class|meth|mod|math):`", text), path
