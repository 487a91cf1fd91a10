"""Reading the wallet: balance, ledger verification (ledger, running balances, lots), the settings view,
ledger pages and draws per customer. Re-exported by core.billing.wallet."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.accounts.actor import Actor
from core.accounts.permissions import authorize
from core.billing.purchases import open_auto_purchase
from core.billing.wallet_base import L, LedgerMismatch, S, W, floor_of, wallet_row
from core.billing.wallet_lots import verify_lots
from core.errors import ValidationError
from db.models import CustomerAccount
from db.models.wallet import LEDGER_KINDS

# ---------------------------------------------------------------- reading


def balance(session: Session, actor: Actor, partner_id: int) -> Decimal:
    authorize(actor, "wallet.view", partner_id)
    return wallet_row(session, partner_id).balance


def verify_ledger(session: Session, partner_id: int) -> Decimal:
    """Prove balance == sum(ledger) and that every entry's balance_after is the running sum. Returns the
    balance; raises LedgerMismatch otherwise."""
    w = wallet_row(session, partner_id)
    total = session.execute(select(func.coalesce(func.sum(L.c.credits), 0)).where(
        L.c.partner_id == partner_id, L.c.wallet_id == w.id)).scalar()
    if total != w.balance:
        raise LedgerMismatch(f"Wallet {w.id} of partner {partner_id}: balance {w.balance} but ledger sums to {total}.")
    running = func.sum(L.c.credits).over(order_by=L.c.id)
    sub = select(L.c.id, L.c.balance_after, running.label("running")).where(
        L.c.partner_id == partner_id, L.c.wallet_id == w.id).subquery()
    bad = session.execute(select(sub.c.id).where(sub.c.balance_after != sub.c.running).limit(1)).scalar()
    if bad is not None:
        raise LedgerMismatch(f"Wallet {w.id} of partner {partner_id}: entry {bad} has a wrong balance_after.")
    mismatches = session.execute(select(func.count()).select_from(func.wallet_verify(partner_id))).scalar()
    if mismatches:
        raise LedgerMismatch(f"wallet_verify({partner_id}) reports {mismatches} mismatch(es).")
    verify_lots(session, partner_id)
    return w.balance


@dataclass(frozen=True)
class WalletView:
    id: int
    partner_id: int
    currency: str
    balance: Decimal
    low_balance_threshold: Decimal | None
    reminder_armed: bool
    auto_buy_credits: Decimal | None
    auto_buy_armed: bool
    overdraft_policy: str
    overdraft_limit: Decimal
    floor: Decimal
    auto_buy_failures: int
    auto_buy_next_retry_at: datetime | None
    auto_buy_last_error: str | None
    auto_buy_gave_up: bool
    auto_buy_pending: bool = False  # an automatic purchase is waiting for the gateway's answer


def wallet_view(session: Session, actor: Actor, partner_id: int) -> WalletView | None:
    """The wallet and its settings for display; None when the partner has no wallet yet."""
    authorize(actor, "wallet.view", partner_id)
    w = session.execute(select(W).where(W.c.partner_id == partner_id)).first()
    if w is None:
        return None
    st = session.execute(select(S).where(S.c.partner_id == partner_id, S.c.wallet_id == w.id)).first()
    return WalletView(w.id, partner_id, w.currency, w.balance, w.low_balance_threshold, w.reminder_armed,
                      w.auto_buy_credits, w.auto_buy_armed, w.overdraft_policy, w.overdraft_limit, floor_of(w),
                      st.failures if st else 0, st.next_retry_at if st else None, st.last_error if st else None,
                      bool(st and st.gave_up), open_auto_purchase(session, w) is not None)


@dataclass(frozen=True)
class LedgerRow:
    id: int
    created_at: datetime
    kind: str
    credits: Decimal
    balance_after: Decimal
    amount: Decimal | None
    currency: str | None
    account_id: int | None
    account_name: str | None
    reason: str | None
    overdraft: bool
    event_ref: dict | None


def list_ledger(session: Session, actor: Actor, partner_id: int, *, kind: str | None = None,
                account_id: int | None = None, limit: int = 50, offset: int = 0) -> tuple[list[LedgerRow], int]:
    """One page of ledger entries, newest first, and the total count (for paging)."""
    authorize(actor, "wallet.view", partner_id)
    if kind is not None and kind not in LEDGER_KINDS:
        raise ValidationError({"kind": f"Unknown entry kind {kind!r}."})
    conds = [L.c.partner_id == partner_id]
    if kind:
        conds.append(L.c.kind == kind)
    if account_id is not None:
        conds.append(L.c.account_id == account_id)
    total = session.execute(select(func.count()).select_from(L).where(*conds)).scalar() or 0
    A = CustomerAccount.__table__
    q = (select(L, A.c.name.label("account_name"))
         .outerjoin(A, (A.c.partner_id == L.c.partner_id) & (A.c.id == L.c.account_id))
         .where(*conds).order_by(L.c.id.desc()).limit(max(1, min(limit, 500))).offset(max(0, offset)))
    rows = [LedgerRow(r.id, r.created_at, r.kind, r.credits, r.balance_after, r.amount, r.currency, r.account_id,
                      r.account_name, r.reason, r.overdraft, r.event_ref) for r in session.execute(q)]
    return rows, total


@dataclass(frozen=True)
class CustomerDraws:
    account_id: int
    account_name: str
    credits: Decimal
    draws: int


def draws_by_customer(session: Session, actor: Actor, partner_id: int, start: date, end: date) -> list[CustomerDraws]:
    """Credits drawn per customer between `start` and `end` (inclusive days, UTC), net of nothing else:
    what the partner's wallet paid for each customer."""
    authorize(actor, "wallet.view", partner_id)
    if end < start:
        raise ValidationError({"end": "The end date is before the start date."})
    return _draw_totals(session, partner_id, start, end)


def _draw_totals(session: Session, partner_id: int, start: date, end: date) -> list[CustomerDraws]:
    A = CustomerAccount.__table__
    lo = datetime(start.year, start.month, start.day, tzinfo=UTC)
    hi = datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)
    q = (select(L.c.account_id, A.c.name, -func.sum(L.c.credits), func.count())
         .join(A, (A.c.partner_id == L.c.partner_id) & (A.c.id == L.c.account_id))
         .where(L.c.partner_id == partner_id, L.c.kind == "usage_draw", L.c.created_at >= lo, L.c.created_at < hi)
         .group_by(L.c.account_id, A.c.name).order_by(A.c.name))
    return [CustomerDraws(a, n, c, k) for a, n, c, k in session.execute(q)]
