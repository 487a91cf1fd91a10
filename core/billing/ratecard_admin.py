"""Rate cards, the writes: the platform's standard card per currency, its new versions, and a partner's
negotiated prices (a whole card or overrides of the standard card). Platform admins only
(`ratecard.manage`); every input is validated before anything is written, and every change is audited.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts import audit
from core.accounts.accounts import get_partner
from core.accounts.actor import Actor
from core.accounts.permissions import authorize
from core.billing.ratecard_spec import apply_card_overrides, card_from_dict, card_to_dict
from core.billing.ratecards import _card, _house_id, _on, _versions
from core.errors import NotFound, ValidationError
from core.usage.metrics import metric_keys
from core.validation import Checker
from db.models.ratecards import RateCard, RateCardVersion


def _check_version_input(session: Session, c: Checker, *, currency: str, card: Mapping[str, Any] | None,
                         overrides: Mapping[str, Any] | None, kind: str) -> dict[str, Any]:
    known = metric_keys(session)
    spec: dict[str, Any] = {}
    if kind == "standard" and card is None:
        c.fail("card", "A standard card needs its prices.")
    if kind == "standard" and overrides:
        c.fail("overrides", "Overrides belong on a partner's card, not on the standard card.")
    if kind == "partner" and card is None and not overrides:
        c.fail("card", "Give the partner's card its own prices, or overrides of the standard card.")
    if overrides is not None and not isinstance(overrides, Mapping):
        c.fail("overrides", "Overrides must map a path to a value.")
        overrides = None
    if card is not None:
        try:
            parsed = card_from_dict(card, known_metrics=known, expected_currency=currency)
            spec["card"] = card_to_dict(parsed)
        except ValidationError as exc:
            c.errors.update(exc.errors)
    if overrides:
        clean = {str(k): (v if v is None or isinstance(v, str) else str(v)) for k, v in overrides.items()}
        if any(isinstance(v, float) for v in overrides.values()):
            c.fail("overrides", "Override values must be decimal strings such as \"0.09\", not floats.")
        spec["overrides"] = clean
    return spec


def _check_overrides_apply(session: Session, partner_id: int, currency: str, spec: dict[str, Any],
                           day: date) -> None:
    """A partner card of overrides must apply to the standard card in force from its date on."""
    if spec.get("card") is not None:
        base = card_from_dict(spec["card"], expected_currency=currency)
        apply_card_overrides(base, spec.get("overrides"), metric_keys(session))
        return
    std = _card(session, _house_id(session), "standard", currency)
    versions = _versions(session, std) if std else []
    relevant = [v for v in versions if v.effective_from > day]
    first = _on(versions, day)
    if first is None:
        raise ValidationError({"overrides": f"There is no standard {currency} card in force on {day.isoformat()} "
                                            "to apply overrides to: give the partner's card its own prices."})
    for v in [first, *relevant]:
        apply_card_overrides(card_from_dict(v.spec["card"]), spec.get("overrides"), metric_keys(session))


def create_standard_card(session: Session, actor: Actor, *, currency: str, name: str, card: Mapping[str, Any],
                         effective_from: date, note: str | None = None) -> RateCard:
    """The platform's standard card in a currency (one per currency) and its version 1."""
    house = _house_id(session)
    authorize(actor, "ratecard.manage", house)
    c = Checker()
    name_v = c.text("name", name, "Card name")
    cur = c.currency("currency", currency)
    eff = effective_from if isinstance(effective_from, date) else None
    if eff is None:
        c.fail("effective_from", "Effective date is required (a date).")
    if cur and _card(session, house, "standard", cur) is not None:
        c.fail("currency", f"The platform already has a standard {cur} card: save a new version of it.")
    spec = _check_version_input(session, c, currency=cur or "", card=card, overrides=None, kind="standard")
    c.done()
    assert cur is not None and eff is not None and name_v is not None
    row = RateCard(partner_id=house, kind="standard", name=name_v, currency=cur, created_by=actor.user_id or None)
    session.add(row)
    session.flush()
    session.add(RateCardVersion(partner_id=house, card_id=row.id, version=1, effective_from=eff, spec=spec,
                                note=note, created_by=actor.user_id or None))
    session.flush()
    audit.record(session, actor, partner_id=house, action="create", entity="rate_card", entity_id=row.id,
                 after={"kind": "standard", "name": name_v, "currency": cur, "effective_from": eff, "spec": spec})
    return row


