"""What a statement contains now: its lines rated by the billing engine, totals and settlement figures.

The days of each issuer are rated with `core.pricing.rate` over the whole month (so fees are prorated by the days
the issuer covers), from `core.billing.rating.segments_for`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from core.accounts.accounts import house_partner
from core.billing.rating import RatingSource, segments_for
from core.errors import Conflict, NotFound
from core.pricing import Line, explain, explain_label, rate
from core.pricing.explain import parts_to_json
from core.pricing.money import round_money
from core.statements import layers
from core.statements.planning import (
    Key,
    MonthData,
    Piece,
    accounts_with_modes,
    billable_accounts,
    issuer_kind,
    pieces_of,
)
from core.statements.settings import branding
from db.models import CustomerAccount, Partner

ZERO = Decimal(0)


@dataclass
class LineData:
    kind: str
    label: str
    amount: Decimal
    explanation: str = ""
    metric: str | None = None
    quantity: Decimal | None = None
    credits: Decimal | None = None
    mode: str | None = None
    section: str | None = None
    section_account_id: int | None = None
    # the engine's structured label / explanation (JSON form, see core.pricing.explain); kept in the snapshot so
    # a final statement can be rendered in any language. label / explanation hold the text in the statement's
    # language (what drafts show).
    label_parts: list | None = None
    explanation_parts: list | None = None

    def as_tuple(self) -> tuple:
        return (self.kind, self.label, str(self.amount), self.explanation, self.metric,
                None if self.quantity is None else str(self.quantity),
                None if self.credits is None else str(self.credits), self.mode, self.section,
                self.section_account_id)


@dataclass
class Content:
    currency: str
    language: str
    lines: list[LineData]
    modes: list[list[str]]
    tax_rate: Decimal | None
    credits_drawn: Decimal | None = None
    charged_on_demand: Decimal | None = None
    accounts: list[int] = field(default_factory=list)  # accounts whose usage is on it (period locks)

    @property
    def subtotal(self) -> Decimal:
        return sum((ln.amount for ln in self.lines), ZERO)

    @property
    def tax_amount(self) -> Decimal:
        if not self.tax_rate:
            return round_money(ZERO, self.currency)
        return round_money(self.subtotal * self.tax_rate / 100, self.currency)

    @property
    def total(self) -> Decimal:
        return self.subtotal + self.tax_amount

    def fingerprint(self) -> str:
        payload = [self.currency, self.language, [ln.as_tuple() for ln in self.lines], self.modes,
                   str(self.tax_rate), str(self.credits_drawn), str(self.charged_on_demand)]
        return hashlib.sha256(json.dumps(payload, default=str).encode()).hexdigest()


def _line(ln: Line, pieces: list[Piece], language: str, **kw: Any) -> LineData:
    """A statement line from an engine line, its label and explanation in the statement's language."""
    mode = next((p.mode for p in pieces if ln.segment_start is not None and p.start <= ln.segment_start <= p.end),
                None)
    return LineData(kind=ln.kind, label=explain_label(ln, language), amount=ln.amount,
                    explanation=explain(ln, language), metric=ln.metric,
                    quantity=ln.quantity if (ln.metric or ln.kind == "usage") else None, credits=ln.credits,
                    mode=mode, label_parts=parts_to_json(ln.label_parts) or None,
                    explanation_parts=parts_to_json(ln.explanation_parts) or None, **kw)


def _rate_pieces(session: Session, partner_id: int, account_id: int | None, pieces: list[Piece], start: date,
                 end: date, source: RatingSource | None = None) -> tuple[str | None, list[Line]]:
    """Rate the days of `pieces` within the month [start, end]: fees are prorated by the days covered."""
    segs = []
    for p in pieces:
        segs += segments_for(session, partner_id, account_id, p.start, p.end, source=source)
    if not segs:
        return None, []
    r = rate(segs, start, end)
    return r.currency, list(r.lines)


def _period_ref_sum(session: Session, table: str, value: str, partner_id: int, account_id: int, start: date,
                    end: date, extra: str) -> Decimal:
    """Sum of a settlement column for the account's month: rows whose event_ref names the period, or (rows
    without a period reference) rows created within it."""
    t0 = datetime.combine(start, time.min, tzinfo=UTC)
    t1 = datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC)
    got = session.execute(text(f"""
        SELECT coalesce(sum({value}), 0) FROM {table}
        WHERE partner_id = :p AND account_id = :a AND {extra}
          AND CASE WHEN event_ref ? 'period' THEN event_ref ->> 'period' = :ps
                   ELSE created_at >= :t0 AND created_at < :t1 END"""),
        {"p": partner_id, "a": account_id, "ps": start.isoformat(), "t0": t0, "t1": t1}).scalar_one()
    return Decimal(got)


