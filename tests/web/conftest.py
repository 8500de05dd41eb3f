"""Browser-test fixtures: the real server in a subprocess (demo mode, temporary data), Debian's
Chromium driven by Playwright, and axe-core injected into pages.

The tests skip on a developer's machine without Chromium or axe-core, and fail in CI (the
environment variable CI is set), where .ci/run installs both.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("KONSULTA_CHROMIUM", "/usr/bin/chromium"))
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = os.environ.get("KONSULTA_SCREENSHOTS")
# Debian's Chromium as root in a closed network: no sandbox, no GPU, no calls home.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
# WCAG 2.2 AA (wcag22aa) adds, among others, the minimum size of a pointer target (2.5.8).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
# WCAG 1.4.10 (reflow): content fits 320 CSS px without scrolling sideways. A 1280 × 900 window
# at 400 % zoom is 320 × 225 CSS px; a narrow phone is 320 px wide and taller.
REFLOW_VIEWPORTS = ({"width": 320, "height": 225}, {"width": 320, "height": 640})
DESKTOP = {"width": 1280, "height": 900}


def _missing() -> list[str]:
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    if not AXE.exists():
        missing.append("node_modules/axe-core (npm install)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the Python package playwright (pip install -e '.[test]')")
    return missing


def _require_browser() -> None:
    missing = _missing()
    if missing:
        message = "browser tests need " + ", ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message + " — CI must install them (.ci/run)", pytrace=False)
        pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data: Path, extra_env: dict[str, str] | None = None,
                 port: int | None = None) -> tuple[subprocess.Popen[bytes], str]:
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULT_")}
    env.update({
        "CONSULT_DATA_DIR": str(data),
        "CONSULT_DATABASE_URL": f"sqlite+aiosqlite:///{data / 'konsulta.db'}",
        "CONSULT_KEY_FILE": str(data / "keys.json"),
        "CONSULT_POLICY_DIR": str(ROOT / "policies"),
        "CONSULT_AUDIT_CHECKPOINT_SECONDS": "1",
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    })
    log = open(data / "server.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "consult", "serve", "--demo", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("server exited:\n" + (data / "server.log").read_text(errors="replace")[-3000:])
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=1) as response:
                if response.status == 200:
                    return process, base
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("server did not start:\n" + (data / "server.log").read_text(errors="replace")[-3000:])


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    _require_browser()
    process, base = start_server(tmp_path_factory.mktemp("konsulta-web"))
    yield base
    stop_server(process)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Module-scoped: the sync Playwright driver runs an event loop of its own in this thread,
    which must be gone before the next module's asyncio tests start."""
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


class Tab:
    """One signed-in browser tab (its own context, so its own sessionStorage) with helpers."""

    def __init__(self, browser: Any, base: str, locale: str = "fi-FI") -> None:
        self.base = base
        self.context = browser.new_context(locale=locale, viewport=DESKTOP)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)

    def open(self, hash_: str = "") -> Any:
        self.page.goto(f"{self.base}/{hash_}")
        self.page.wait_for_selector("body[data-ready=true]")
        return self.page

    def sign_in(self, user: str) -> Any:
        page = self.open("#/signin")
        page.click(f"button[data-user='{user}']")
        page.wait_for_selector("#nav a")
        page.wait_for_selector("#live-status.live-live")
        return page

    def go(self, hash_: str, ready: str = "main h1") -> Any:
        self.page.evaluate("(h) => { location.hash = h; }", hash_)
        self.page.wait_for_selector(ready)
        self.page.wait_for_load_state("networkidle")
        return self.page

    def axe(self, what: str) -> None:
        """Zero axe-core violations (WCAG 2.1 A and AA and best practice) on the page as it is now,
        once laid out: what depends on layout (a table that scrolls sideways becomes a focusable
        region) is settled by the next frame."""
        self.settle()
        if not self.page.evaluate("() => typeof window.axe !== 'undefined'"):
            # Evaluated through the DevTools protocol: the page's CSP stays as strict as in production.
            self.page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
        violations = self.page.evaluate(
            """async (tags) => {
                const result = await axe.run(document, { runOnly: { type: "tag", values: tags } });
                return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                  nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ") + " :: " + n.failureSummary) }));
            }""",
            AXE_TAGS,
        )
        assert violations == [], f"axe violations on {what}: {violations}"

    def settle(self) -> None:
        """Two animation frames: layout done and resize observers run."""
        self.page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")

    def overflow(self) -> list[str]:
        """What sticks out sideways at the current viewport: empty when the page itself does not
        scroll horizontally (a table may scroll inside its own labelled, focusable region)."""
        return self.page.evaluate("""() => {
            const root = document.scrollingElement;
            if (root.scrollWidth <= root.clientWidth) return [];
            const width = root.clientWidth;
            const wide = [...document.querySelectorAll("body *")].filter((el) => {
              const box = el.getBoundingClientRect();
              return box.width > 0 && box.right > width + 0.5;
            }).filter((el) => !el.parentElement || el.parentElement.getBoundingClientRect().right <= width + 0.5);
            return [`scrollWidth ${root.scrollWidth} > ${root.clientWidth}`].concat(wide.slice(0, 8).map((el) =>
              `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}.${[...el.classList].join(".")}`
              + ` right=${Math.round(el.getBoundingClientRect().right)}: ${(el.textContent || "").trim().slice(0, 40)}`));
        }""")

    def reflows(self, what: str, *, axe_at: dict[str, int] | None = None) -> None:
        """No horizontal scroll at 320 CSS px (400 % zoom of a 1280 px window, and a narrow phone);
        at ``axe_at`` (one of those) axe-core runs as well, while the page is laid out that way."""
        try:
            for viewport in REFLOW_VIEWPORTS:
                self.page.set_viewport_size(viewport)
                self.settle()
                wide = self.overflow()
                assert wide == [], f"horizontal scroll on {what} at {viewport}: {wide}"
                if viewport == axe_at:
                    self.axe(f"{what} at {viewport['width']} px")
        finally:
            self.page.set_viewport_size(DESKTOP)

    def check(self, what: str) -> None:
        """axe-core at desktop width and at 320 px, and no horizontal scroll at 320 px."""
        self.axe(what)
        self.reflows(what, axe_at=REFLOW_VIEWPORTS[1])

    def shot(self, name: str) -> None:
        if SCREENSHOTS:
            directory = ROOT / SCREENSHOTS if not Path(SCREENSHOTS).is_absolute() else Path(SCREENSHOTS)
            directory.mkdir(parents=True, exist_ok=True)
            scrolled = self.page.evaluate("() => scrollY")
            self.page.screenshot(path=str(directory / f"{name}.png"), full_page=True)
            # A full-page capture resizes the viewport and may leave the page scrolled elsewhere
            # a moment later; put it back so the next click lands where it was aimed.
            self.page.evaluate("""(y) => new Promise((done) => requestAnimationFrame(() => {
                scrollTo(0, y); requestAnimationFrame(() => requestAnimationFrame(done)); }))""", scrolled)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tabs(browser: Any, server: str) -> Iterator[Any]:
    opened: list[Tab] = []

    def make(locale: str = "fi-FI") -> Tab:
        tab = Tab(browser, server, locale)
        opened.append(tab)
        return tab

    yield make
    for tab in opened:
        unexpected = [e for e in tab.errors if not re.search(r"status of (401|403|404|409|413|422)", e)]
        tab.close()
        assert not unexpected, unexpected
