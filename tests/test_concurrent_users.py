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