def credits_drawn(session: Session, partner_id: int, account_id: int, start: date, end: date) -> Decimal:
    """Credits drawn from the partner's wallet for the account's usage of the month."""
    return _period_ref_sum(session, "wallet_ledger", "-credits", partner_id, account_id, start, end,
                           "kind = 'usage_draw'")


def charged_on_demand(session: Session, partner_id: int, account_id: int, start: date, end: date) -> Decimal:
    """Money charged to the partner's payment method for the account's usage of the month (approved)."""
    return _period_ref_sum(session, "payment_charges", "amount", partner_id, account_id, start, end,
                           "reason = 'usage_on_demand' AND status = 'approved'")


def _account_currency(session: Session, partner_id: int, account_id: int) -> str:
    acc = session.get(CustomerAccount, (partner_id, account_id))
    if acc is None:
        raise NotFound(f"Customer account {account_id} does not exist.")
    return acc.currency


def _agency_accounts(session: Session, key: Key, data: MonthData | None = None) -> list[tuple[int, str, list[Piece]]]:
    if data is not None:
        moded, billable = set(data.mode_rows), data.accounts
    else:
        moded = accounts_with_modes(session, key.partner_id, key.period_end)
        billable = billable_accounts(session, key.partner_id, key.period_start, key.period_end)
    out = []
    for account_id, name in billable:
        if account_id not in moded:
            continue
        all_pieces = (data.pieces(account_id) if data is not None else
                      pieces_of(session, key.partner_id, account_id, key.period_start, key.period_end))
        pieces = [p for p in all_pieces if p.mode == "agency"]
        if pieces:
            out.append((account_id, name, pieces))
    return out


def involved_accounts(session: Session, key: Key) -> list[int]:
    """The accounts whose usage a statement prices (their periods are locked at finalisation)."""
    if key.kind == "statement":
        return [key.account_id] if key.account_id is not None else []
    return [a for a, _, _ in _agency_accounts(session, key)]


def compute(session: Session, key: Key, data: MonthData | None = None) -> Content | None:
    """What the statement for `key` contains now (None: nothing to bill under this key any more). `data`: the
    month prefetched (drafts of the monthly run); without it everything is read from the database."""
    start, end = key.period_start, key.period_end
    if data is not None and (data.partner_id, data.start) != (key.partner_id, start):
        data = None
    if data is not None:
        data.session = session  # anything not prefetched is read in the caller's transaction
    house_id = data.house_id if data else house_partner(session).id
    issuer = data.branding(key.issuer_partner_id) if data else branding(session, key.issuer_partner_id)
    if key.kind == "statement":
        return _statement(session, key, issuer, house_id, data)
    if key.kind == "commission":
        return _commission(session, key, issuer, data)
    # collective invoice: one section per agency customer, then the partner-level fees
    partner = session.get(Partner, key.partner_id)
    assert partner is not None
    cards = data.cards if data else layers.card_source(session, key.partner_id)
    if cards is not None:
        return _collective_at_card(session, key, issuer, cards, data)
    lines: list[LineData] = []
    modes: list[list[str]] = []
    accounts: list[int] = []
    for account_id, name, pieces in _agency_accounts(session, key, data):
        currency, rated = _rate_pieces(session, key.partner_id, account_id, pieces, start, end, data)
        if currency is not None and currency != partner.currency:
            raise Conflict(f"{name} is priced in {currency}, but {partner.name}'s collective invoice is in "
                           f"{partner.currency}: assign {name} a plan in {partner.currency}.")
        lines += [_line(ln, pieces, issuer.language, section=name, section_account_id=account_id) for ln in rated]
        modes += [[p.start.isoformat(), p.end.isoformat(), "agency", str(account_id)] for p in pieces]
        accounts.append(account_id)
    segs = segments_for(session, key.partner_id, None, start, end, source=data)
    if segs:
        r = rate(segs, start, end)
        if r.currency != partner.currency:
            raise Conflict(f"The partner plan is priced in {r.currency}, but the collective invoice is in "
                           f"{partner.currency}.")
        for ln in r.lines:
            d = _line(ln, [Piece(start, end, "partner")], issuer.language)
            d.kind = ln.kind if ln.kind in ("minimum", "discount") else "partner_fee"
            lines.append(d)
    if not accounts and not segs:
        return None
    return Content(currency=partner.currency, language=issuer.language, lines=lines, modes=modes,
                   tax_rate=issuer.tax_rate, accounts=accounts)


