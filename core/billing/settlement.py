"""Settling partner-paid usage as it is recorded.

For a customer in mode *partner pays, prepaid* the credits its usage costs are drawn from the partner's
wallet at once; in *partner pays, on demand* the partner's payment method is charged at once for exactly
what the usage cost. Both run inside the ingestion transaction (hook `core.usage.ingest.on_events_recorded`):
if the partner's credits do not cover the usage (and no overdraft or automatic purchase helps) or an
on-demand charge is declined with "block", the whole batch is refused and nothing is written.

Exactness: tiered and volume prices make the price of one event depend on the month's other events, so a
batch is not priced alone. Each batch re-rates the customer's month to date with the billing engine and
settles only the difference to what was settled before (kept in `usage_settlements`). The sum of all
draws (charges) of a month is therefore exactly the month's usage credits (usage amount, each line rounded
once, less the plan's discounts on usage) — the same figures the statement shows. A difference that would be negative (a `latest`-value metric
going down) is not refunded automatically; the month's statement is the place to correct it.

A mode that starts mid-month settles only what its own days add: the month-to-date figures at the day
before the mode started are its baseline, because that usage is paid under the previous mode.

Two price layers (issue 10): what the partner pays is priced by the platform's **rate card** for the partner
(core.billing.ratecards), never by the partner's own plan for its client. Prepaid draws the card's credits
(credit rates; money prices converted at the card's credit price); on demand charges the card's money
amount. Only a partner that no rate card prices at all (data from before migration 0012, no standard card in
its currency) is still settled at the credit rates and prices of the client's plan (legacy).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.billing import ratecards
from core.billing.modes import PARTNER_PAID, SettlementResult, mode_row, settle_new_usage
from core.billing.rating import month_of, segments_for
from core.pricing import Rating, rate
from db.models import CustomerAccount
from db.models.settlement import UsageSettlement


@dataclass(frozen=True)
class UsageCost:
    credits: Decimal  # credits drawn from a prepaid wallet (charges with settle = "wallet")
    amount: Decimal  # money for usage lines (rounded per line), without fees and minimums


def usage_cost(rating: Rating, usage_discounts: frozenset[str] = frozenset()) -> UsageCost:
    """Credits and money of the usage lines, net of the plan's discounts that apply to usage only
    (discounts on fees or on the whole bill are settled on the statement, with the fees)."""
    credits = sum((Decimal(c) for c in rating.credits.values()), Decimal(0))
    amount = sum((line.amount for line in rating.lines if line.kind == "usage"
                  or (line.kind == "discount" and line.discount_id in usage_discounts)), Decimal(0))
    return UsageCost(credits, max(amount, Decimal(0)))


def month_to_date_cost(session: Session, partner_id: int, account_id: int, day: date,
                       until: date | None = None) -> tuple[UsageCost, str]:
    """What the month containing `day` costs the partner, with usage up to `until` (default: all recorded):
    at the rate card in force, else (legacy, no card) at the client plan's credit rates and prices."""
    start, end = month_of(day)
    acc = session.get(CustomerAccount, (partner_id, account_id))
    assert acc is not None
    card_cost = ratecards.platform_cost(session, partner_id, account_id, start, end, usage_until=until)
    if card_cost is not None:
        return UsageCost(card_cost.credits, card_cost.amount), card_cost.currency
    segs = segments_for(session, partner_id, account_id, start, end, usage_until=until)
    if not segs:
        return UsageCost(Decimal(0), Decimal(0)), acc.currency
    rating = rate(segs, start, end)
    usage_discounts = frozenset(d.id for seg in segs for d in seg.spec.discounts if d.applies_to == "usage")
    return usage_cost(rating, usage_discounts), rating.currency


def _settlement_row(session: Session, partner_id: int, account_id: int, period_start: date, mode: str,
                    mode_from: date) -> UsageSettlement:
    key = dict(partner_id=partner_id, account_id=account_id, period_start=period_start, mode_from=mode_from)
    row = session.scalar(select(UsageSettlement).filter_by(**key).with_for_update()
                         .execution_options(populate_existing=True))
    if row is not None:
        return row
    if mode_from > period_start:
        baseline, currency = month_to_date_cost(session, partner_id, account_id, period_start,
                                                until=mode_from - timedelta(days=1))
    else:
        baseline, currency = UsageCost(Decimal(0), Decimal(0)), month_to_date_cost(
            session, partner_id, account_id, period_start, until=period_start - timedelta(days=1))[1]
    row = UsageSettlement(**key, mode=mode, currency=currency, baseline_credits=baseline.credits,
                          baseline_amount=baseline.amount, credits_settled=baseline.credits,
                          amount_settled=baseline.amount, settlements=0)
    session.add(row)
    session.flush()
    # Concurrent first batches: the primary key makes the loser fail and retry its whole batch.
    return session.execute(select(UsageSettlement).filter_by(**key).with_for_update()
                           .execution_options(populate_existing=True)).scalar_one()


