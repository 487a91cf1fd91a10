"""The plan builder speaks the user's language (issue 13), in AppTest: only the chosen model's fields with human
labels, only the partner's metrics, a percentage plan and a per-country SMS plan made without a dotted path, the
price calculator beside the form, and a customer's own prices typed into the same fields."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.billing import plans
from db.models.billing import Plan, PlanAssignment
from tests.apptest import app, texts
from tests.billing_factories import make_plan
from tests.test_pricing_page import PAGE, add_charge, button, form_gen


def labels(at) -> list[str]:
    return [w.label for w in at.text_input]


def test_only_the_chosen_models_fields_with_human_labels(world):
    at = app(world.a.staff, PAGE)
    at.selectbox(key="pr_c_model").select("per_unit").run()
    shown = labels(at)
    assert "Price per unit" in shown
    assert not {"Units per block", "Free up to", "Percentage rate", "Included units"} & set(shown)
    at.selectbox(key="pr_c_model").select("percentage").run()
    shown = labels(at)
    assert {"Percentage rate", "Fixed fee per transaction (optional)", "Free transactions (optional)",
            "Free amount (optional)", "Minimum per transaction (optional)",
            "Maximum per transaction (optional)"} <= set(shown)
    assert "Price per unit" not in shown
    assert "Percentage of an amount" in at.selectbox(key="pr_c_model").options
    assert "per_unit" not in at.selectbox(key="pr_c_model").options  # titles, not raw names
    at.selectbox(key="pr_c_model").select("graduated").run()
    assert "Tiers: From, to (empty = and above), price per unit (or per block)" in texts(at)  # above the editor
    assert "Price per unit" not in labels(at)


def test_only_the_partners_metrics_unless_asked(world, db):
    a = world.a
    make_plan(db, a.staff, code="std")  # prices pages
    at = app(a.staff, PAGE)
    assert at.selectbox(key="pr_c_metric").options == ["Pages (pages)"]
    at.toggle(key="pr_all_metrics").set_value(True).run()
    assert len(at.selectbox(key="pr_c_metric").options) > 3


def test_percentage_plan_from_the_form_with_the_calculator(world, db):
    at = app(world.a.staff, PAGE)
    at.text_input(key="pr_name").input("Payments")
    at.text_input(key="pr_code").input("pay")
    add_charge(at, "pay", "documents", "percentage", rate="1.2", fixed_fee="0.10", free_events="3",
               free_amount="500")
    assert not at.error, [e.value for e in at.error]
    assert form_gen(at) == 1  # the form starts empty again
    at.text_input(key="pr_calc_t_documents").input("200, 100, 100, 50").run()
    assert "Total per month: EUR 0.70" in texts(at)
    calc = next(df.value for df in at.dataframe if "How" in df.value.columns)
    assert calc["How"].tolist() == ["450 documents: 1.2% of 50.00 (400.00 free) + 1 × 0.10 per transaction (3 free)"]
    so_far = next(df.value for df in at.dataframe if "Item" in df.value.columns)
    assert so_far["Price"].tolist() == ["1.2% of the amount + 0.10 per transaction; first 3 transactions free; "
                                        "first 500.00 free"]
    button(at, "Create plan").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    with Session(db) as s:
        plan = s.scalar(select(Plan))
        spec = plans.get_plan(s, world.a.staff, plan.partner_id, plan.id).spec()
    c = spec.charge("pay")
    assert (c.model, c.param("rate"), c.param("fixed_fee"), c.param("free_events")) == (
        "percentage", D("1.2"), D("0.10"), D(3))


def test_sms_plan_priced_per_country_without_a_dotted_path(world, db):
    at = app(world.a.staff, PAGE)
    at.text_input(key="pr_name").input("SMS")
    at.text_input(key="pr_code").input("sms")
    at.selectbox(key="pr_c_model").select("per_unit").run()
    at.toggle(key="pr_all_metrics").set_value(True).run()
    at.selectbox(key="pr_c_metric").select("messages").run()  # the metric's declared dimensions are offered
    at.text_input(key="pr_c_id_0").input("sms")
    at.text_input(key="pr_c_unit_price_0").input("0.08")
    at.text_input(key="pr_c_label_0").input("SMS")
    at.selectbox(key="pr_c_dim_pick_0").select("country").run()
    for n, (value, label, price) in enumerate((("NO", "Norway", "0.05"), ("SE", "Sweden", "0.06"))):
        at.text_input(key=f"pr_c_dv_value_0_{n}").input(value)
        at.text_input(key=f"pr_c_dv_label_0_{n}").input(label)
        at.text_input(key=f"pr_c_dv_unit_price_0_{n}").input(price)
        button(at, "Add value").click().run()
        assert at.text_input(key=f"pr_c_dv_value_0_{n + 1}").value == ""  # ready for the next value
    assert not at.exception
    # the calculator already prices the charge being added, per country
    at.text_input(key="pr_calc_q_messages").input("2000")
    at.text_input(key="pr_calc_v_messages_NO").input("1200").run()
    calc = next(df.value for df in at.dataframe if "How" in df.value.columns)
    assert calc[["Line", "How"]].values.tolist() == [["SMS – Norway", "1,200 messages: 1,200 × 0.05"],
                                                     ["SMS – other values", "800 messages: 800 × 0.08"]]
    button(at, "Add charge").click().run()
    button(at, "Create plan").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    with Session(db) as s:
        plan = s.scalar(select(Plan))
        spec = plans.get_plan(s, world.a.staff, plan.partner_id, plan.id).spec()
    c = spec.charge("sms")
    assert c.dimension == "country"
    assert [(d.value, d.label, dict(d.prices)) for d in c.dimension_prices] == [
        ("NO", "Norway", {"unit_price": D("0.05")}), ("SE", "Sweden", {"unit_price": D("0.06")})]


def test_the_dimension_is_picked_from_the_metrics_declared_properties_or_typed(world, db):
    """The builder offers the metric's declared dimensions (kept per value at ingestion) by name; another event
    property can still be typed (priced from the raw events)."""
    at = app(world.a.staff, PAGE)
    at.toggle(key="pr_all_metrics").set_value(True).run()
    at.selectbox(key="pr_c_metric").select("messages").run()
    assert at.selectbox(key="pr_c_dim_pick_0").options == [
        "nothing: one price for every event", "Destination country (country)", "another event property…"]
    at.selectbox(key="pr_c_metric").select("pages").run()
    assert at.selectbox(key="pr_c_dim_pick_0").options == ["nothing: one price for every event",
                                                           "another event property…"]
    at.text_input(key="pr_c_id_0").input("pg")
    at.text_input(key="pr_c_unit_price_0").input("0.10")
    at.selectbox(key="pr_c_dim_pick_0").select("\x00other").run()
    at.text_input(key="pr_c_dimension_0").input("campaign").run()
    at.text_input(key="pr_c_dv_value_0_0").input("spring")
    at.text_input(key="pr_c_dv_unit_price_0_0").input("0.02")
    button(at, "Add value").click().run()
    button(at, "Add charge").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    so_far = next(df.value for df in at.dataframe if "Item" in df.value.columns)
    assert "campaign" in so_far["Price"].tolist()[0]


def test_a_customers_own_price_typed_in_the_same_fields(world, db):
    a = world.a
    pid, plan_id = make_plan(db, a.staff, code="std")
    at = app(a.staff, PAGE)
    at.tabs[1].selectbox(key="pr_customer").select(a.account_id).run()
    key = f"pr_ov_{pid}_{plan_id}"
    at.selectbox(key="pr_assign_plan").select((pid, plan_id)).run()
    fee = next(w for w in at.text_input if w.key == f"{key}_fee_base")
    assert fee.value == "90"
    fee.input("79").run()
    assert "Own prices: base amount: 79" in [t.value for t in at.text]
    at.date_input(key=f"pr_assign_eff_{(pid, plan_id)}").set_value(date(2024, 1, 1))
    button(at, "Assign plan").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    with Session(db) as s:
        row = s.scalar(select(PlanAssignment))
    assert row.overrides == {"fees.base.amount": "79"}
