"""Monthly statements, collective invoices and credit notes (see docs/statements.md).

Who issues what for a month (per customer, split by `core.billing.modes.modes_in_period`):
- days in *customer pays*: the platform (house partner's branding) issues a statement to the customer;
- days in *partner pays* (prepaid or on demand): the partner issues a statement to its customer, in the
  partner's branding only, showing what the partner paid (credits drawn / charged on demand);
- days in *agency*: no customer statement; the usage goes onto the partner's collective invoice from the
  platform, one section per agency customer, together with the partner-level plan's fees (client bands).

The money comes from the billing engine: the days of each issuer are rated with `core.pricing.rate` over the
whole month (so fees are prorated by the days the issuer covers), from `core.billing.rating.segments_for`.

Lifecycle: draft (recomputed freely: generate() again) -> final (number + snapshot, immutable, usage period
locked) -> void (a draft at any time; a final one only together with a full credit note). Corrections to a
final statement are credit notes, numbered in their own series. Numbers are allocated at finalisation under
a row lock on the issuer's sequence in the same transaction: a rolled-back finalisation leaves no gap.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from core import clock
from core.accounts import audit
from core.accounts.actor import Actor
from core.accounts.permissions import authorize
from core.errors import Conflict, PermissionDenied, ValidationError
from core.statements.content import ZERO, Content, LineData, compute, involved_accounts
from core.statements.documents import build_document, fetch
from core.statements.planning import Key, MonthData, check_key, plan_month
from core.statements.settings import branding
from core.usage import periods
from db.models.statements import Statement, StatementLine, StatementNumber, StatementSequence

ADVISORY_NS = 42_006  # advisory-lock namespace: one statement key generated at a time

# Test hook: called after a statement's header row is written and before its lines are (kill tests).
on_header_written: list[Callable[[Session, Statement], None]] = []


# ---------------------------------------------------------------- writing drafts


@dataclass(frozen=True)
class Outcome:
    key: Key
    action: str  # created | updated | unchanged | final | finalised | removed | nothing
    statement_id: int | None = None
    number: str | None = None
    total: Decimal | None = None


def _key_lock_id(key: Key) -> int:
    """The key's advisory-lock number, the same in every process (Python's str hash is salted per process)."""
    raw = f"{key.partner_id}:{key.kind}:{key.issuer_partner_id}:{key.account_id or 0}:{key.period_start}"
    return int.from_bytes(hashlib.blake2b(raw.encode(), digest_size=4).digest(), "big", signed=True)


def _key_lock(session: Session, key: Key) -> None:
    session.execute(text("SELECT pg_advisory_xact_lock(:ns, :k)"), {"ns": ADVISORY_NS, "k": _key_lock_id(key)})


def _live(session: Session, key: Key, *, lock: bool = False) -> Statement | None:
    q = select(Statement).where(
        Statement.partner_id == key.partner_id, Statement.kind == key.kind,
        Statement.issuer_partner_id == key.issuer_partner_id, Statement.period_start == key.period_start,
        Statement.status != "void")
    q = q.where(Statement.account_id == key.account_id) if key.account_id is not None else \
        q.where(Statement.account_id.is_(None))
    if lock:
        q = q.with_for_update()
    return session.scalar(q.execution_options(populate_existing=True))


def key_of(st: Statement) -> Key:
    return Key(st.partner_id, st.kind, st.issuer_partner_id, st.account_id, st.period_start, st.period_end)


def _write_lines(session: Session, st: Statement, lines: list[LineData], *, new: bool = False) -> None:
    if not new:
        session.execute(delete(StatementLine).where(StatementLine.partner_id == st.partner_id,
                                                    StatementLine.statement_id == st.id))
    if lines:
        session.execute(insert(StatementLine), [_line_row(st, i, ln) for i, ln in enumerate(lines, start=1)])


def _line_row(st: Statement, line_no: int, ln: LineData) -> dict:
    return {"partner_id": st.partner_id, "statement_id": st.id, "line_no": line_no, "section": ln.section,
            "section_account_id": ln.section_account_id, "kind": ln.kind, "label": ln.label[:300],
            "metric": ln.metric, "quantity": ln.quantity, "amount": ln.amount, "explanation": ln.explanation,
            "credits": ln.credits, "mode": ln.mode}


def _apply(st: Statement, c: Content) -> None:
    st.currency, st.language, st.modes = c.currency, c.language, c.modes
    st.subtotal, st.tax_rate, st.tax_amount, st.total = c.subtotal, c.tax_rate, c.tax_amount, c.total
    st.credits_drawn, st.charged_on_demand = c.credits_drawn, c.charged_on_demand
    st.fingerprint = c.fingerprint()
    st.updated_at = clock.now()


def _summary(st: Statement) -> dict:
    return {"kind": st.kind, "status": st.status, "account_id": st.account_id, "issuer": st.issuer_partner_id,
            "period": st.period_start, "total": st.total, "currency": st.currency, "number": st.number}


def _upsert_draft(session: Session, actor: Actor, key: Key, content: Content | None,
                  existing: Statement | None) -> Outcome:
    if content is None:
        if existing is None:
            return Outcome(key, "nothing")
        audit.record(session, actor, partner_id=key.partner_id, action="delete", entity="statement",
                     entity_id=existing.id, account_id=key.account_id, before=_summary(existing))
        session.delete(existing)
        session.flush()
        return Outcome(key, "removed", existing.id)
    if existing is not None:
        if existing.fingerprint == content.fingerprint():
            return Outcome(key, "unchanged", existing.id, None, existing.total)
        before = _summary(existing)
        _apply(existing, content)
        session.flush()
        _write_lines(session, existing, content.lines)
        audit.record(session, actor, partner_id=key.partner_id, action="regenerate", entity="statement",
                     entity_id=existing.id, account_id=key.account_id, before=before, after=_summary(existing))
        return Outcome(key, "updated", existing.id, None, existing.total)
    st = Statement(partner_id=key.partner_id, kind=key.kind, status="draft", issuer_partner_id=key.issuer_partner_id,
                   account_id=key.account_id, period_start=key.period_start, period_end=key.period_end,
                   created_by=actor.user_id or None)
    _apply(st, content)
    session.add(st)
    session.flush()
    for hook in list(on_header_written):
        hook(session, st)
    _write_lines(session, st, content.lines, new=True)
    audit.record(session, actor, partner_id=key.partner_id, action="generate", entity="statement",
                 entity_id=st.id, account_id=key.account_id, after=_summary(st))
    return Outcome(key, "created", st.id, None, st.total)


def generate(session: Session, actor: Actor, key: Key, *, finalise: bool = False,
             data: MonthData | None = None, today: date | None = None) -> Outcome:
    """Create or recompute the draft for `key` (idempotent: an unchanged draft is not written; a final one is
    left alone). With finalise=True the draft is finalised in the same transaction, always from fresh reads
    under the period lock (`data`, a prefetched month, is only used for drafts), issued on `today` (default:
    the current UTC date)."""
    authorize(actor, "billing.manage", key.partner_id, key.account_id)
    if data is not None:
        data.rebind(session)
    _key_lock(session, key)
    existing = _live(session, key, lock=True)
    if existing is None:
        check_key(session, key, data)
    if existing is not None and existing.status == "final":
        return Outcome(key, "final", existing.id, existing.number, existing.total)
    if finalise:
        _authorize_issuer(actor, key.partner_id, key.issuer_partner_id)
        for account_id in involved_accounts(session, key):
            periods.lock_period(session, key.partner_id, account_id, key.period_start, key.period_end)
    content = compute(session, key, None if finalise else data)
    out = _upsert_draft(session, actor, key, content, existing)
    if finalise and out.statement_id is not None and out.action != "removed":
        st = fetch(session, key.partner_id, out.statement_id, lock=True)
        _finalise_locked(session, actor, st, today=today, lines=content.lines if content else None)
        return Outcome(key, "finalised", st.id, st.number, st.total)
    return out


def regenerate(session: Session, actor: Actor, partner_id: int, statement_id: int) -> Outcome:
    """Recompute one draft from the current usage, plans and settings."""
    st = fetch(session, partner_id, statement_id)
    if st.kind == "credit_note":
        raise Conflict("A credit note is not recomputed.")
    if st.status != "draft":
        raise Conflict(f"Statement {st.number} is {st.status}: only drafts are recomputed.")
    return generate(session, actor, key_of(st))


def generate_month(session: Session, actor: Actor, partner_id: int, month: str | date, *,
                   finalise: bool = False) -> list[Outcome]:
    """All of a partner's drafts for a month in this one transaction (the page's "Generate drafts");
    the CLI uses plan_month + generate, one transaction per statement."""
    authorize(actor, "billing.manage", partner_id)
    data = MonthData(session, partner_id, month)
    return [generate(session, actor, k, finalise=finalise, data=data)
            for k in plan_month(session, actor, partner_id, month, data)]


# ---------------------------------------------------------------- finalising and numbering


def _authorize_issuer(actor: Actor, partner_id: int, issuer_partner_id: int) -> None:
    """Statements the platform issues to a partner's customers (or to the partner) are finalised, voided and
    credited by platform admins only; a partner finalises what it issues itself."""
    authorize(actor, "billing.manage", partner_id)
    if issuer_partner_id != partner_id and not actor.is_admin:
        raise PermissionDenied("Only the platform finalises, voids or credits the statements it issues.")


def _allocate(session: Session, issuer_id: int, series: str, prefix: str, year: int) -> tuple[int, str]:
    """The issuer's next number, under a row lock held to commit: concurrent finalisations queue here, and a
    rollback returns the number (no gaps). One unbroken sequence per issuer and series, across years."""
    session.execute(pg_insert(StatementSequence).values(partner_id=issuer_id, series=series, next_number=1)
                    .on_conflict_do_nothing(index_elements=["partner_id", "series"]))
    seq = session.execute(update(StatementSequence)
                          .where(StatementSequence.partner_id == issuer_id, StatementSequence.series == series)
                          .values(next_number=StatementSequence.next_number + 1)
                          .returning(StatementSequence.next_number - 1)).scalar_one()
    tag = "-CN" if series == "credit_note" else ""
    return seq, f"{prefix}{tag}-{year}-{seq:06d}"



def _keep_parts(snap: dict, lines: list[LineData] | None) -> None:
    """Store the engine's structured label / explanation of each line in the snapshot (same order as written)."""
    if not lines or len(lines) != len(snap.get("lines") or []):
        return
    for out, ln in zip(snap["lines"], lines, strict=True):
        if ln.label_parts:
            out["label_parts"] = ln.label_parts
        if ln.explanation_parts:
            out["explanation_parts"] = ln.explanation_parts