@dataclass
class _Pending:
    """One (customer, month) of a batch, rated, with what is left to settle."""

    row: UsageSettlement
    account_id: int
    day: date
    seq: int
    delta: UsageCost
    cost: UsageCost
    currency: str
    ref: dict
    key: str
    mode: str


def _pending(session: Session, partner_id: int, account_id: int, day: date,
             event_ref: dict | None) -> _Pending | None:
    """Rate the customer's month to date (containing `day`) and what it adds since the last settlement, by the
    mode in force on `day` (None: nothing to settle). Takes no wallet lock."""
    mode = mode_row(session, partner_id, account_id, day)
    if mode is None or mode.mode not in PARTNER_PAID:
        return None
    period_start, _ = month_of(day)
    mode_from = max(mode.effective_from, period_start)
    row = _settlement_row(session, partner_id, account_id, period_start, mode.mode, mode_from)
    cost, currency = month_to_date_cost(session, partner_id, account_id, day)
    delta = UsageCost(max(Decimal(0), cost.credits - row.credits_settled),
                      max(Decimal(0), cost.amount - row.amount_settled))
    if delta.credits == 0 and delta.amount == 0:
        return None
    seq = row.settlements + 1
    ref = {"period": period_start.isoformat(), "settlement": seq, **(event_ref or {})}
    return _Pending(row, account_id, day, seq, delta, cost, currency, ref,
                    f"settle:{partner_id}:{account_id}:{period_start}:{mode_from}:{seq}", mode.mode)


def _mark(session: Session, p: _Pending) -> None:
    p.row.settlements = p.seq
    p.row.credits_settled = max(p.row.credits_settled, p.cost.credits)
    p.row.amount_settled = max(p.row.amount_settled, p.cost.amount)
    session.flush()


def _settle(session: Session, partner_id: int, p: _Pending) -> SettlementResult:
    return settle_new_usage(session, partner_id, p.account_id, p.day, p.delta.credits, p.delta.amount, p.currency,
                            p.ref, idempotency_key=p.key)


def _settle_month(session: Session, partner_id: int, account_id: int, day: date,
                 event_ref: dict | None = None) -> SettlementResult | None:
    """Settle what the customer's month (containing `day`) added since the last settlement, by the mode
    in force on `day`. Internal (no actor): called from the ingestion path, which authorised the usage."""
    p = _pending(session, partner_id, account_id, day, event_ref)
    if p is None:
        return None
    _mark(session, p)
    return _settle(session, partner_id, p)


def on_events_recorded(session: Session, partner_id: int, groups: list) -> None:
    """Hook: settle every (customer, month) the batch touched, once, at its latest day in the batch.

    Every customer is rated first; the settlements come last (on-demand charges, then the prepaid draws, in
    customer order), so the partner's wallet row is locked only for the draws and the commit, never while
    the batch's other customers are rated (issue 18)."""
    latest: dict[tuple[int, date], date] = {}
    refs: dict[tuple[int, date], dict] = defaultdict(lambda: {"events": 0})
    for g in groups:
        key = (g.account_id, month_of(g.day)[0])
        latest[key] = max(latest.get(key, g.day), g.day)
        ref = refs[key]
        ref["events"] += g.events
        ref["first_event_id"] = min(ref.get("first_event_id", g.first_event_id), g.first_event_id)
        ref["last_event_id"] = max(ref.get("last_event_id", g.last_event_id), g.last_event_id)
    if not latest:
        return
    partner_paid = _partner_paid_accounts(session, partner_id, {a for a, _ in latest})
    todo = [p for (account_id, month), day in sorted(latest.items()) if account_id in partner_paid
            if (p := _pending(session, partner_id, account_id, day, refs[(account_id, month)])) is not None]
    for p in todo:
        _mark(session, p)
    for p in sorted(todo, key=lambda p: p.mode == "partner_prepaid"):  # stable: customer order within each
        _settle(session, partner_id, p)


def _partner_paid_accounts(session: Session, partner_id: int, account_ids: set[int]) -> set[int]:
    """Accounts that ever had a partner-paid mode (one query; most batches skip all the rest)."""
    from db.models.wallet import BillingMode

    return set(session.scalars(select(BillingMode.account_id).where(
        BillingMode.partner_id == partner_id, BillingMode.account_id.in_(account_ids),
        BillingMode.mode.in_(PARTNER_PAID)).distinct()))

