"""The Pricing page's Discounts section (AppTest): a plan with a discount is saved; a bad discount is refused
with its path and nothing is written."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.billing import plans
from core.billing.describe import describe_spec
from db.models.billing import Plan
from tests.apptest import app
from tests.test_pricing_page import PAGE, add_charge, button, n_plans


def add_discount(at, did, **fields):
    at.text_input(key="pr_d_id").input(did)
    for f, v in fields.items():
        if f == "applies":
            at.selectbox(key="pr_d_applies").select(v)
        else:
            at.text_input(key=f"pr_d_{f}").input(v)
    button(at, "Add discount").click().run()
    assert not at.exception


def test_staff_adds_a_discount_to_a_plan(world, db):
    at = app(world.a.staff, PAGE)
    at.text_input(key="pr_name").input("Discounted")
    at.text_input(key="pr_code").input("disc")
    add_charge(at, "pages", "pages", "per_unit", unit_price="0.10", unit="pages")
    add_discount(at, "loyal", label="Loyalty", percent="10", applies="usage")
    # the draft's items show their prices in words as soon as they are added
    so_far = next(df.value for df in at.dataframe if "Item" in df.value.columns)
    assert so_far[["Item", "Price"]].values.tolist() == [["pages", "0.10 each"], ["Loyalty", "−10% on usage"]]
    button(at, "Create plan").click().run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    with Session(db) as s:
        plan = s.scalar(select(Plan))
        spec = plans.get_plan(s, world.a.staff, plan.partner_id, plan.id).spec()
        rows = describe_spec(spec)
    d = spec.discount("loyal")
    assert (d.label, d.percent, d.amount, d.applies_to) == ("Loyalty", Decimal("10"), None, "usage")
    assert {"item": "Loyalty", "metric": "", "model": "discount", "price": "−10% on usage"} in rows


def test_bad_discount_refused_with_path(world, db):
    at = app(world.a.staff, PAGE)
    at.text_input(key="pr_name").input("Broken")
    at.text_input(key="pr_code").input("broken")
    add_charge(at, "pages", "pages", "per_unit", unit_price="0.10")
    add_discount(at, "loyal", percent="150", amount="5")
    button(at, "Create plan").click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert ("discounts[0].percent: a discount needs exactly one of percent or amount; "
            "discount percent must be at most 100, got 150") in errors
    assert n_plans(db) == 0
