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
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from core import clock
from tests.when import MID_MONTH

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


# Counting the app's script runs. The server tells the browser over its websocket when a run starts (a
# NewSession message) and when it ends (ScriptFinished); the test listens to the same frames and parses them
# with Streamlit's own protobuf classes, so a test can wait for the run its action started to be over instead
# of for some element to exist (which may be a stale one of the last run). (An earlier tracker watched the
# root element's data-test-script-state attribute; a run fast enough to start and end in one React render
# never changed it, and the test waited for a run that had already happened.)
class RunCounter:
    def __init__(self) -> None:
        self.started = 0  # runs begun
        self.ended = 0  # runs ended in any way
        self.done = 0  # runs ended other than to make way for a rerun
        # The last run begun has not ended. Not `started > ended`: when a rerun request reaches a script runner
        # that is already shutting down, Streamlit starts a new runner and drops the old one's end message
        # (AppSession ignores events of a non-current runner), so a run may begin and never end; a flow then
        # waited forever on "runs started 7, ended 6". Messages arrive in order: a new run's start supersedes it.
        self.running = False

    def frame(self, payload) -> None:
        if not isinstance(payload, bytes | bytearray):
            return
        msg = ForwardMsg()
        try:
            msg.ParseFromString(bytes(payload))
        except Exception:  # not a ForwardMsg: not ours to count
            return
        kind = msg.WhichOneof("type")
        if kind == "new_session":
            self.started += 1
            self.running = True
        elif kind == "script_finished":
            self.ended += 1
            self.running = False
            if msg.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                self.done += 1


_COUNTERS: dict[int, RunCounter] = {}


def _track(page) -> None:
    counter = _COUNTERS.setdefault(id(page), RunCounter())

    def on_websocket(ws) -> None:
        if "/_stcore/stream" in ws.url:
            ws.on("framereceived", counter.frame)

    page.on("websocket", on_websocket)
    page.on("close", lambda _page: _COUNTERS.pop(id(page), None))


# The root element is idle and connected (the runs are counted above; this only says the page has drawn it).
_DOM_IDLE = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return !!app && app.getAttribute('data-test-script-state') === 'notRunning'
    && app.getAttribute('data-test-connection-state') === 'CONNECTED';
}"""


@pytest.fixture
def context(context):
    """pytest-playwright's browser context, with a run counter on every page."""
    context.on("page", _track)
    for p in context.pages:
        _track(p)
    return context


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_SERVER_STARTED: list[datetime] = []


def follow_the_server_clock() -> None:
    """Move the tests' clock (core.clock) level with the server's, which started at MID_MONTH."""
    clock.travel_to(MID_MONTH + (datetime.now(UTC) - _SERVER_STARTED[-1]))


@pytest.fixture(autouse=True)
def _app_clock(request):
    """The browser tests run on the server's clock, which started at MID_MONTH (tests/when.py): the data a test
    writes and the pages' "this month" agree whatever minute the suite runs."""
    if "app_url" not in request.fixturenames:
        yield
        return
    request.getfixturevalue("app_url")
    follow_the_server_clock()
    yield
    clock.travel_to(None)


@pytest.fixture(scope="session")
def app_url(engine, database_url):
    """The app, served by `streamlit run` on a free port, on the test database."""
    port = _free_port()
    # the server's clock starts at MID_MONTH (core.clock); `_app_clock` keeps the tests' own clock level with it
    env = {**os.environ, "DATABASE_URL": database_url, "RC_PASSWORD_PROFILE": "fast",
           "RC_CLOCK_START": MID_MONTH.isoformat()}
    _SERVER_STARTED.append(datetime.now(UTC))
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


def _counter(page) -> RunCounter:
    if id(page) not in _COUNTERS:  # a page made outside the context fixture
        _track(page)
    return _COUNTERS[id(page)]


def runs(page) -> int:
    """How many script runs of the app have finished in this page so far."""
    page.wait_for_timeout(1)  # let Playwright deliver the frames received so far
    return _counter(page).done


def _idle(page, after: int) -> bool:
    c = _counter(page)
    return c.done > after and not c.running and bool(page.evaluate(_DOM_IDLE))


def settle(page, after: int = -1, timeout_ms: int = 60000) -> None:
    """Wait until Streamlit has finished running: at least one run finished after the count `after` (see
    runs()), none is under way, the page shows it connected and idle, and no further run follows within a
    short moment (a script that calls st.rerun() runs twice)."""
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        while not _idle(page, after):
            if time.monotonic() > deadline:
                c = _counter(page)
                raise PlaywrightTimeout(f"Streamlit did not finish a run after {after} within {timeout_ms} ms "
                                        f"(runs started {c.started}, ended {c.ended}, done {c.done})")
            page.wait_for_timeout(40)
        done = _counter(page).done
        page.wait_for_timeout(150)
        if _counter(page).done == done and _idle(page, done - 1):
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
    started = _counter(page).started
    yield
    if maybe:
        deadline = time.monotonic() + 5
        while _counter(page).started == started and _counter(page).done == before:
            if time.monotonic() > deadline:
                return
            page.wait_for_timeout(40)
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
