"""ORM models: rate cards — the platform's price list for its partners (issue 10, "two price layers").

A rate card prices what the platform charges a *partner* for its clients' usage (the partner's plans price
what the partner charges its *clients*). Like plans, a card's prices live in immutable versions that take
effect from a date. There are two kinds of card:

- ``standard``: the platform's list price in one currency, owned by the house partner (one per currency);
- ``partner``: a partner's negotiated card, owned by that partner's tenant row (one per partner and
  currency). Its versions either hold a whole card, or overrides applied to the standard card in force.

Only platform admins write these tables (core.billing.ratecards checks `ratecard.manage`); partner staff
read their own partner's card (`ratecard.view`).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base

CARD_KINDS = ("standard", "partner")


class RateCard(Base):
    """A named rate card in one currency: the platform's standard card, or one partner's negotiated card."""

    __tablename__ = "rate_cards"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        UniqueConstraint("partner_id", "kind", "currency", name="uq_rate_cards_one_per_currency"),
        CheckConstraint("kind in ('standard','partner')", name="kind"),
        CheckConstraint("length(btrim(name)) > 0", name="name_not_empty"),
    )


class RateCardVersion(Base):
    """One immutable version of a rate card and the day it takes effect.

    spec: a whole card (core.billing.ratecards.card_to_dict) under "card", and/or "overrides" (dotted
    paths) applied to the standard card in force; a standard card's versions always hold a whole card."""

    __tablename__ = "rate_card_versions"

    partner_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    card_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    effective_from: Mapped[date] = mapped_column(Date)
    spec: Mapped[dict] = mapped_column(JSONB)
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        ForeignKeyConstraint(["partner_id", "card_id"], ["rate_cards.partner_id", "rate_cards.id"],
                             name="fk_rate_card_versions_card"),
        CheckConstraint("version >= 1", name="version_positive"),
    )
