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
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid

from sqlalchemy import Connection, Engine, and_, func, insert, select, update
from sqlalchemy.orm import Session

from core.accounts.links import (
    LINK_KINDS,  # messages carrying a secret link: for the recipient only
    client_brand,
    sender_name,
)
from core.accounts.permissions import authorize
from core.notify import webhooks
from db.engine import Scope, partner_scope, scoped_begin, scoped_session
from db.models import Partner
from db.models.integration import OutboxAttachment
from db.models.statements import Statement
from db.models.wallet import OutboxMessage

_DELIVERY = Scope(platform="outbox delivery (every partner's messages)")  # row-level security


def _recipient(conn: Session | Connection, partner_id: int) -> str | None:
    return conn.execute(select(Partner.contact_email).where(Partner.id == partner_id)).scalar()


def notify(conn: Session | Connection, partner_id: int, kind: str, subject: str, body: str,
           recipient: str | None = None, data: dict | None = None) -> int:
    """Queue a message to the partner (default recipient: the partner's contact e-mail), and the webhook
    event of its kind (core.notify.webhooks.KIND_EVENTS) for the partner's subscribed endpoints, with `data`
    (default: the subject and body). Returns the outbox id."""
    outbox_id = conn.execute(insert(OutboxMessage).values(
        partner_id=partner_id, kind=kind, subject=subject[:300], body=body,
        recipient=recipient or _recipient(conn, partner_id)).returning(OutboxMessage.id)).scalar_one()
    event_type = webhooks.KIND_EVENTS.get(kind)
    if event_type is not None:
        webhooks.emit(conn, partner_id, event_type, data if data is not None else {"subject": subject, "body": body})
    return outbox_id


def notify_now(engine: Engine, partner_id: int, kind: str, subject: str, body: str) -> None:
    """Queue a message in its own committed transaction (for facts that survive a rollback)."""
    with scoped_begin(engine, partner_scope(partner_id)) as conn:
        conn.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
        notify(conn, partner_id, kind, subject, body)


def list_outbox(session: Session, actor, partner_id: int, limit: int = 100, offset: int = 0) -> list[OutboxMessage]:
    authorize(actor, "wallet.view", partner_id)
    return list(session.scalars(select(OutboxMessage).where(OutboxMessage.partner_id == partner_id,
                                                            OutboxMessage.kind.not_in(LINK_KINDS))
                                .order_by(OutboxMessage.id.desc()).limit(min(limit, 500)).offset(offset)))


def smtp_configured() -> bool:
    return bool(os.environ.get("RC_SMTP_HOST"))


NO_SMTP = "not sent: no SMTP"
# (filename, MIME type, bytes) of the files to attach to a message, given the open session and the row
Attacher = Callable[[Session, OutboxMessage], list[tuple[str, str, bytes]]]


def _send(msg: OutboxMessage, attachments: list[tuple[str, str, bytes]] | None = None,
          from_name: str | None = None) -> None:
    email = EmailMessage()
    sender = os.environ.get("RC_SMTP_FROM", "no-reply@localhost")
    # the display name is the brand the recipient knows: the partner's for its clients (white label)
    email["From"] = formataddr((from_name, sender)) if from_name else sender
    email["To"] = msg.recipient
    email["Subject"] = msg.subject
    email["Date"] = formatdate(localtime=False)
    email["Message-ID"] = make_msgid(idstring=f"outbox-{msg.partner_id}-{msg.id}",
                                     domain=sender.rsplit("@", 1)[-1] or "localhost")
    email["X-Reseller-Kind"] = msg.kind
    email.set_content(msg.body)
    for filename, mime, data in attachments or []:
        maintype, subtype = mime.split("/", 1)
        email.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    host, port = os.environ["RC_SMTP_HOST"], int(os.environ.get("RC_SMTP_PORT", "587"))
    with smtplib.SMTP(host, port, timeout=20) as smtp:
        if os.environ.get("RC_SMTP_STARTTLS", "1") == "1":
            smtp.starttls()
        user = os.environ.get("RC_SMTP_USER")
        if user:
            smtp.login(user, os.environ.get("RC_SMTP_PASSWORD", ""))
        smtp.send_message(email)


