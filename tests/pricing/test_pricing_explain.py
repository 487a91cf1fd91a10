"""Localised explanations: every template in every language, locale number formatting, English unchanged."""

import re
from datetime import date
from decimal import Decimal as D

import pytest

from core.pricing import (
    LOCALES,
    TEMPLATES,
    ChargeSpec,
    DiscountSpec,
    FeeSpec,
    PlanSpec,
    Segment,
    Tier,
    explain,
    explain_label,
    rate,
    rate_plan,
    rating_to_dict,
    validate_plan,
)
from core.pricing.explain import render_parts

APR1, APR30 = date(2024, 4, 1), date(2024, 4, 30)
SAMPLE = {"text": "x", "qty": D(1200), "price": D("0.1"), "fee": D(5), "first": 1, "last": 1000,
          "billable": D(950), "free": D(100), "blocks": D(10), "size": D(100), "used": D(800),
          "included": D(1000), "over": D(200), "threshold": D(500000), "unit": "pages", "credits": D(5250),
          "rate": D("1.05"), "minimum": D(25), "amount": D("1234.5"), "covered": 10, "total": 30,
          "start": "2024-05-01", "end": "2024-05-31", "percent": D("12.5"), "base": D(216), "charges": "pages",
          "label": "pages", "value": "Norway", "events": 3}


def test_every_language_has_every_template():
    for loc in LOCALES:
        assert set(TEMPLATES[loc]) == set(TEMPLATES["en"]), loc


@pytest.mark.parametrize("loc", LOCALES)
def test_every_template_renders(loc):
    for key, template in TEMPLATES[loc].items():
        names = {m.split(":")[0] for m in re.findall(r"\{([^}]+)\}", template)}
        params = {n: SAMPLE[n] for n in names if n != "range"}
        if "range" in names:
            params.update(first=1, last=1000)
        text = render_parts([(key, params)], loc)
        assert "{" not in text, (loc, key)


def test_locale_number_formatting():
    parts = [("times", {"qty": D(1234), "price": D("1234.5")})]
    assert render_parts(parts, "en") == "1,234 × 1,234.50"
    assert render_parts(parts, "de") == "1.234 × 1.234,50"
    assert render_parts(parts, "nb") == "1 234 × 1 234,50"
    assert render_parts([("in_advance", {"start": "2024-05-01", "end": "2024-05-31"})], "de") == \
        ", im Voraus berechnet für 01.05.2024 – 31.05.2024"
    with pytest.raises(ValueError):
        render_parts(parts, "fr")


PAGES = ChargeSpec("pages", "pages", "graduated", unit="pages",
                   tiers=(Tier(1, 1000, D("0.10")), Tier(1001, None, D("0.08"))))
ALL_MODELS = validate_plan(PlanSpec("EUR", charges=(
    PAGES,
    ChargeSpec("vol", "pages", "volume", unit="pages", tiers=(Tier(1, 1000, D("0.10"), D(5)),
                                                              Tier(1001, None, D("0.08")))),
    ChargeSpec("band", "clients", "volume", tiers=(Tier(0, 99, D(0), D(200)), Tier(100, None, D(0), D(500)))),
    ChargeSpec("pkg", "documents", "package", unit="documents", package_size=D(100), unit_price=D(5),
               free_units=D(100)),
    ChargeSpec("one", "documents", "package", package_size=D(10000), unit_price=D(5)),
    ChargeSpec("allow", "messages", "allowance", unit="messages", included_units=D(1000), overage_price=D("0.05"),
               included_fee=D(49)),
    ChargeSpec("allow2", "messages", "allowance", included_units=D(1000),
               overage_tiers=(Tier(1, 100, D("0.05"), D(1)), Tier(101, None, D("0.03")))),
    ChargeSpec("api", "requests", "threshold", unit="requests", threshold=D(500000), threshold_price=D("0.017")),
    ChargeSpec("api2", "requests2", "threshold", threshold=D(500000), threshold_price=D("0.017")),
    ChargeSpec("mail", "recipients", "graduated", unit="recipients", credit_rate=D("1.05"),
               tiers=(Tier(1, 5000, D("0.02")), Tier(5001, None, D("0.01")))),
    ChargeSpec("wallet", "recipients", "per_unit", unit="recipients", credit_rate=D("1.05"), settle="wallet"),
    ChargeSpec("minimum", "keywords", "per_unit", unit_price=D("0.10"), min_amount=D(25)),
    ChargeSpec("zero", "nothing", "graduated", tiers=(Tier(1, None, D(1)),)),
), fees=(
    FeeSpec("base", "base", D(99), start=date(2024, 4, 21)),
    FeeSpec("kw", "feature", D(2), metric="keywords", timing="in_advance"),
    FeeSpec("acc", "access", D(149)), FeeSpec("flat", "flat", D(10), label="Support"),
), discounts=(DiscountSpec("loyal", percent=D(10)), DiscountSpec("fix", amount=D(5), applies_to="fees")),
    minimum_spend=D(100000)))
USAGE = {"pages": D(1200), "clients": D(100), "documents": D(1050), "messages": D(1200), "requests": D(500001),
         "requests2": D(1), "recipients": D(5000), "keywords": D(5)}


def test_english_rendering_is_the_explanation_for_every_line():
    r = rate([Segment(ALL_MODELS, APR1, date(2024, 4, 10), USAGE), Segment(ALL_MODELS, date(2024, 4, 11), APR30,
                                                                          USAGE)], APR1, APR30)
    d = rating_to_dict(r)
    for ln, js in zip(r.lines, d["lines"], strict=True):
        assert explain(ln, "en") == ln.explanation == explain(js, "en")
        assert explain_label(ln, "en") == ln.label == explain_label(js, "en")
        for loc in ("de", "nb"):
            assert explain(ln, loc) == explain(js, loc)  # JSON round trip renders identically
            assert explain(ln, loc)


def test_german_and_norwegian_explanations():
    r = rate_plan(ALL_MODELS, USAGE, APR1, APR30)
    by = {ln.charge_id or ln.fee_id or ln.discount_id or ln.label: ln for ln in r.lines}
    assert by["pages"].explanation == "1,200 pages: 1,000 × 0.10 + 200 × 0.08"
    assert explain(by["pages"], "de") == "1.200 Seiten: 1.000 × 0,10 + 200 × 0,08"
    assert explain(by["pages"], "nb") == "1 200 sider: 1 000 × 0,10 + 200 × 0,08"
    assert explain(by["allow"], "de") == "1.200 Nachrichten: 1.000 von 1.000 inklusive (Inklusivgebühr 49,00) + " \
                                         "200 darüber × 0,05"
    assert explain(by["base"], "de") == "Grundgebühr 99,00, anteilig 10/30 Tage"
    assert explain(by["base"], "nb") == "Grunngebyr 99,00, forholdsmessig 10/30 dager"
    assert explain(by["mail"], "nb").startswith("5 000 mottakere → 5 250 kreditter à 1,05 per mottaker; ")
    assert explain(by["loyal"], "de").startswith("10 % von ")
    assert explain_label(by["loyal"], "de") == explain_label(by["loyal"], "nb") == "Rabatt"
    assert explain_label(by["loyal"], "en") == "Discount"


def test_older_snapshot_without_parts_falls_back_to_english():
    old = {"label": "pages", "explanation": "1,200 pages: 1,000 × 0.10 + 200 × 0.08"}
    assert explain(old, "de") == old["explanation"] and explain_label(old, "de") == "pages"
