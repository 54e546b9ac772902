"""A real browser (Debian's Chromium, driven by Playwright) against the real server.

Playwright never downloads a browser here: it drives Debian's headless build of Chromium,
/usr/bin/chromium-headless-shell (package chromium-headless-shell), where it is installed,
else /usr/bin/chromium, or $CHROMIUM. The headless shell is the same Chromium without the
desktop browser around it (Playwright's own choice for headless runs): the same pages at
about two thirds of the CPU, which the suite on two cores is short of.
Without Chromium these tests are skipped with a reason, unless REQUIRE_BROWSER=1 (as in
CI), where a missing browser fails the run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str | None:
    candidate = (
        os.environ.get("CHROMIUM")
        or shutil.which("chromium-headless-shell")
        or shutil.which("chromium")
        or "/usr/bin/chromium"
    )
    return candidate if Path(candidate).exists() else None


@pytest.fixture(scope="session")
def browser_executable() -> str:
    path = _chromium()
    if path is None:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium is required (REQUIRE_BROWSER=1) but was not found")
        pytest.skip(
            "Chromium is not installed (apt-get install chromium-headless-shell); set CHROMIUM=..."
        )
    return path


@pytest.fixture(scope="session")
def chromium(browser_executable: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=browser_executable, args=CHROMIUM_FLAGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, live_server: str, db) -> Iterator[object]:
    """A fresh browser context (no cookies) whose relative URLs go to the live server."""
    context = chromium.new_context(base_url=live_server, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    # A page the CSP blocked something on (an inline script, a style) fails the test.
    problems: list[str] = []
    page.on("console", lambda m: m.type == "error" and problems.append(m.text))
    page.on("pageerror", lambda e: problems.append(str(e)))
    # Nor may a page ask for something that is not there (a favicon was a 404 on every page).
    page.on(
        "response",
        lambda r: (
            r.status == 404
            and r.request.resource_type != "document"
            and problems.append(f"404 {r.url}")
        ),
    )
    yield page
    context.close()
    assert not [
        p
        for p in problems
        if "Content Security Policy" in p
        or "Refused" in p
        or p.startswith("404 ")
        or "404 (Not Found)" in p  # the browser's own requests too (a favicon)
    ], problems


@pytest.fixture
def screenshots() -> Path:
    """Where the tests leave screenshots for people to look at (SCREENSHOT_DIR)."""
    folder = Path(os.environ.get("SCREENSHOT_DIR", "var/screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def pytest_terminal_summary(terminalreporter) -> None:
    """Where the screenshots are (a CI artifact): said at the end of every run that made some."""
    folder = Path(os.environ.get("SCREENSHOT_DIR", "var/screenshots")).resolve()
    shots = sorted(folder.glob("*.png")) if folder.is_dir() else []
    if shots:
        terminalreporter.write_line(f"browser screenshots: {len(shots)} in {folder}")
