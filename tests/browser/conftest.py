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
from pathlib import Path

import pytest

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


def settle(page, quiet_ms: int = 400) -> None:
    """Wait until Streamlit has finished the current run (no "Running..." status widget)."""
    page.wait_for_timeout(quiet_ms)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=30000)
    page.wait_for_timeout(200)


def shot(page, name: str) -> Path:
    settle(page)
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def wait_app(page) -> None:
    page.wait_for_selector('[data-testid="stApp"]', timeout=30000)


def login(page, app_url: str, email: str, password: str) -> None:
    page.context.clear_cookies()  # a fresh browser: no remembered login from an earlier step
    page.goto(app_url)
    wait_app(page)
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_text("Welcome,").first.wait_for(timeout=30000)