def set_partner_card(session: Session, actor: Actor, partner_id: int, *, effective_from: date,
                     card: Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None,
                     name: str | None = None, note: str | None = None) -> RateCardVersion:
    """Negotiated prices for one partner from a date: a whole card, or overrides of the standard card.
    Creates the partner's card on first use, else saves a new version (never before the latest one)."""
    authorize(actor, "ratecard.manage", partner_id)
    partner = get_partner(session, partner_id)
    if partner.is_house:
        raise ValidationError({"partner": "The platform does not charge itself: pick a partner."})
    c = Checker()
    eff = effective_from if isinstance(effective_from, date) else None
    if eff is None:
        c.fail("effective_from", "Effective date is required (a date).")
    row = _card(session, partner_id, "partner", partner.currency)
    latest = _versions(session, row)[-1] if row is not None else None
    if latest is not None and eff is not None and eff < latest.effective_from:
        c.fail("effective_from", f"A new version cannot take effect before the latest one (version "
                                 f"{latest.version}, from {latest.effective_from.isoformat()}).")
    spec = _check_version_input(session, c, currency=partner.currency, card=card, overrides=overrides,
                                kind="partner")
    c.done()
    assert eff is not None
    _check_overrides_apply(session, partner_id, partner.currency, spec, eff)
    if row is None:
        label = (name or "").strip() or f"{partner.name} rate card"
        row = RateCard(partner_id=partner_id, kind="partner", name=label[:200], currency=partner.currency,
                       created_by=actor.user_id or None)
        session.add(row)
        session.flush()
    ver = RateCardVersion(partner_id=partner_id, card_id=row.id, version=(latest.version + 1) if latest else 1,
                          effective_from=eff, spec=spec, note=note, created_by=actor.user_id or None)
    session.add(ver)
    session.flush()
    audit.record(session, actor, partner_id=partner_id, action="new_version" if latest else "create",
                 entity="rate_card", entity_id=row.id,
                 before={"version": latest.version, "spec": latest.spec} if latest else None,
                 after={"version": ver.version, "effective_from": eff, "spec": spec})
    return ver


def new_standard_version(session: Session, actor: Actor, currency: str, *, card: Mapping[str, Any],
                         effective_from: date, note: str | None = None) -> RateCardVersion:
    """New list prices on the standard card of a currency from a date (not before the latest version)."""
    house = _house_id(session)
    authorize(actor, "ratecard.manage", house)
    row = _card(session, house, "standard", currency)
    if row is None:
        raise NotFound(f"The platform has no standard {currency} card yet.")
    latest = _versions(session, row)[-1]
    c = Checker()
    if not isinstance(effective_from, date):
        c.fail("effective_from", "Effective date is required (a date).")
    elif effective_from < latest.effective_from:
        c.fail("effective_from", f"A new version cannot take effect before the latest one (version "
                                 f"{latest.version}, from {latest.effective_from.isoformat()}).")
    spec = _check_version_input(session, c, currency=currency, card=card, overrides=None, kind="standard")
    c.done()
    ver = RateCardVersion(partner_id=house, card_id=row.id, version=latest.version + 1,
                          effective_from=effective_from, spec=spec, note=note, created_by=actor.user_id or None)
    session.add(ver)
    session.flush()
    # every partner card of overrides must still apply
    for other in session.scalars(select(RateCard).where(RateCard.kind == "partner", RateCard.currency == currency)):
        for v in _versions(session, other):
            if v.spec.get("card") is None and v.spec.get("overrides"):
                try:
                    apply_card_overrides(card_from_dict(spec["card"]), v.spec["overrides"], metric_keys(session))
                except ValidationError as exc:
                    raise ValidationError({"card": f"The overrides of {other.name} (version {v.version}) would no "
                                                   f"longer apply: {'; '.join(exc.errors.values())}"}) from None
    audit.record(session, actor, partner_id=house, action="new_version", entity="rate_card", entity_id=row.id,
                 before={"version": latest.version, "spec": latest.spec},
                 after={"version": ver.version, "effective_from": effective_from, "spec": spec})
    return ver
