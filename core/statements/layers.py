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
from core.pricing import rate, round_money
from core.statements.i18n import format_qty, money
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


# The texts these lines carry, in the statement languages (core.statements.i18n.LANGUAGES): the document's
# language is its issuer's (the platform's for collective and commission statements, the partner's for its
# statements to clients).
TEXTS: dict[str, dict[str, str]] = {
    "en": {"card": "{q} {metric} at the rate card", "card_share": "{q} of the partner's {total} {metric} at the "
           "rate card", "credits": "{q} {metric} → {credits} credits × {price}", "unpriced": "{q} {metric}: no "
           "price agreed", "share": "Revenue share {pct} %", "share_of": "{pct} % of {billed} billed to {name}"},
    "de": {"card": "{q} {metric} zum Preis der Preisliste", "card_share": "{q} von {total} {metric} des Partners "
           "zum Preis der Preisliste", "credits": "{q} {metric} → {credits} Credits × {price}",
           "unpriced": "{q} {metric}: kein Preis vereinbart", "share": "Umsatzbeteiligung {pct} %",
           "share_of": "{pct} % von {billed}, abgerechnet an {name}"},
    "nb": {"card": "{q} {metric} etter prislisten", "card_share": "{q} av partnerens {total} {metric} etter "
           "prislisten", "credits": "{q} {metric} → {credits} kreditter × {price}",
           "unpriced": "{q} {metric}: ingen avtalt pris", "share": "Inntektsdeling {pct} %",
           "share_of": "{pct} % av {billed} fakturert til {name}"},
}


def _t(language: str, key: str, **kw: Any) -> str:
    return TEXTS.get(language, TEXTS["en"])[key].format(**kw)


def _explain(mc: ratecards.MetricCost, card: Any, price: Decimal | None, partner_total: Decimal | None,
             language: str) -> str:
    money_priced = card.usage is not None and any(c.metric == mc.metric for c in card.usage.charges)
    q = format_qty(mc.quantity, language)
    if not money_priced and mc.credits and price is not None:
        return _t(language, "credits", q=q, metric=mc.metric, credits=format_qty(mc.credits, language),
                  price=format_qty(price, language))
    if partner_total is not None and partner_total != mc.quantity:
        return _t(language, "card_share", q=q, total=format_qty(partner_total, language), metric=mc.metric)
    return _t(language, "card", q=q, metric=mc.metric)


def _card_label(card: Any, metric: str) -> str:
    """The card's own label of a metric's charge (e.g. "Pages"), else the metric."""
    for c in (card.usage.charges if card.usage is not None else ()):
        if c.metric == metric and c.label:
            return str(c.label)
    return metric


def card_section(session: Session, partner_id: int, account_id: int, name: str, pieces: list, src: Any,
                 language: str = "en") -> list[dict[str, Any]]:
    """An agency client's section of the collective statement, priced at the rate card, in `language`."""
    out = []
    for p in pieces:
        cost = ratecards.platform_cost(session, partner_id, account_id, p.start, p.end, source=src)
        rc = src.on(p.end)
        if cost is None or rc is None:
            continue
        totals = src.partner_usage(p.start, p.end) if rc.card.tier_basis == "partner" else {}
        for mc in cost.metrics:
            total = Decimal(totals[mc.metric]) if mc.metric in totals else None
            out.append({"kind": "usage", "label": _card_label(rc.card, mc.metric), "amount": mc.amount,
                        "explanation": _explain(mc, rc.card, cost.credit_price, total, language),
                        "metric": mc.metric, "quantity": mc.quantity, "credits": mc.credits or None,
                        "mode": "agency", "section": name, "section_account_id": account_id})
    return out


def card_fee_lines(session: Session, partner_id: int, start: date, end: date, src: Any) -> list:
    """The card's partner-level fees for the month as engine lines (None-safe: [] without fees)."""
    r = ratecards.partner_fees(session, partner_id, start, end, source=src)
    return list(r.lines) if r is not None else []


def unpriced_lines(session: Session, partner_id: int, account_id: int, pieces: list, language: str = "en"
                   ) -> list[dict[str, Any]]:
    """A client without a plan: its quantities, no amounts (the text in the partner's statement language)."""
    totals: dict[str, Decimal] = {}
    for p in pieces:
        for metric, q in period_usage(session, partner_id, account_id, p.start, p.end).items():
            if q:
                totals[metric] = totals.get(metric, ZERO) + Decimal(q)
    return [{"kind": "usage", "label": metric, "amount": ZERO, "metric": metric, "quantity": q,
             "explanation": _t(language, "unpriced", q=format_qty(q, language), metric=metric)}
            for metric, q in sorted(totals.items())]


def commission_lines(session: Session, partner_id: int, accounts: list[tuple[int, str, list]], start: date,
                     end: date, src: Any, source: RatingSource | None = None, language: str = "en"
                     ) -> list[dict[str, Any]]:
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
        pct_text = format_qty(pct, language)
        out.append({"kind": "commission", "label": _t(language, "share", pct=pct_text), "amount": share,
                    "explanation": _t(language, "share_of", pct=pct_text, billed=money(billed, currency, language),
                                      name=name),
                    "section": name, "section_account_id": account_id, "mode": "customer_pays"})
    return out
