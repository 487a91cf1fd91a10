"""Statement e-mails: every final statement of a month in the automatic cycle is e-mailed once, with its
PDF, to the addressee's billing e-mail (else contact e-mail; a partner's collective invoice: the partner's
contact e-mail). The message is queued in the outbox in the transaction that claims the statement (FOR
UPDATE SKIP LOCKED) together with an ``outbox_attachments`` row, whose unique (partner, statement) key makes
it once; the PDF is rendered from the statement's final snapshot when the worker sends the message.
"""

from __future__ import annotations

from sqlalchemy import and_, insert, not_, select
from sqlalchemy.orm import Session

from core.accounts import audit
from core.accounts.actor import SYSTEM
from core.pricing.money import format_money
from core.statements import reading
from db.engine import platform_scope, scoped_session
from db.models import CustomerAccount, Partner
from db.models.integration import BillingCycle, OutboxAttachment
from db.models.statements import Statement
from db.models.wallet import OutboxMessage


def _recipient(session: Session, st: Statement) -> str | None:
    if st.account_id is not None:
        acc = session.get(CustomerAccount, (st.partner_id, st.account_id))
        return (acc.billing_email or acc.contact_email) if acc else None
    partner = session.get(Partner, st.partner_id)
    return partner.contact_email if partner else None


def _queue_one(session: Session) -> int | None:
    """Claim one final, un-mailed statement of a cycle month and queue its e-mail. Returns its id or None."""
    S = Statement.__table__
    C = BillingCycle.__table__
    A = OutboxAttachment.__table__
    mailed = select(A.c.outbox_id).where(A.c.partner_id == S.c.partner_id, A.c.statement_id == S.c.id).exists()
    claim = (select(S.c.partner_id, S.c.id)
             .join(C, and_(C.c.partner_id == S.c.partner_id, C.c.period_start == S.c.period_start))
             .where(C.c.status.in_(("review", "closed")), S.c.status == "final", S.c.kind != "credit_note",
                    not_(mailed))
             .order_by(S.c.partner_id, S.c.id).limit(1).with_for_update(of=S, skip_locked=True))
    while True:
        row = session.execute(claim).first()
        if row is None:
            return None
        # The claim's "not mailed yet" was read in the snapshot its statement started with. If another worker
        # queued this statement and committed after that moment but before the row lock was taken (the lock
        # is then free, and the row itself unchanged, so PostgreSQL does not re-check), the claim is stale: a
        # new statement, with a new snapshot, sees the other worker's attachment. Then claim again.
        done = select(A.c.outbox_id).where(A.c.partner_id == row.partner_id, A.c.statement_id == row.id)
        if session.execute(done).first() is None:
            break
    st = session.get(Statement, (row.partner_id, row.id))
    assert st is not None
    doc = reading.get_statement(session, SYSTEM, st.partner_id, st.id)
    issuer = doc.issuer.name or "Your provider"
    period = f"{st.period_start:%B %Y}"
    subject = f"{issuer}: statement {st.number} for {period}"
    body = (f"Hello,\n\nplease find attached statement {st.number} for {period}.\n"
            f"Total: {format_money(st.total, st.currency)}"
            + (f", due on {st.due_on.isoformat()}" if st.due_on else "")
            + f".\n\nThis message was sent automatically on behalf of {issuer}.\n")  # the issuer's name only
    # no address: the message stays in the outbox, visible and unsent
    recipient = _recipient(session, st)
    outbox_id = session.execute(insert(OutboxMessage).values(
        partner_id=st.partner_id, kind="statement", subject=subject[:300], body=body,
        recipient=recipient).returning(OutboxMessage.id)).scalar_one()
    session.add(OutboxAttachment(partner_id=st.partner_id, outbox_id=outbox_id, statement_id=st.id,
                                 filename=f"{st.number}.pdf"))
    session.flush()
    audit.record(session, SYSTEM, partner_id=st.partner_id, action="cycle.mail", entity="statement",
                 entity_id=st.id, account_id=st.account_id,
                 after={"outbox_id": outbox_id, "to": recipient, "number": st.number})
    return st.id


def queue_all(engine, limit: int = 1000) -> int:
    n = 0
    scope = platform_scope("worker: statement e-mails")
    while n < limit:
        with scoped_session(engine, scope) as s, s.begin():
            if _queue_one(s) is None:
                break
        n += 1
    return n


def attachments(session: Session, msg: OutboxMessage) -> list[tuple[str, str, bytes]]:
    """core.notify.outbox Attacher: the statement PDF of a statement e-mail (rendered from its snapshot)."""
    rows = session.execute(select(OutboxAttachment).where(OutboxAttachment.partner_id == msg.partner_id,
                                                          OutboxAttachment.outbox_id == msg.id)).scalars().all()
    return [(a.filename, "application/pdf", reading.export_pdf(session, SYSTEM, a.partner_id, a.statement_id))
            for a in rows]
