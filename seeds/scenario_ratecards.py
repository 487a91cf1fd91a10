"""Rate cards in scenario files (issue 10): the platform's standard cards and each partner's negotiated prices.

```toml
[[rate_cards]]                      # the platform's standard card of a currency
currency = "EUR"
name = "Standard EUR"               # optional
from = "month-12m"                  # optional: the scenario start
tier_basis = "client"               # or "partner"
credit_rates = { recipients = "1.05" }
credit_price_steps = [{ min_credits = 0, price_per_credit = "0.010" }]
revenue_share_percent = "10"
usage = { charges = [ ... ] }       # core.pricing charges, priced in money
partner_fees = { charges = [ ... ], fees = [ ... ] }

[[partners]]
  [partners.rate_card]              # negotiated: overrides of the standard card ...
  from = "month-6m"
  overrides = { "credit_rates.recipients" = "0.95" }
  # ... or a whole card of its own: the same fields as [[rate_cards]] (without name)
```

Everything is checked with core.billing.ratecard_spec before anything is written (problems are reported with
their path, like the rest of the scenario); the loader writes through core.billing.ratecard_admin.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts.actor import SYSTEM, Actor
from core.billing import ratecard_admin
from core.billing.ratecard_spec import RateCardSpec, apply_card_overrides, card_from_dict, card_to_dict
from core.errors import ValidationError

CARD_FIELDS = ("currency", "tier_basis", "credit_rates", "credit_price_steps", "usage", "partner_fees",
               "revenue_share_percent")
STANDARD_KEYS = (*CARD_FIELDS, "name", "from")
PARTNER_KEYS = (*CARD_FIELDS, "from", "overrides")


def _plain(v: Any) -> Any:
    """TOML values → what the card parser expects: floats as the digits typed (ints stay ints: tier bounds)."""
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def _card(ck: Any, path: str, raw: dict[str, Any], currency: str | None, metrics: set[str]) -> RateCardSpec | None:
    fields = {k: _plain(raw[k]) for k in CARD_FIELDS if k in raw}
    try:
        return card_from_dict(fields, known_metrics=metrics, expected_currency=currency)
    except ValidationError as exc:
        for key, msg in exc.errors.items():
            ck.fail(f"{path}.{key.removeprefix('card.')}", msg)
        return None


def read_standard_cards(ck: Any, raw: Any, sc: Any, metrics: set[str], table, lst, unknown, read_date) -> None:
    """[[rate_cards]] → sc.rate_cards: [(name, from, card)]."""
    seen = {c.currency for _, _, c in sc.rate_cards}
    for i, r in enumerate(lst(ck, "rate_cards", raw)):
        path = f"rate_cards[{i}]"
        r = table(ck, path, r)
        unknown(ck, path, r, STANDARD_KEYS)
        card = _card(ck, path, r, r.get("currency"), metrics)
        if card is None:
            continue
        if card.currency in seen:
            ck.fail(f"{path}.currency", f"a second standard {card.currency} card", card.currency)
            continue
        seen.add(card.currency)
        sc.rate_cards.append((str(r.get("name") or f"Standard {card.currency}"),
                              read_date(ck, f"{path}.from", r.get("from"), sc.today, sc.start), card))


def read_partner_card(ck: Any, path: str, raw: Any, sc: Any, currency: str | None, metrics: set[str], table,
                      unknown, read_date) -> dict[str, Any] | None:
    """[partners.rate_card] → {"from", "card" | "overrides"} (checked against the standard card)."""
    if raw is None:
        return None
    r = table(ck, path, raw)
    unknown(ck, path, r, PARTNER_KEYS)
    start = read_date(ck, f"{path}.from", r.get("from"), sc.today, sc.start)
    overrides = {str(k): (None if v is None else str(_plain(v))) for k, v in (r.get("overrides") or {}).items()}
    if any(k in r for k in CARD_FIELDS):
        card = _card(ck, path, r, currency, metrics)
        if card is None:
            return None
        base: RateCardSpec | None = card
        out: dict[str, Any] = {"from": start, "card": card_to_dict(card)}
    else:
        base = next((c for _, _, c in sc.rate_cards if c.currency == currency), None)
        if base is None:
            ck.fail(f"{path}.overrides", f"overrides need a standard {currency} card ([[rate_cards]])")
            return None
        out = {"from": start}
    if overrides:
        try:
            apply_card_overrides(base, overrides, metrics)
        except ValidationError as exc:
            for key, msg in exc.errors.items():
                ck.fail(f"{path}.{key}", msg)
            return None
        out["overrides"] = overrides
    return out


def load_standard_cards(session: Session, sc: Any, actor: Actor = SYSTEM) -> int:
    for name, start, card in sc.rate_cards:
        ratecard_admin.create_standard_card(session, actor, currency=card.currency, name=name,
                                            card=card_to_dict(card), effective_from=start)
    return len(sc.rate_cards)


def load_partner_card(session: Session, partner_id: int, rc: dict[str, Any] | None, actor: Actor = SYSTEM) -> int:
    if rc is None:
        return 0
    start: date = rc["from"]
    ratecard_admin.set_partner_card(session, actor, partner_id, effective_from=start, card=rc.get("card"),
                                    overrides=rc.get("overrides"))
    return 1


# ---------------------------------------------------------------- export (seeds.scenario_export)


def _clean(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items() if x is not None and x != [] and x != {}}
    if isinstance(v, list):
        return [_clean(x) for x in v]
    return v


def _one_version(session: Session, card: Any, what: str) -> Any:
    from db.models.ratecards import RateCardVersion

    versions = list(session.scalars(select(RateCardVersion).where(
        RateCardVersion.partner_id == card.partner_id, RateCardVersion.card_id == card.id)
        .order_by(RateCardVersion.version)))
    if len(versions) != 1:
        raise ValueError(f"{what}: {len(versions)} versions over time (the format has one per card)")
    return versions[0]


def export_standard_cards(session: Session, house_id: int) -> list[dict[str, Any]]:
    """[[rate_cards]] tables of the platform's standard cards (one version each, else ValueError)."""
    from db.models.ratecards import RateCard

    out = []
    for card in session.scalars(select(RateCard).where(RateCard.partner_id == house_id, RateCard.kind == "standard")
                                .order_by(RateCard.currency)):
        v = _one_version(session, card, f"standard card {card.name}")
        out.append(_clean({"name": card.name, "from": v.effective_from, **v.spec["card"]}))
    return out


def export_partner_card(session: Session, partner_id: int) -> dict[str, Any] | None:
    """The partner's [partners.rate_card]: a whole card or overrides, from its date (one version, else
    ValueError)."""
    from db.models.ratecards import RateCard

    card = session.scalar(select(RateCard).where(RateCard.partner_id == partner_id, RateCard.kind == "partner"))
    if card is None:
        return None
    v = _one_version(session, card, f"partner card {card.name}")
    out: dict[str, Any] = {"from": v.effective_from, **(v.spec.get("card") or {})}
    overrides = v.spec.get("overrides") or {}
    if any(x is None for x in overrides.values()):
        raise ValueError(f"partner card {card.name}: an override that removes a value (not expressible in TOML)")
    if overrides:
        out["overrides"] = {k: str(x) for k, x in overrides.items()}
    return _clean(out)
