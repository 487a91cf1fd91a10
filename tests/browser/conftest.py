"""Real-browser tests: Playwright drives Debian's Chromium against `streamlit run Home.py`.

Without /usr/bin/chromium the tests skip with a message, except under CI (CI=true), where they must run
(.ci/run installs Chromium first)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = os.environ.get("RC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).resolve().parent
    have_browser = shutil.which(CHROMIUM) is not None or Path(CHROMIUM).exists()
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.browser)
            if not have_browser and os.environ.get("CI") != "true":
                item.add_marker(pytest.mark.skip(
                    reason=f"no Chromium at {CHROMIUM}: install it with `apt-get install -y chromium` "
                           "(or set RC_CHROMIUM) to run the real-browser tests"))


@pytest.fixture(scope="session")
def browser_type_launch_args():
    return {"executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args():
    return {"viewport": {"width": 1400, "height": 1000}, "locale": "en-GB"}


# Streamlit marks its root element with the script's run state (data-test-script-state: "running",
# "notRunning", "rerunRequested", ...). This script, run in every page before the app's own, counts the
# finished runs (each change away from "running") in window.__rcRuns, so a test can wait for the run its
# action started to be over, instead of for some element to exist (which may be a stale one of the last run).
RUN_TRACKER = """
(() => {
  window.__rcRuns = 0;
  const watch = () => new MutationObserver((records) => {
    for (const r of records) {
      if (r.type === 'attributes' && r.oldValue === 'running'
          && r.target.getAttribute('data-test-script-state') !== 'running') window.__rcRuns += 1;
    }
  }).observe(document, {subtree: true, attributes: true, attributeOldValue: true,
                        attributeFilter: ['data-test-script-state']});
  if (document.documentElement) watch(); else document.addEventListener('DOMContentLoaded', watch);
})();
"""

_STARTED = """(after) => (window.__rcRuns || 0) > after
  || document.querySelector('[data-testid="stApp"]')?.getAttribute('data-test-script-state') !== 'notRunning'"""

_IDLE = """(after) => {
  const app = document.querySelector('[data-testid="stApp"]');
  return !!app && app.getAttribute('data-test-script-state') === 'notRunning'
    && app.getAttribute('data-test-connection-state') === 'CONNECTED' && (window.__rcRuns || 0) > after;
}"""


@pytest.fixture
def context(context):
    """pytest-playwright's browser context, with the run tracker in every page."""
    context.add_init_script(RUN_TRACKER)
    return context


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def app_url(engine, database_url):
    """The app, served by `streamlit run` on a free port, on the test database."""
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "RC_PASSWORD_PROFILE": "fast"}
    log = open(ARTIFACTS.joinpath("streamlit.log") if ARTIFACTS.mkdir(exist_ok=True) is None else os.devnull, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "Home.py", "--server.headless", "true", "--server.port",
         str(port), "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        raise RuntimeError("streamlit did not start; see tests/artifacts/streamlit.log")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def runs(page) -> int:
    """How many script runs of the app have finished in this page so far."""
    return int(page.evaluate("window.__rcRuns || 0"))


def settle(page, after: int = -1, timeout_ms: int = 60000) -> None:
    """Wait until Streamlit has finished running: the script state is "notRunning" (connected), at least one
    run finished after the count `after` (see runs()), and no further run follows within a short moment
    (a script that calls st.rerun() runs twice)."""
    while True:
        page.wait_for_function(_IDLE, arg=after, timeout=timeout_ms)
        done = runs(page)
        page.wait_for_timeout(150)
        if runs(page) == done and page.evaluate(_IDLE, done - 1):
            return
        after = done


@contextmanager
def rerun(page, *, maybe: bool = False) -> Iterator[None]:
    """Do an action that makes Streamlit run the script again (a click, Enter in an input, a selection), and
    wait until that run has finished:

        with rerun(page):
            page.get_by_role("button", name="Save").click()

    maybe=True: the action may change nothing (picking the option already selected): then no run comes, and
    after 5 s without one starting this returns.
    """
    before = runs(page)
    yield
    if maybe:
        try:
            page.wait_for_function(_STARTED, arg=before, timeout=5000)
        except PlaywrightTimeout:
            return
    settle(page, after=before)


def shot(page, name: str) -> Path:
    settle(page)
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def wait_app(page) -> None:
    """The app is loaded and its first run has finished."""
    settle(page)


def login(page, app_url: str, email: str, password: str) -> None:
    page.context.clear_cookies()  # a fresh browser: no remembered login from an earlier step
    page.goto(app_url)
    wait_app(page)
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    with rerun(page):
        page.get_by_role("button", name="Log in").click()
    page.get_by_text("Welcome,").first.wait_for(timeout=30000)
