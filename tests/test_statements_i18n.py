"""Statements in German / Norwegian: rating explanations and engine-made labels rendered in the statement's
language (PDF, CSV, page data), discount lines end to end, structured parts kept in the snapshot."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from core.accounts.accounts import house_partner
from core.billing import plans
from core.statements import lifecycle, reading, settings
from db.engine import unit_of_work
from tests.billing_factories import PAGES_SPEC, make_plan
from tests.statements_helpers import MONTH, D, doc, generate, listed, pdf_text, record

DISCOUNT_SPEC = {**PAGES_SPEC, "discounts": [{"id": "loyal", "percent": "10", "applies_to": "all"}]}


def _house(db) -> int:
    with Session(db) as s:
        return house_partner(s).id


def _setup(world, db, language: str):
    a = world.a
    with unit_of_work(db) as s:
        settings.save_settings(s, world.admin, _house(db), language=language)
    _, plan_id = make_plan(db, a.staff, code="disc", spec_=DISCOUNT_SPEC)
    with unit_of_work(db) as s:  # the customer-specific discount: 15 % instead of the plan's 10 %
        plans.assign_plan(s, a.staff, a.partner_id, a.account_id, plan_id=plan_id, effective_from=date(2024, 1, 1),
                          overrides={"discounts.loyal.percent": "15"})
    record(db, a.staff, a.partner_id, a.account_id, "pages", 1200, "e1")
    generate(db, a.staff, a.partner_id)
    [st] = listed(db, a.staff, a.partner_id, month=MONTH)
    return a, st


def _exports(db, actor, pid, sid) -> tuple[str, str]:
    with Session(db) as s:
        return pdf_text(reading.export_pdf(s, actor, pid, sid)), reading.export_csv(s, actor, pid, sid)


def test_german_statement_with_discount_draft_and_final(world, db):
    a, st = _setup(world, db, "de")
    assert st.total == D("175.10")  # 116.00 + 90.00 − 15 % of 206.00 (30.90)
    d = doc(db, a.staff, a.partner_id, st.id)
    assert [(ln.kind, ln.label, ln.amount) for ln in d.lines] == [
        ("usage", "pages", D("116.0000")), ("fee", "base", D("90.0000")), ("discount", "Rabatt", D("-30.9000"))]
    assert d.lines[0].explanation == "1.200 Seiten: 1.000 × 0,10 + 200 × 0,08"
    assert d.lines[1].explanation == "Grundgebühr 90,00"
    assert d.lines[2].explanation == "15 % von 206,00 auf Nutzung und Gebühren"
    text, csv = _exports(db, a.staff, a.partner_id, st.id)
    for want in ("1.200 Seiten: 1.000 × 0,10 + 200 × 0,08", "Rabatt", "15 % von 206,00", "-30,90 €", "175,10 €"):
        assert want in text, want
    assert "1.200 Seiten: 1.000 × 0,10 + 200 × 0,08" in csv and "Rabatt" in csv and "-30.90" in csv
    # final: the snapshot keeps the structured parts and renders the same German text
    with unit_of_work(db) as s:
        lifecycle.finalise(s, world.admin, a.partner_id, st.id)
    d = doc(db, a.staff, a.partner_id, st.id)
    assert d.status == "final"
    key, params = d.lines[0].explanation_parts[0]
    assert key == "usage_head" and D(params["qty"]) == 1200 and params["unit"] == "pages"
    assert d.lines[2].label_parts == [["label_discount", {}]]
    text, csv = _exports(db, a.staff, a.partner_id, st.id)
    assert "1.200 Seiten: 1.000 × 0,10 + 200 × 0,08" in text and "Rabatt" in text
    assert "15 % von 206,00 auf Nutzung und Gebühren" in csv
    # a credit note copies the parts of the lines it credits
    with unit_of_work(db) as s:
        cn = lifecycle.create_credit_note(s, world.admin, a.partner_id, st.id, "Goodwill", line_nos=[3])
        cn_id = cn.id
    c = doc(db, a.staff, a.partner_id, cn_id)
    assert c.lines[0].amount == D("30.9000") and c.lines[0].label_parts == [["label_discount", {}]]
    assert "Rabatt" in _exports(db, a.staff, a.partner_id, cn_id)[0]


def test_norwegian_statement_explanations(world, db):
    a, st = _setup(world, db, "nb")
    d = doc(db, a.staff, a.partner_id, st.id)
    assert d.lines[0].explanation == "1 200 sider: 1 000 × 0,10 + 200 × 0,08"
    assert d.lines[2].label == "Rabatt"
    text, _ = _exports(db, a.staff, a.partner_id, st.id)
    assert "1 200 sider" in text and "15 % av 206,00 på forbruk og gebyrer" in text


def test_older_snapshot_without_parts_renders_its_stored_text():
    from core.statements.i18n import line_explanation, line_label
    old = {"label": "pages", "explanation": "1,200 pages: 1,000 × 0.10 + 200 × 0.08"}
    assert line_explanation(old, "de") == old["explanation"] and line_label(old, "de") == "pages"
    broken = {**old, "explanation_parts": [["no_such_template", {}]]}
    assert line_explanation(broken, "de") == old["explanation"]


def test_one_list_of_languages():
    """The statement languages are the pricing engine's locales: labels, names and number formats exist for
    exactly those (one list, core.pricing.explain.LOCALES)."""
    from core.pricing.explain import LOCALES, TEMPLATES
    from core.pricing.money import SEPARATORS
    from core.statements.i18n import LABELS, LANGUAGES

    assert tuple(LANGUAGES) == LOCALES
    assert set(LABELS) == set(TEMPLATES) == set(SEPARATORS) == set(LOCALES)
