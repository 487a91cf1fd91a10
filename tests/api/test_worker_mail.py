"""E-mail through a real SMTP server (aiosmtpd in the test process): statements with their PDF, reminders;
without SMTP the outbox says so."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes, policy

from sqlalchemy import text

from core.notify import outbox
from core.worker import jobs
from tests.api.cycle_helpers import NOV_1, month_to_bill
from tests.api.servers import smtp_sink


def _smtp_env(monkeypatch, port: int) -> None:
    monkeypatch.setenv("RC_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("RC_SMTP_PORT", str(port))
    monkeypatch.setenv("RC_SMTP_STARTTLS", "0")
    monkeypatch.setenv("RC_SMTP_FROM", "billing@console.example")


def test_final_statements_reach_a_real_smtp_server_with_their_pdf(world, db, monkeypatch):
    month_to_bill(world, db, review_days=0)
    with db.begin() as c:  # a reminder in the outbox too (the partner's contact address)
        outbox.notify(c, world.a.partner_id, "low_balance", "Your credit balance is low", "Buy credits.",
                      recipient="ops-a@example.com")
    with smtp_sink() as (sink, port):
        _smtp_env(monkeypatch, port)
        jobs.run_once(db, NOV_1, force=True)  # drafts; window 0 days for the platform, 3 for the partners
        jobs.run_once(db, NOV_1 + timedelta(minutes=1), force=True)  # finalise, queue, send
        assert len(sink.messages) == 3
        by_to = {tuple(m.rcpt_tos): message_from_bytes(m.content, policy=policy.default) for m in sink.messages}
    msg = by_to[("billing-std-a@example.com",)]
    # from the issuer's name (here the platform; a partner's when it bills its clients: white label, issue 15)
    assert msg["From"] == "Reseller Console <billing@console.example>"
    assert msg["Subject"].startswith("Platform direct: statement ") and "October 2026" in msg["Subject"]
    assert msg["Message-ID"] and msg["Date"] and msg["X-Reseller-Kind"] == "statement"
    body = msg.get_body(preferencelist=("plain",)).get_content()
    assert "Total: EUR 206.00, due on " in body
    [att] = list(msg.iter_attachments())
    assert att.get_content_type() == "application/pdf"
    with db.connect() as c:
        number = c.execute(text("SELECT number FROM statements WHERE account_id = :a"),
                           {"a": world.a.account_id}).scalar()
    assert att.get_filename() == f"{number}.pdf"
    assert att.get_content().startswith(b"%PDF")
    reminder = by_to[("ops-a@example.com",)]
    assert reminder["Subject"] == "Your credit balance is low" and not list(reminder.iter_attachments())
    with db.connect() as c:
        assert c.execute(text("SELECT count(*) FROM outbox WHERE sent_at IS NULL")).scalar() == 0


def test_without_smtp_messages_are_marked_not_sent(world, db, monkeypatch):
    monkeypatch.delenv("RC_SMTP_HOST", raising=False)
    with db.begin() as c:
        outbox.notify(c, world.a.partner_id, "low_balance", "Low", "Buy credits.", recipient="ops@example.com")
    jobs.run_once(db, NOV_1)
    with db.connect() as c:
        assert c.execute(text("SELECT error, sent_at FROM outbox")).one() == ("not sent: no SMTP", None)


def test_a_failing_smtp_server_is_recorded_and_retried(world, db, monkeypatch):
    from tests.api.servers import free_port

    with db.begin() as c:
        outbox.notify(c, world.a.partner_id, "low_balance", "Low", "Buy credits.", recipient="ops@example.com")
    _smtp_env(monkeypatch, free_port())  # nobody listens there
    assert outbox.deliver_pending(db) == 0
    with db.connect() as c:
        assert c.execute(text("SELECT error FROM outbox")).scalar().startswith("send failed:")
    with smtp_sink() as (sink, port):
        _smtp_env(monkeypatch, port)
        assert outbox.deliver_pending(db) == 1
        assert len(sink.messages) == 1


def test_a_broken_attachment_is_recorded_and_the_rest_is_sent(world, db, monkeypatch):
    with db.begin() as c:
        outbox.notify(c, world.a.partner_id, "statement", "With PDF", "x", recipient="one@example.com")
        outbox.notify(c, world.a.partner_id, "low_balance", "Plain", "y", recipient="two@example.com")

    def attach(session, msg):
        if msg.subject == "With PDF":
            raise RuntimeError("no fonts")
        return []

    with smtp_sink() as (sink, port):
        _smtp_env(monkeypatch, port)
        assert outbox.deliver_pending(db, attach=attach) == 1
        assert [m.rcpt_tos for m in sink.messages] == [["two@example.com"]]
    with db.connect() as c:
        assert c.execute(text("SELECT error FROM outbox WHERE subject = 'With PDF'")).scalar() == \
            "send failed: attachment: no fonts"