def _collective_at_card(session: Session, key: Key, issuer: Any, cards: Any, data: MonthData | None) -> Content | None:
    """Two layers: the platform's collective statement prices each agency client at the rate card, then the
    card's partner-level fees."""
    start, end = key.period_start, key.period_end
    lines: list[LineData] = []
    modes: list[list[str]] = []
    accounts: list[int] = []
    for account_id, name, pieces in _agency_accounts(session, key, data):
        lines += [LineData(**d) for d in layers.card_section(session, key.partner_id, account_id, name, pieces,
                                                              cards, issuer.language)]
        modes += [[p.start.isoformat(), p.end.isoformat(), "agency", str(account_id)] for p in pieces]
        accounts.append(account_id)
    for ln in layers.card_fee_lines(session, key.partner_id, start, end, cards):
        d = _line(ln, [Piece(start, end, "partner")], issuer.language)
        d.kind = ln.kind if ln.kind in ("minimum", "discount") else "partner_fee"
        lines.append(d)
    if not accounts and not lines:
        return None
    return Content(currency=cards.partner.currency, language=issuer.language, lines=lines, modes=modes,
                   tax_rate=issuer.tax_rate, accounts=accounts)


def _commission(session: Session, key: Key, issuer: Any, data: MonthData | None) -> Content | None:
    """The platform's monthly commission statement to the partner: its revenue share of what the platform
    billed each of the partner's customer-pays clients."""
    cards = data.cards if data else layers.card_source(session, key.partner_id)
    if cards is None:
        return None
    start, end = key.period_start, key.period_end
    house_id = data.house_id if data else house_partner(session).id
    billable = data.accounts if data else billable_accounts(session, key.partner_id, start, end)
    moded = set(data.mode_rows) if data else accounts_with_modes(session, key.partner_id, end)
    direct = []
    for account_id, name in billable:
        all_pieces = (data.pieces(account_id) if data else
                      pieces_of(session, key.partner_id, account_id, start, end, account_id in moded))
        pieces = [p for p in all_pieces if issuer_kind(p.mode, key.partner_id, house_id) == ("statement", house_id)]
        if pieces:
            direct.append((account_id, name, pieces))
    rows = layers.commission_lines(session, key.partner_id, direct, start, end, cards, data, issuer.language)
    if not rows:
        return None
    return Content(currency=cards.partner.currency, language=issuer.language, lines=[LineData(**d) for d in rows],
                   modes=[], tax_rate=issuer.tax_rate, accounts=[])


def _statement(session: Session, key: Key, issuer: Any, house_id: int, data: MonthData | None) -> Content | None:
    """A statement to one customer: the days its issuer covers, rated at the customer's plan."""
    start, end = key.period_start, key.period_end
    assert key.account_id is not None
    all_pieces = data.pieces(key.account_id) if data else pieces_of(session, key.partner_id, key.account_id,
                                                                   start, end)
    cards = data.cards if data else layers.card_source(session, key.partner_id)
    pieces = [p for p in all_pieces
              if (key.kind, key.issuer_partner_id) in layers.issuers(p.mode, key.partner_id, house_id,
                                                                      cards is not None)]
    if not pieces:
        return None
    currency, rated = _rate_pieces(session, key.partner_id, key.account_id, pieces, start, end, data)
    rows = [_line(ln, pieces, issuer.language) for ln in rated]
    if not rated and cards is not None and key.issuer_partner_id == key.partner_id:
        rows = [LineData(**d) for d in layers.unpriced_lines(session, key.partner_id, key.account_id, pieces,
                                                             issuer.language)]
    content = Content(currency=currency or _account_currency(session, key.partner_id, key.account_id),
                      language=issuer.language, lines=rows,
                      modes=[[p.start.isoformat(), p.end.isoformat(), p.mode] for p in pieces],
                      tax_rate=issuer.tax_rate, accounts=[key.account_id])
    if any(p.mode == "partner_prepaid" for p in pieces):
        content.credits_drawn = (data.credits.get(key.account_id, ZERO) if data else
                                 credits_drawn(session, key.partner_id, key.account_id, start, end))
    if any(p.mode == "partner_on_demand" for p in pieces):
        content.charged_on_demand = (data.charges.get(key.account_id, ZERO) if data else
                                     charged_on_demand(session, key.partner_id, key.account_id, start, end))
    return content
