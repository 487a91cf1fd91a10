""""Keep me logged in": remembered logins survive a reload, and end on log-out, expiry, deactivation or a
password reset; a tampered or foreign cookie gets nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from core.accounts import accounts
from core.accounts.auth import REMEMBER_FOR, forget, remember, resume
from db.engine import unit_of_work


def _remember(engine, actor, now=None) -> str:
    with unit_of_work(engine) as s:
        return remember(s, actor, now=now)


def test_resume_then_forget(world, engine):
    cookie = _remember(engine, world.a.staff)
    with unit_of_work(engine) as s:
        assert resume(s, cookie).user_id == world.a.staff.user_id
    with unit_of_work(engine) as s:
        forget(s, cookie)
    with unit_of_work(engine) as s:
        assert resume(s, cookie) is None


def test_expired_and_tampered_cookies(world, engine):
    past = datetime.now(UTC) - REMEMBER_FOR - timedelta(minutes=1)
    old = _remember(engine, world.a.staff, now=past)
    good = _remember(engine, world.a.staff)
    pid, sid, secret = good.split(".", 2)
    with Session(engine) as s:
        assert resume(s, old) is None
        assert resume(s, f"{pid}.{sid}.{secret[:-1]}x") is None  # wrong secret
        assert resume(s, f"{world.b.partner_id}.{sid}.{secret}") is None  # another tenant's key
        assert resume(s, "garbage") is None and resume(s, None) is None and resume(s, "1.2") is None
        assert resume(s, good) is not None


def test_deactivation_and_password_reset_end_remembered_logins(world, engine):
    a = world.a
    annot = _remember(engine, a.users["annotator"])
    user = _remember(engine, a.users["user"])
    with unit_of_work(engine) as s:
        accounts.set_user_active(s, a.staff, a.partner_id, a.users["annotator"].user_id, False)
        accounts.reset_password(s, a.staff, a.partner_id, a.users["user"].user_id)
    with unit_of_work(engine) as s:
        assert resume(s, annot) is None and resume(s, user) is None
    with unit_of_work(engine) as s:  # and reactivating does not bring the old login back
        accounts.set_user_active(s, a.staff, a.partner_id, a.users["annotator"].user_id, True)
    with unit_of_work(engine) as s:
        assert resume(s, annot) is None
