"""The dashboard's files: all served, all shipped in the package, every reference between
them resolving, and nothing in them that the page's Content-Security-Policy would block."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

import pytest

from gateway.dashboard import STATIC
from gateway.routes.dashboard import ASSETS_PREFIX, CONTENT_SECURITY_POLICY, read_assets

REPO = Path(__file__).resolve().parents[4]
FILES = sorted(p.relative_to(STATIC).as_posix() for p in STATIC.rglob("*") if p.is_file())
SCRIPTS = [name for name in FILES if name.endswith(".js")]


def test_every_file_is_served_with_a_media_type() -> None:
    assert sorted(read_assets()) == FILES
    assert read_assets()["js/main.js"].media_type.startswith("text/javascript")


def test_every_file_ships_in_the_package() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["gateway.dashboard"]
    unshipped = [
        name for name in FILES if not any(fnmatch.fnmatch(f"static/{name}", g) for g in globs)
    ]
    assert unshipped == []


def test_the_page_loads_only_files_that_exist() -> None:
    page = (STATIC / "index.html").read_text()
    linked = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert linked, "the page links no files"
    for url in linked:
        assert url.startswith(ASSETS_PREFIX), url
        assert (STATIC / url.removeprefix(ASSETS_PREFIX)).is_file(), url


@pytest.mark.parametrize("name", SCRIPTS)
def test_module_imports_resolve(name: str) -> None:
    source = (STATIC / name).read_text()
    for target in re.findall(r'from "(\.[^"]+)"', source):
        assert ((STATIC / name).parent / target).resolve().is_file(), f"{name}: {target}"


def test_the_page_has_no_inline_script_style_or_handler() -> None:
    page = (STATIC / "index.html").read_text()
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page) == []
    assert "<style" not in page
    assert re.findall(r"\s(?:style|on[a-z]+)=", page) == []


@pytest.mark.parametrize("name", SCRIPTS)
def test_scripts_use_no_html_sink_or_eval(name: str) -> None:
    """The CSP (trusted types, no unsafe-eval) would refuse these at run time."""
    source = (STATIC / name).read_text()
    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
    ):
        assert sink not in source, f"{name} uses {sink}"


def test_policy_allows_only_the_page_itself() -> None:
    directives = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["default-src"] == "'none'"
    assert {directives[k] for k in ("script-src", "style-src", "connect-src", "img-src")} == {
        "'self'"
    }
    assert directives["frame-ancestors"] == "'none'"
