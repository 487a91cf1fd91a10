"""Credit rates are the platform's prices to a partner (issue 10): once a rate card prices the partner, its
staff may no longer put them in a plan. Used by core.billing.plans when a plan is created or versioned."""

from __future__ import annotations

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from core.accounts.actor import Actor
from core.pricing import PlanSpec
from core.validation import Checker
from db.models import Partner
from db.models.ratecards import RateCard


def check_platform_prices(session: Session, actor: Actor, partner_id: int, spec: PlanSpec, c: Checker) -> None:
    """Credit rates are the platform's price to the partner: once a rate card prices the partner (its own
    card, or the platform's standard card in its currency), partner staff may not set them in a plan."""
    partner = session.get(Partner, partner_id)
    if actor.is_admin or partner is None or partner.is_house:
        return
    currency = partner.currency
    carded = session.scalar(select(func.count()).select_from(RateCard).where(
        or_((RateCard.partner_id == partner_id) & (RateCard.kind == "partner"),
            (RateCard.kind == "standard") & (RateCard.currency == currency))))
    if not carded:
        return
    for i, ch in enumerate(spec.charges):
        if ch.credit_rate is not None or ch.settle == "wallet":
            c.fail(f"spec.charges[{i}].credit_rate", "Credit rates are the platform's prices to you and live on "
                   "your rate card; price your client in money here.")
