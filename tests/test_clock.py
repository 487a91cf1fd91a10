"""core.clock: the app's one clock, which tests and demos can move to a chosen moment (it runs on from there)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

from core import clock
from tests.when import MID_MONTH


def test_travel_moves_now_and_today_and_lets_time_run_on():
    real = datetime.now(UTC)
    clock.travel_to(datetime(2027, 1, 31, 23, 59, 59, tzinfo=UTC))
    try:
        moved = clock.now()
        assert timedelta(0) <= moved - datetime(2027, 1, 31, 23, 59, 59, tzinfo=UTC) < timedelta(seconds=1)
        assert moved.tzinfo is not None
        assert clock.today() in (date(2027, 1, 31), date(2027, 2, 1))  # it runs on
    finally:
        clock.travel_to(None)
    assert abs(clock.now() - real) < timedelta(seconds=5)  # back on the real clock


def test_a_naive_moment_is_taken_as_utc():
    clock.travel_to(datetime(2026, 3, 18, 12, 0))
    try:
        assert clock.today() == date(2026, 3, 18) and clock.now().utcoffset() == timedelta(0)
    finally:
        clock.travel_to(None)


def test_on_day_fixture_moves_the_clock_for_the_test(on_day):
    assert on_day == MID_MONTH and clock.today() == MID_MONTH.date()


def test_a_server_starts_on_the_day_rc_clock_start_names():
    code = "from core import clock; print(clock.today().isoformat())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"RC_CLOCK_START": "2026-03-18T12:00:00Z", "PATH": ""})
    assert out.stdout.strip() == "2026-03-18"