def mark_unsendable(engine: Engine) -> int:
    """Without SMTP: unsent messages are marked "not sent: no SMTP" (visible in the outbox), never dropped
    silently; they are still sent once SMTP is configured."""
    with scoped_begin(engine, _DELIVERY) as conn:
        return conn.execute(update(OutboxMessage).where(
            OutboxMessage.sent_at.is_(None),
            (OutboxMessage.error.is_(None)) | (OutboxMessage.error != NO_SMTP)).values(error=NO_SMTP)).rowcount


def _from_name(session: Session, msg: OutboxMessage) -> str:
    """A statement comes from its issuer (the partner when the partner bills the client: never the platform's
    name then); other messages from the brand the recipient knows (core.accounts.links.sender_name)."""
    if msg.kind == "statement":
        issuer = session.execute(select(Statement.issuer_partner_id).join(OutboxAttachment, and_(
            OutboxAttachment.partner_id == Statement.partner_id, OutboxAttachment.statement_id == Statement.id))
            .where(OutboxAttachment.partner_id == msg.partner_id, OutboxAttachment.outbox_id == msg.id)).scalar()
        brand = client_brand(session, issuer) if issuer is not None else None
        if brand is not None:
            return brand[0]
    return sender_name(session, msg.partner_id, msg.recipient)


def deliver_one(engine: Engine, attach: Attacher | None = None) -> str | None:
    """Claim one unsent message with a recipient (FOR UPDATE SKIP LOCKED: two workers never send the same
    one), send it through SMTP with its attachments and record the outcome: "sent" or "failed"; None when
    none is left to try in this round (failed ones are tried again by the next call of deliver_pending)."""
    with scoped_session(engine, _DELIVERY) as s, s.begin():
        msg = s.scalars(select(OutboxMessage).where(OutboxMessage.sent_at.is_(None),
                                                    OutboxMessage.recipient.is_not(None),
                                                    (OutboxMessage.error.is_(None)) | (OutboxMessage.error == NO_SMTP))
                        .order_by(OutboxMessage.id).limit(1).with_for_update(skip_locked=True)).first()
        if msg is None:
            return None
        key = (OutboxMessage.partner_id == msg.partner_id) & (OutboxMessage.id == msg.id)
        try:
            files = attach(s, msg) if attach else None
        except Exception as exc:  # noqa: BLE001 - a broken attachment must not stop the rest of the outbox
            s.execute(update(OutboxMessage).where(key).values(error=f"send failed: attachment: {exc}"[:500]))
            return "failed"
        try:
            _send(msg, files, _from_name(s, msg))
        except (OSError, smtplib.SMTPException) as exc:
            s.execute(update(OutboxMessage).where(key).values(error=f"send failed: {exc}"[:500]))
            return "failed"
        s.execute(update(OutboxMessage).where(key).values(sent_at=func.now(), error=None))
    return "sent"


def retry_failed(engine: Engine) -> int:
    """Make messages whose sending failed eligible again (the worker calls this now and then)."""
    with scoped_begin(engine, _DELIVERY) as conn:
        return conn.execute(update(OutboxMessage).where(
            OutboxMessage.sent_at.is_(None), OutboxMessage.error.like("send failed:%")).values(error=None)).rowcount


def deliver_pending(engine: Engine, limit: int = 200, attach: Attacher | None = None) -> int:
    """Send unsent messages that have a recipient; without SMTP, mark them "not sent: no SMTP" and return 0."""
    if not smtp_configured():
        mark_unsendable(engine)
        return 0
    retry_failed(engine)
    sent = 0
    for _ in range(limit):
        outcome = deliver_one(engine, attach)
        if outcome is None:
            break
        sent += outcome == "sent"
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
