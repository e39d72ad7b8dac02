"""A real browser for the dashboard tests: Debian's Chromium driven by Playwright.

Example::

    from tests.helpers.browser import Web, browser  # noqa: F401  (browser is a fixture)

    def test_x(browser: Browser, tmp_path: Path) -> None:
        web = Web(browser, tmp_path)                 # screenshots in tmp_path / "screenshots"
        page = web.context("https://127.0.0.1:8443").new_page()
        page.goto("/ui/login")
        web.shot(page, "login")                      # also copied to $KONORKESTRA_SCREENSHOTS
        web.close()
        web.assert_clean()                           # no console error, no CSP violation

Invariants:

* The browser is the system's Chromium (:func:`find_chromium`: ``$KONORKESTRA_CHROMIUM``,
  then ``/usr/bin/chromium`` and its usual other names), launched headless by
  Playwright's ``executable_path``: Playwright never downloads a browser here.
  ``.ci/run`` installs Debian's ``chromium`` when it is missing.
* No Chromium (or no Playwright) skips the test with the reason, except under
  ``KONORKESTRA_REQUIRE_ALL=1`` (CI), where it is a failure.
* Each :meth:`Web.context` is a fresh profile (no cookie shared between users) at
  1280x800, and every page in it is watched: a console error, an uncaught page
  error or a ``securitypolicyviolation`` event is recorded in :attr:`Web.problems`
  (unless the test said it expects it), which :meth:`Web.assert_clean` turns into
  a failure.
* Screenshots go to ``<test tmp_path>/screenshots/<name>.png`` and, when
  ``$KONORKESTRA_SCREENSHOTS`` names a directory, are copied there as well (that is
  how ``docs/images/`` is refreshed).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, ViewportSize

CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
ARGS = (
    "--no-sandbox",  # CI runs as root in a container, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # with the next two: no request leaves 127.0.0.1
    "--disable-component-update",
    "--disable-sync",
)
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}

# Reported to Python through a binding, so violations survive the page's navigations.
_CSP_WATCH = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.__konorkestraCsp(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} `
                          + `at ${e.sourceFile || document.location.pathname}:${e.lineNumber}`);
});
"""


def find_chromium() -> str | None:
    """The Chromium executable to drive, or ``None`` when this machine has none."""
    named = os.environ.get("KONORKESTRA_CHROMIUM")
    if named:
        return named if os.access(named, os.X_OK) else None
    for path in CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    return shutil.which("chromium")


def unavailable(why: str) -> None:
    """Skip (with ``why``), or fail under ``KONORKESTRA_REQUIRE_ALL=1``."""
    if os.environ.get("KONORKESTRA_REQUIRE_ALL") == "1":
        pytest.fail(f"browser tests cannot run: {why} (KONORKESTRA_REQUIRE_ALL=1)")
    pytest.skip(f"browser tests skipped: {why}")


def require_chromium() -> str:
    """The Chromium path, after checking Playwright is importable (else skip or fail)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    path = find_chromium()
    if path is None:
        unavailable(
            "no Chromium found ($KONORKESTRA_CHROMIUM or "
            f"{', '.join(CANDIDATES)}); on Debian: apt-get install chromium"
        )
    assert path is not None
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless system Chromium per test module (each test makes its own contexts).

    Not per session: Playwright's sync API keeps an event loop running in the main
    thread until it stops, and every later test that calls ``asyncio.run()`` fails."""
    path = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=path, args=list(ARGS))
        try:
            yield launched
        finally:
            launched.close()


class Web:
    """One test's browser contexts, their watched pages and its screenshots."""

    def __init__(self, browser: Browser, tmp_path: Path) -> None:
        self.browser = browser
        self.shots = tmp_path / "screenshots"
        self.problems: list[str] = []
        self.expected: list[re.Pattern[str]] = []
        self._contexts: list[BrowserContext] = []

    def context(self, base_url: str, **options: Any) -> BrowserContext:
        """A fresh, watched profile at ``base_url`` (1280x800 unless ``viewport=`` says)."""
        context = self.browser.new_context(
            base_url=base_url,
            # The Center's certificate comes from its own CA, and Chromium takes trust
            # anchors from an NSS database, not a PEM file: the test skips the check for
            # this loopback Center it started itself (its API clients do verify the CA).
            ignore_https_errors=True,
            viewport=options.pop("viewport", VIEWPORT),
            **options,
        )
        context.set_default_timeout(15_000)
        context.expose_binding("__konorkestraCsp", lambda _source, text: self._problem(
            f"CSP violation: {text}"))  # fmt: skip
        context.add_init_script(_CSP_WATCH)
        context.on("page", self._watch)
        self._contexts.append(context)
        return context

    def expect_problem(self, pattern: str) -> None:
        """A console message matching ``pattern`` is expected (e.g. a 401 the test caused)."""
        self.expected.append(re.compile(pattern))

    def _watch(self, page: Page) -> None:
        def console(message: ConsoleMessage) -> None:
            if message.type == "error":
                where = message.location.get("url") or page.url
                self._problem(f"console error on {page.url} ({where}): {message.text}")

        page.on("console", console)
        page.on("pageerror", lambda exc: self._problem(f"page error on {page.url}: {exc}"))

    def _problem(self, text: str) -> None:
        if not any(p.search(text) for p in self.expected):
            self.problems.append(text)

    def shot(self, page: Page, name: str) -> Path:
        """Screenshot the viewport as ``<name>.png`` (and copy it to $KONORKESTRA_SCREENSHOTS)."""
        self.shots.mkdir(parents=True, exist_ok=True)
        path = self.shots / f"{name}.png"
        page.screenshot(path=str(path), animations="disabled", caret="hide")
        extra = os.environ.get("KONORKESTRA_SCREENSHOTS")
        if extra:
            Path(extra).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, Path(extra) / path.name)
        return path

    def close(self) -> None:
        for context in self._contexts:
            context.close()
        self._contexts.clear()

    def assert_clean(self) -> None:
        """Fail when any page raised a console error, a page error or a CSP violation."""
        assert not self.problems, "the browser reported:\n" + "\n".join(self.problems)


__all__ = ["ARGS", "PHONE", "VIEWPORT", "Web", "browser", "find_chromium", "require_chromium"]
