"""A real headless Chromium for tests of the dashboard, driven over WebDriver (selenium)
with the system's own browser and chromedriver: nothing is downloaded at run time.

Where no Chromium is installed, Debian's `chromium` and `chromium-driver` are installed
with apt-get when the test runs as root (as CI does); otherwise the test is skipped with
the reason.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome")
APT_PACKAGES = ("chromium", "chromium-driver")
INSTALL_TIMEOUT_S = 900
# Without these, Chromium on a machine with no way out waits on update, sync and QUIC
# probes before it gets to the page.
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


def find_chromium() -> tuple[str, str] | None:
    """The browser and its chromedriver, when both are installed."""
    driver = shutil.which("chromedriver")
    browser = next((p for p in map(shutil.which, BROWSER_NAMES) if p), None)
    return (browser, driver) if browser and driver else None


def chromium_or_skip() -> tuple[str, str]:
    found = find_chromium()
    if found is not None:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(
            "no Chromium with chromedriver on PATH, and no apt-get as root to install them "
            "(Debian: apt-get install chromium chromium-driver)"
        )
    failure = _apt_install()
    found = find_chromium()
    if found is None:
        pytest.skip(f"could not install Chromium with apt-get: {failure}")
    return found


def _apt_install() -> str:
    """'' when it worked, else what apt-get said. The package lists are updated only when
    a first try fails (a fresh machine may have none)."""
    install = ["apt-get", "install", "-y", "-q", *APT_PACKAGES]
    failure = _run(install)
    if failure:
        failure = _run(["apt-get", "update", "-q"]) or _run(install)
    return failure


def _run(command: list[str]) -> str:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        result = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return f"{' '.join(command)} took over {INSTALL_TIMEOUT_S} s"
    return "" if result.returncode == 0 else (result.stderr or result.stdout).strip()[-500:]


@contextlib.contextmanager
def headless_chromium(
    browser: str, chromedriver: str, profile: Path, timeout_s: float = 30
) -> Iterator[WebDriver]:
    """A browser on a fresh profile; closed, and every process of it ended, in every outcome."""
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (*FLAGS, f"--user-data-dir={profile}", "--window-size=1280,800"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(chromedriver, log_output=str(profile.parent / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        driver.set_page_load_timeout(timeout_s)
        driver.set_script_timeout(timeout_s)
        yield driver
    finally:
        with contextlib.suppress(Exception):
            driver.quit()
        _end_leftovers(str(profile))


def _end_leftovers(marker: str) -> None:
    """Browser processes of this profile that outlived quit() (a hung renderer)."""
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if marker in " ".join(proc.info["cmdline"] or []):
            with contextlib.suppress(ProcessLookupError, psutil.NoSuchProcess):
                os.kill(proc.info["pid"], signal.SIGKILL)