def _finalise_locked(session: Session, actor: Actor, st: Statement, *, today: date | None = None,
                     extra: dict | None = None, lines: list[LineData] | None = None) -> Statement:
    issuer = branding(session, st.issuer_partner_id)
    day = today or clock.today()
    series = "credit_note" if st.kind == "credit_note" else "invoice"
    seq, number = _allocate(session, st.issuer_partner_id, series, issuer.number_prefix, day.year)
    session.add(StatementNumber(partner_id=st.issuer_partner_id, series=series, sequence=seq, number=number,
                                statement_partner_id=st.partner_id, statement_id=st.id))
    st.series, st.sequence, st.number = series, seq, number
    st.issued_on, st.due_on = day, day + timedelta(days=issuer.payment_terms_days)
    snap = build_document(session, st).to_json()
    snap["status"] = "final"
    _keep_parts(snap, lines)
    snap.update(extra or {})
    st.snapshot = json.loads(json.dumps(snap, default=str))
    st.status = "final"
    st.finalised_at, st.finalised_by = clock.now(), actor.user_id or None
    st.updated_at = clock.now()
    session.flush()
    audit.record(session, actor, partner_id=st.partner_id, action="finalise", entity="statement", entity_id=st.id,
                 account_id=st.account_id, before={"status": "draft"}, after=_summary(st))
    return st


