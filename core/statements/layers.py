"""Statements of the two price layers (issue 10, docs/statements.md "Two price layers").

When a rate card prices the partner (core.billing.ratecards):
- the platform's collective statement to the partner prices each agency client's usage at the **rate card**
  (one section per client) and adds the card's partner-level fees (client bands, per-client fees);
- the partner issues its own statement to each agency client too, at the partner's plan, under its brand;
- a partner-billed client (prepaid, on demand, agency) without a plan gets a statement from the partner with
  its quantities and no amounts;
- the platform issues a monthly **commission statement** to the partner: its revenue share (the card's
  percentage) of what the platform billed the partner's customer-pays clients.

A partner that no card prices keeps the statements of before (collective at the clients' plans and the
partner-level plan). Lines are returned as plain dicts of core.statements.content.LineData fields.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from core.billing import ratecards
from core.billing.rating import RatingSource, segments_for
from core.pricing import format_quantity, rate, round_money
from core.usage.aggregates import period_usage

ZERO = Decimal(0)
PARTNER_BILLS = ("partner_prepaid", "partner_on_demand", "agency")


def card_source(session: Session, partner_id: int) -> ratecards.CardSource | None:
    """The partner's cards when any card version prices it (two-layer statements), else None (legacy)."""
    src = ratecards.CardSource(session, partner_id)
    return src if src.boundaries() else None


def issuers(mode: str, partner_id: int, house_id: int, two_layer: bool) -> list[tuple[str, int]]:
    """(kind, issuer) of the statements a day in `mode` goes onto."""
    if mode == "agency":
        return [("collective", house_id)] + ([("statement", partner_id)] if two_layer else [])
    if mode in ("partner_prepaid", "partner_on_demand"):
        return [("statement", partner_id)]
    return [("statement", house_id)]


def _explain(mc: ratecards.MetricCost, price: Decimal | None, currency: str) -> str:
    if mc.credits and price is not None and mc.amount == round_money(mc.credits * price, currency):
        return (f"{format_quantity(mc.quantity)} {mc.metric} → {format_quantity(mc.credits)} credits × "
                f"{format_quantity(price)}")
    return f"{format_quantity(mc.quantity)} {mc.metric} at the rate card"


def card_section(session: Session, partner_id: int, account_id: int, name: str, pieces: list, src: Any
                 ) -> list[dict[str, Any]]:
    """An agency client's section of the collective statement, priced at the rate card."""
    out = []
    for p in pieces:
        cost = ratecards.platform_cost(session, partner_id, account_id, p.start, p.end, source=src)
        if cost is None:
            continue
        for mc in cost.metrics:
            out.append({"kind": "usage", "label": mc.metric, "amount": mc.amount,
                        "explanation": _explain(mc, cost.credit_price, cost.currency), "metric": mc.metric,
                        "quantity": mc.quantity, "credits": mc.credits or None, "mode": "agency",
                        "section": name, "section_account_id": account_id})
    return out


def card_fee_lines(session: Session, partner_id: int, start: date, end: date, src: Any) -> list:
    """The card's partner-level fees for the month as engine lines (None-safe: [] without fees)."""
    r = ratecards.partner_fees(session, partner_id, start, end, source=src)
    return list(r.lines) if r is not None else []


def unpriced_lines(session: Session, partner_id: int, account_id: int, pieces: list) -> list[dict[str, Any]]:
    """A client without a plan: its quantities, no amounts."""
    totals: dict[str, Decimal] = {}
    for p in pieces:
        for metric, q in period_usage(session, partner_id, account_id, p.start, p.end).items():
            if q:
                totals[metric] = totals.get(metric, ZERO) + Decimal(q)
    return [{"kind": "usage", "label": metric, "amount": ZERO, "metric": metric, "quantity": q,
             "explanation": f"{format_quantity(q)} {metric}: no price agreed"} for metric, q in sorted(totals.items())]


def commission_lines(session: Session, partner_id: int, accounts: list[tuple[int, str, list]], start: date,
                     end: date, src: Any, source: RatingSource | None = None) -> list[dict[str, Any]]:
    """The partner's revenue share of what the platform billed each customer-pays client in the month."""
    out = []
    currency = src.partner.currency
    for account_id, name, pieces in accounts:
        segs = []
        for p in pieces:
            segs += segments_for(session, partner_id, account_id, p.start, p.end, source=source)
        if not segs:
            continue
        billed = rate(segs, start, end).total
        rc = src.on(pieces[-1].end)
        pct = rc.card.revenue_share_percent if rc is not None else None
        if not pct or not billed:
            continue
        share = round_money(billed * pct / 100, currency)
        out.append({"kind": "commission", "label": f"Revenue share {format_quantity(pct)} %", "amount": share,
                    "explanation": f"{format_quantity(pct)} % of {format_quantity(billed)} {currency} billed to "
                                   f"{name}", "section": name, "section_account_id": account_id,
                    "mode": "customer_pays"})
    return out
