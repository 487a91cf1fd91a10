"""Notifications: every message is written to the `outbox` table (visible in the app); it is e-mailed
through SMTP only when RC_SMTP_HOST is configured, by :func:`deliver_pending` after the writing
transaction has committed (so a rolled-back action never sends mail).

    python -m core.notify deliver     # send unsent outbox rows (run from cron / a scheduler)

SMTP settings: RC_SMTP_HOST, RC_SMTP_PORT (587), RC_SMTP_USER, RC_SMTP_PASSWORD, RC_SMTP_FROM,
RC_SMTP_STARTTLS (1). Tests never set RC_SMTP_HOST.
"""

from __future__ import annotations

import os
import smtplib
import sys
from email.message import EmailMessage

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.orm import Session

from core.accounts.links import LINK_KINDS  # messages carrying a secret link: for the recipient only
from core.accounts.permissions import authorize
from db.models import Partner
from db.models.wallet import OutboxMessage


def _recipient(conn: Session | Connection, partner_id: int) -> str | None:
    return conn.execute(select(Partner.contact_email).where(Partner.id == partner_id)).scalar()


def notify(conn: Session | Connection, partner_id: int, kind: str, subject: str, body: str,
           recipient: str | None = None) -> None:
    """Queue a message to the partner (default recipient: the partner's contact e-mail)."""
    conn.execute(insert(OutboxMessage).values(
        partner_id=partner_id, kind=kind, subject=subject[:300], body=body,
        recipient=recipient or _recipient(conn, partner_id)))


def notify_now(engine: Engine, partner_id: int, kind: str, subject: str, body: str) -> None:
    """Queue a message in its own committed transaction (for facts that survive a rollback)."""
    with engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
        notify(conn, partner_id, kind, subject, body)


def list_outbox(session: Session, actor, partner_id: int, limit: int = 100, offset: int = 0) -> list[OutboxMessage]:
    authorize(actor, "wallet.view", partner_id)
    return list(session.scalars(select(OutboxMessage).where(OutboxMessage.partner_id == partner_id,
                                                            OutboxMessage.kind.not_in(LINK_KINDS))
                                .order_by(OutboxMessage.id.desc()).limit(min(limit, 500)).offset(offset)))


def smtp_configured() -> bool:
    return bool(os.environ.get("RC_SMTP_HOST"))


def _send(msg: OutboxMessage) -> None:
    email = EmailMessage()
    email["From"] = os.environ.get("RC_SMTP_FROM", "no-reply@localhost")
    email["To"] = msg.recipient
    email["Subject"] = msg.subject
    email.set_content(msg.body)
    host, port = os.environ["RC_SMTP_HOST"], int(os.environ.get("RC_SMTP_PORT", "587"))
    with smtplib.SMTP(host, port, timeout=20) as smtp:
        if os.environ.get("RC_SMTP_STARTTLS", "1") == "1":
            smtp.starttls()
        user = os.environ.get("RC_SMTP_USER")
        if user:
            smtp.login(user, os.environ.get("RC_SMTP_PASSWORD", ""))
        smtp.send_message(email)


def deliver_pending(engine: Engine, limit: int = 200) -> int:
    """Send unsent messages that have a recipient. No-op (returns 0) unless SMTP is configured."""
    if not smtp_configured():
        return 0
    sent = 0
    with Session(engine) as s, s.begin():
        rows = s.scalars(select(OutboxMessage).where(OutboxMessage.sent_at.is_(None),
                                                     OutboxMessage.recipient.is_not(None))
                         .order_by(OutboxMessage.id).limit(limit).with_for_update(skip_locked=True)).all()
        for msg in rows:
            try:
                _send(msg)
            except (OSError, smtplib.SMTPException) as exc:
                s.execute(update(OutboxMessage).where(OutboxMessage.partner_id == msg.partner_id,
                                                      OutboxMessage.id == msg.id).values(error=str(exc)[:500]))
                continue
            s.execute(update(OutboxMessage).where(OutboxMessage.partner_id == msg.partner_id,
                                                  OutboxMessage.id == msg.id).values(sent_at=func.now(), error=None))
            sent += 1
    return sent


def main(argv: list[str] | None = None) -> int:
    """`python -m core.notify deliver`: send what the outbox holds (SMTP when configured)."""
    from db.engine import make_engine

    if (sys.argv[1:] if argv is None else argv) != ["deliver"]:
        print("usage: python -m core.notify deliver")
        return 2
    print(f"sent {deliver_pending(make_engine())} message(s)")
    return 0


if __name__ == "__main__":  # pragma: no cover - operational entry point
    raise SystemExit(main())
