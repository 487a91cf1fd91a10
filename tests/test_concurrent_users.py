"""Issue 18, concurrent users: what each click costs the server (bench/loadtest.py measures the whole)."""

from __future__ import annotations

from sqlalchemy.orm import Session

import pages.common as common
from db.models import User
from tests.apptest import app, texts


def test_the_actor_is_read_once_per_rerun_and_again_at_every_rerun(world, engine, monkeypatch):
    """The router (Home.py) and the page's require() used to read the user, partner and account twice per
    click; now once per script run. Every new run still reads them again: deactivation bites at the next
    click."""
    reads: list[int] = []
    real = common.load_actor
    monkeypatch.setattr(common, "load_actor", lambda *a, **kw: reads.append(1) or real(*a, **kw))
    staff = world.a.staff
    at = app(staff)  # one run: the router and the default page (Overview), both ask for the actor
    assert not at.exception and "Please log in" not in texts(at)
    assert len(reads) == 1
    at.run()
    assert len(reads) == 2
    with Session(engine) as s, s.begin():
        s.get(User, (staff.partner_id, staff.user_id)).active = False
    at.run()
    assert len(reads) == 3
    assert "Please log in" in texts(at)


def test_the_app_pool_pings_only_connections_that_sat_idle_and_replaces_a_dead_one(database_url, owner_engine):
    """pool_pre_ping cost a round trip at every checkout (a page opens several sessions). Now a connection
    used a moment ago is handed out as is; one idle for IDLE_PING_S is pinged first, and if the server
    dropped it meanwhile, the caller gets a fresh connection instead of an error."""
    from sqlalchemy import text

    from db.engine import make_engine
    from db.pool import IDLE_PING_S, ping_when_idle

    now = [1000.0]
    eng = ping_when_idle(make_engine(database_url, pool_pre_ping=False, pool_size=1, max_overflow=0),
                         clock=lambda: now[0])
    pings: list[int] = []
    real_ping = eng.dialect.do_ping
    eng.dialect.do_ping = lambda c: pings.append(1) or real_ping(c)  # type: ignore[method-assign]
    try:
        with eng.connect() as c:  # a new connection: no ping
            first_pid = c.execute(text("SELECT pg_backend_pid()")).scalar()
        for _ in range(3):  # busy: no pings
            now[0] += IDLE_PING_S / 2
            with eng.connect() as c:
                assert c.execute(text("SELECT pg_backend_pid()")).scalar() == first_pid
        assert pings == []
        now[0] += IDLE_PING_S + 1  # idle long enough: pinged, alive, kept
        with eng.connect() as c:
            assert c.execute(text("SELECT pg_backend_pid()")).scalar() == first_pid
        assert pings == [1]
        with owner_engine.connect() as o:  # the server drops the idle connection
            assert o.execute(text("SELECT pg_terminate_backend(:p)"), {"p": first_pid}).scalar()
        now[0] += IDLE_PING_S + 1
        with eng.connect() as c:  # replaced before the caller sees it
            assert c.execute(text("SELECT 41 + 1")).scalar() == 42
            assert c.execute(text("SELECT pg_backend_pid()")).scalar() != first_pid
        assert len(pings) == 2
    finally:
        eng.dispose()