def finalise(session: Session, actor: Actor, partner_id: int, statement_id: int, *,
             today: date | None = None) -> Statement:
    """Finalise a draft: lock the usage period of the accounts it prices (late usage becomes a correction),
    recompute it under that lock, give it the issuer's next number and store the snapshot. Immutable after.
    `today`: the issue date (default: the current UTC date; its year is in the number)."""
    st = fetch(session, partner_id, statement_id)
    _authorize_issuer(actor, partner_id, st.issuer_partner_id)
    if st.kind == "credit_note":
        raise Conflict("Credit notes are final when they are created.")
    if st.status != "draft":
        raise Conflict(f"Statement {st.number or st.id} is already {st.status}.")
    out = generate(session, actor, key_of(st), finalise=True, today=today)
    if out.action != "finalised":
        raise Conflict("There is nothing to bill for this statement any more; it was removed.")
    return fetch(session, partner_id, out.statement_id)  # type: ignore[arg-type]


# ---------------------------------------------------------------- void and credit notes


def _credited_so_far(session: Session, st: Statement) -> dict[int, Decimal]:
    """Original line number -> amount already credited by earlier credit notes."""
    out: dict[int, Decimal] = {}
    for snap in session.scalars(select(Statement.snapshot).where(
            Statement.partner_id == st.partner_id, Statement.credit_note_for == st.id)):
        for no, amount in (snap or {}).get("credited_lines", {}).items():
            out[int(no)] = out.get(int(no), ZERO) + Decimal(amount)
    return out


def create_credit_note(session: Session, actor: Actor, partner_id: int, statement_id: int, reason: str,
                       line_nos: Iterable[int] | None = None, *, today: date | None = None) -> Statement:
    """Credit a final statement, fully (all lines not yet credited) or by lines, with a reason. The credit note
    is final at once, numbered in the issuer's credit-note series, with the original's tax rate."""
    st = fetch(session, partner_id, statement_id, lock=True)
    _authorize_issuer(actor, partner_id, st.issuer_partner_id)
    reason = (reason or "").strip()
    errors: dict[str, str] = {}
    if not reason:
        errors["reason"] = "Give the reason for the credit note."
    elif len(reason) > 1000:
        errors["reason"] = "At most 1000 characters."
    if st.kind == "credit_note":
        raise Conflict("A credit note cannot be credited.")
    if st.status != "final":
        raise Conflict(f"Only final statements are credited; this one is {st.status}.")
    lines = session.scalars(select(StatementLine).where(
        StatementLine.partner_id == partner_id, StatementLine.statement_id == st.id)
        .order_by(StatementLine.line_no)).all()
    done = _credited_so_far(session, st)
    open_lines = {ln.line_no: ln for ln in lines if ln.amount - done.get(ln.line_no, ZERO) != 0}
    wanted = sorted(set(line_nos)) if line_nos is not None else sorted(open_lines)
    bad = [n for n in wanted if n not in open_lines]
    if bad:
        errors["lines"] = f"Line(s) {', '.join(map(str, bad))} do not exist or are already credited."
    elif not wanted:
        errors["lines"] = "Choose at least one line to credit (nothing is left to credit)."
    if errors:
        raise ValidationError(errors)
    credit_lines = []
    orig_parts = {int(x["line_no"]): x for x in (st.snapshot or {}).get("lines", []) if "line_no" in x}
    for n in wanted:
        ln = open_lines[n]
        left = ln.amount - done.get(n, ZERO)
        snap_line = orig_parts.get(n, {})
        credit_lines.append(LineData(kind="credit", label=ln.label, amount=-left, explanation=ln.explanation or "",
                                     metric=ln.metric, quantity=ln.quantity, credits=ln.credits, mode=ln.mode,
                                     section=ln.section, section_account_id=ln.section_account_id,
                                     label_parts=snap_line.get("label_parts"),
                                     explanation_parts=snap_line.get("explanation_parts")))
    content = Content(currency=st.currency, language=st.language, lines=credit_lines, modes=st.modes or [],
                      tax_rate=st.tax_rate)
    cn = Statement(partner_id=partner_id, kind="credit_note", status="draft", issuer_partner_id=st.issuer_partner_id,
                   account_id=st.account_id, period_start=st.period_start, period_end=st.period_end,
                   credit_note_for=st.id, reason=reason, created_by=actor.user_id or None)
    _apply(cn, content)
    session.add(cn)
    session.flush()
    _write_lines(session, cn, credit_lines, new=True)
    session.flush()
    credited = {str(n): str(open_lines[n].amount - done.get(n, ZERO)) for n in wanted}
    _finalise_locked(session, actor, cn, today=today, lines=credit_lines,
                     extra={"credited_lines": credited, "credit_note_for": st.number})
    return cn


def void(session: Session, actor: Actor, partner_id: int, statement_id: int, reason: str = "") -> Statement:
    """Void a draft (it is dropped from the month; generate makes a new one), or a final statement together
    with a full credit note for what is not yet credited (the reason is required then)."""
    st = fetch(session, partner_id, statement_id, lock=True)
    _authorize_issuer(actor, partner_id, st.issuer_partner_id)
    if st.kind == "credit_note":
        raise Conflict("A credit note cannot be voided.")
    if st.status == "void":
        raise Conflict("This statement is already void.")
    reason = (reason or "").strip()
    if st.status == "final":
        if not reason:
            raise ValidationError({"reason": "Give the reason: voiding a final statement issues a credit note."})
        done = _credited_so_far(session, st)
        amounts = session.execute(select(StatementLine.line_no, StatementLine.amount).where(
            StatementLine.partner_id == partner_id, StatementLine.statement_id == st.id)).all()
        if any(a - done.get(n, ZERO) != 0 for n, a in amounts):
            create_credit_note(session, actor, partner_id, statement_id, reason)
    before = _summary(st)
    st.status, st.voided_at, st.voided_by = "void", clock.now(), actor.user_id or None
    st.void_reason = reason or None
    st.updated_at = clock.now()
    session.flush()
    audit.record(session, actor, partner_id=partner_id, action="void", entity="statement", entity_id=st.id,
                 account_id=st.account_id, before=before, after={"status": "void", "reason": reason})
    return st
