"""Demo scenarios (issue 6): each world loads, and its last full month comes out exactly as computed by hand
from the scenario file; broken files are refused with the place of every problem and nothing written."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from core.rating import month_of
from db.models import CustomerAccount, Partner, User
from seeds.scenario import (
    SCENARIOS_DIR,
    RefusedNonEmpty,
    customer_events,
    generate,
    load_file,
    main,
    month_statements,
)
from seeds.scenario_format import ScenarioError, add_months, resolve_date

TODAY = datetime.now(UTC).date()
LAST_MONTH = month_of(add_months(TODAY.replace(day=1), -1))[0]


def _statements(db, partner: str | None = None) -> dict[tuple[str, str | None], dict]:
    with Session(db) as s:
        return {(st["partner"], st["customer"]): st for st in month_statements(s, LAST_MONTH, partner)}


def _lines(st: dict) -> dict[str, D]:
    return {ln["label"]: D(ln["amount"]) for ln in st["lines"]}


# ---------------------------------------------------------------- the four worlds


def test_world1_document_ai(db):
    load_file(db, SCENARIOS_DIR / "docai.toml")
    st = _statements(db, "Nordic Docs AS")
    # Oslo Revisjon, per document (volume): 2,400 documents reach the 1,001–5,000 band, so every document
    # costs 0.32: 2,400 × 0.32 = 768.00; platform fee 49.00 → 817.00
    oslo = st[("Nordic Docs AS", "Oslo Revisjon AS")]
    assert _lines(oslo) == {"Documents": D("768.00"), "Platform fee": D("49.00")}
    assert D(oslo["total"]) == D("817.00")
    # Bergen Bygg, per page (graduated): 10,000 × 0.05 = 500.00 + 2,000 × 0.035 = 70.00 → 570.00; fee 29 → 599.00
    assert D(st[("Nordic Docs AS", "Bergen Bygg")]["total"]) == D("599.00")
    # Tromsø Tech, credits (volume): 30,000 credits in the 20,001–100,000 band: 30,000 × 0.010 = 300.00
    assert D(st[("Nordic Docs AS", "Tromsø Tech")]["total"]) == D("300.00")
    # the foundation logins are there, in the first partner's customer Fjord Logistics
    with Session(db) as s:
        roles = dict(s.execute(select(User.email, User.role)).all())
        assert roles["partner@example.com"] == "partner_staff"
        assert roles["manager@example.com"] == "manager" and roles["annotator@example.com"] == "annotator"
        fjord = s.scalar(select(CustomerAccount).where(CustomerAccount.name == "Fjord Logistics"))
        assert s.scalar(select(User.account_id).where(User.email == "manager@example.com")) == fjord.id


def test_world2_accounting_api_programme(db):
    load_file(db, SCENARIOS_DIR / "accounting.toml")
    st = _statements(db)
    # Fjellheim: 620,000 requests − 500,000 free = 120,000 × 0.017 = 2,040.00; 12,000 MB is under 30,720 MB
    # → 0.00; access to external integrations 149.00 → 2,189.00 (billed to the customer)
    fj = st[("Regnskap Nord AS", "Fjellheim Regnskap")]
    assert _lines(fj) == {"Always-included integrations": D("0.00"), "API requests above 500,000": D("2040.00"),
                          "Data above 30 GB": D("0.00"), "Access to external integrations": D("149.00")}
    assert D(fj["total"]) == D("2189.00") and fj["bill_to"] == "customer"
    assert fj["alerts"] and "exceeds the threshold of 500,000" in fj["alerts"][0]
    # Byrå Agenda (agency): 31,720 − 30,720 = 1,000 MB × 0.017 = 17.00 + 149.00 = 166.00, on the partner's
    # collective invoice
    ag = st[("Regnskap Nord AS", "Byrå Agenda")]
    assert D(ag["total"]) == D("166.00") and ag["bill_to"] == "partner (collective invoice)"
    # a generated client: only the 149.00 access fee
    assert D(st[("Regnskap Nord AS", "Nord klient 001")]["total"]) == D("149.00")
    # client bands: 2 named + 97 generated = 99 active (the 3 year-end-only clients never count) → T1 200;
    # 2 + 248 = 250 → T2 500; 1 + 260 = 261 → T3 1,000
    assert D(st[("Regnskap Nord AS", None)]["total"]) == D("200.00")
    assert D(st[("Tall & Tid AS", None)]["total"]) == D("500.00")
    assert D(st[("Kontohuset AS", None)]["total"]) == D("1000.00")
    with Session(db) as s:
        alerts = s.execute(text("SELECT count(*) FROM billing_alerts WHERE charge_id = 'api'")).scalar()
        assert alerts >= 12  # Fjellheim crosses 500,000 requests every month


def test_world3_newsletter(db):
    load_file(db, SCENARIOS_DIR / "newsletter.toml")
    st = _statements(db)
    # prepaid: 2 mailings × 5,000 recipients × 1.05 = 10,500 credits drawn from Alpen's wallet, 0 on the bill
    mm = st[("Alpen Software GmbH", "Münchner Mandanten KG")]
    assert D(mm["total"]) == D("0.00") and D(mm["credits"]["recipients"]) == D("10500")
    assert mm["bill_to"] == "partner (prepaid credits)"
    # on demand: one mailing to 5,000 = 5,250 credits × 0.009 = 47.25, charged to Postkasten's card
    kb = st[("Postkasten Digital GmbH", "Kaffeerösterei Braun")]
    assert D(kb["total"]) == D("47.25") and kb["bill_to"] == "partner (charged on demand)"
    # customer pays: 10,500 credits reach the 10,001+ band: 10,500 × 0.010 = 105.00 + 19.00 → 124.00
    ab = st[("Letterbox Direct BV", "Amsterdam Bloemen")]
    assert D(ab["total"]) == D("124.00") and ab["bill_to"] == "customer"
    with Session(db) as s:
        w = s.execute(text("SELECT w.balance, w.low_balance_threshold, w.auto_buy_credits FROM wallets w "
                           "JOIN partners p ON p.id = w.partner_id WHERE p.name = 'Alpen Software GmbH'")).one()
        assert w.low_balance_threshold == D("10000") and w.auto_buy_credits == D("50000")
        bought = s.execute(text("SELECT credits FROM wallet_ledger WHERE kind = 'purchase'")).scalars().all()
        assert bought == [D("50000")]
        # the usage was settled as it was loaded: credits drawn, and automatic purchases when they ran low
        kinds = dict(s.execute(text("SELECT kind, count(*) FROM wallet_ledger GROUP BY kind")).all())
        assert kinds.get("usage_draw", 0) > 0 and kinds.get("auto_purchase", 0) > 0, kinds
        assert w.balance >= 0


def test_world4_sms(db):
    load_file(db, SCENARIOS_DIR / "sms.toml")
    st = _statements(db, "TextWave Resellers Inc.")
    p = "TextWave Resellers Inc."
    # in arrears: 3,000 messages, 1,000 included → 2,000 × 0.025 = 50.00; per-message fee 3,000 × 0.004 = 12.00;
    # monthly fee 25.00; 4 keywords × 3.00 = 12.00 → 99.00
    assert _lines(st[(p, "Prairie Dental")]) == {"Messages (1,000 included)": D("50.00"), "Per-message fee": D("12.00"),
                                                  "Monthly fee": D("25.00"), "Keyword fee": D("12.00")}
    assert D(st[(p, "Prairie Dental")]["total"]) == D("99.00")
    # prepaid block: next month's block 180.00 (billed in advance); 11,500 − 10,000 = 1,500 × 0.02 = 30.00;
    # 11,500 × 0.004 = 46.00; 2 keywords × 3.00 = 6.00 → 262.00
    assert D(st[(p, "Lakeside Realty")]["total"]) == D("262.00")
    # pre-purchased 3 months (the month before last, last month, this month): no monthly fee last month;
    # 800 messages are within the 1,000 included; 800 × 0.004 = 3.20; 1 keyword × 3.00 → 6.20
    assert D(st[(p, "Harbor Fitness")]["total"]) == D("6.20")
    with Session(db) as s:
        before = month_statements(s, add_months(LAST_MONTH, -1), p)
        hf = next(x for x in before if x["customer"] == "Harbor Fitness")
        assert _lines(hf)["Pre-purchase: 3 months of the monthly fee (25 each, 20% off)"] == D("60.00")
        # message history by date range: last month's events of Metro Pizza include the campaign
        start, end = month_of(LAST_MONTH)
        n = s.execute(text("SELECT count(*) FROM usage_events e JOIN customer_accounts a ON a.id = e.account_id "
                           "AND a.partner_id = e.partner_id WHERE a.name = 'Metro Pizza' AND e.metric = 'messages' "
                           "AND e.day BETWEEN :s AND :e AND e.properties ->> 'campaign' IS NOT NULL"),
                      {"s": start, "e": end}).scalar()
        assert n == 1


def test_default_demo_loads_all_worlds_with_logins(db, capsys):
    from seeds.loader import load_default_demo_if_empty

    assert load_default_demo_if_empty(db) is True
    out = capsys.readouterr().out
    for email in ("admin@example.com", "partner@example.com", "manager@example.com", "annotator@example.com"):
        assert email in out
    with Session(db) as s:
        first = s.scalar(select(Partner).where(~Partner.is_house).order_by(Partner.id).limit(1))
        assert first.name == "Nordic Docs AS"
        assert s.scalar(select(func.count()).select_from(Partner).where(~Partner.is_house)) == 8
        oldest = s.execute(text("SELECT min(day), max(day) FROM usage_events")).one()
        assert oldest[1] == TODAY and oldest[0] <= add_months(TODAY.replace(day=1), -12)
    assert load_default_demo_if_empty(db) is False  # not twice


# ---------------------------------------------------------------- refusals


BROKEN = """\
password = "demo-pass-2026"

[[partners]]
name = "Broken Partner"
currency = "EUR"
staff = [{ email = "dup@example.com", name = "Dup One" }]

  [[partners.plans]]
  code = "p1"
  name = "Plan one"
    [[partners.plans.charges]]
    id = "docs"
    metric = "documents"
    model = "graduated"
    tiers = [
      { first = 1, last = 1000, unit_price = "0.10" },
      { first = 900, unit_price = "0.08" },
    ]

  [[partners.plans]]
  code = "p2"
  name = "Plan two"
    [[partners.plans.charges]]
    id = "pages"
    metric = "pages"
    model = "per_unit"
    unit_price = "0.05"

  [[partners.customers]]
  name = "Good customer"
  country = "NO"
  plan = "p1"

  [[partners.customers]]
  name = "Bad customer"
  country = "NO"
  plan = "nope"
  mode = "sometimes"
  users = [
    { email = "dup@example.com", name = "Dup Two", role = "manager" },
    { email = "x@example.com", name = "X", role = "boss" },
  ]
  usage = [{ metric = "pagez", daily = "1,5" }]

  [[partners.customers]]
  name = "Norsk kunde"
  country = "NO"
  currency = "NOK"
  plan = "p2"
"""


def _ln(fragment: str) -> int:
    return next(n for n, line in enumerate(BROKEN.splitlines(), start=1) if fragment in line)


def test_broken_file_refused_with_every_place_and_nothing_written(db, tmp_path):
    f = tmp_path / "broken.toml"
    f.write_text(BROKEN, encoding="utf-8")
    with pytest.raises(ScenarioError) as exc:
        load_file(db, f)
    got = {(p.path, p.line) for p in exc.value.problems}
    msgs = exc.value.report()
    assert ("partners[0].plans[0].charges[0].tiers[1]", None) in got or any(
        p.path == "partners[0].plans[0].charges[0].tiers[1]" for p in exc.value.problems)
    assert "overlap" in msgs
    assert ("partners[0].customers[1].plan", _ln('plan = "nope"')) in got  # unknown plan, with its line
    assert ("partners[0].customers[1].mode", _ln('"sometimes"')) in got  # bad mode
    assert ("partners[0].customers[1].users[0].email", _ln('"Dup Two"')) in got  # duplicate e-mail (2nd use)
    assert ("partners[0].customers[1].users[1].role", _ln('"boss"')) in got  # bad role
    assert ("partners[0].customers[1].usage[0].metric", _ln('"pagez"')) in got  # unknown metric
    assert ("partners[0].customers[1].usage[0].daily", _ln('"pagez"')) in got  # bad decimal
    assert any(p.path == "partners[0].customers[2].plan" and "currency mismatch" in p.message
               for p in exc.value.problems)
    nope = _ln('plan = "nope"')
    assert f"broken.toml:{nope}: partners[0].customers[1].plan: unknown plan 'nope'" in msgs
    assert "duplicate e-mail 'dup@example.com' (also at broken.toml:6: partners[0].staff[0].email)" in msgs
    assert len(exc.value.problems) == 8, msgs  # each problem once
    with Session(db) as s:
        assert s.scalar(select(func.count()).select_from(Partner).where(~Partner.is_house)) == 0
        assert s.scalar(select(func.count()).select_from(User)) == 0


def test_bad_toml_reports_its_line(db, tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text('password = "demo-pass-2026"\n[[partners]]\nname = \n', encoding="utf-8")
    with pytest.raises(ScenarioError) as exc:
        load_file(db, f)
    assert exc.value.problems[0].line == 3 and "not valid TOML" in exc.value.problems[0].message


def test_non_empty_database_refused_without_add(db, tmp_path, capsys):
    load_file(db, SCENARIOS_DIR / "sms.toml")
    with pytest.raises(RefusedNonEmpty):
        load_file(db, SCENARIOS_DIR / "newsletter.toml")
    assert main(["load", str(SCENARIOS_DIR / "newsletter.toml")]) == 3
    assert "not empty" in capsys.readouterr().err
    assert main(["load", str(SCENARIOS_DIR / "newsletter.toml"), "--add"]) == 0
    assert "Created:" in capsys.readouterr().out
    # the same file again: its partners and e-mails now exist, refused with places, nothing written
    assert main(["load", str(SCENARIOS_DIR / "newsletter.toml"), "--add"]) == 2
    assert "already exists in the database" in capsys.readouterr().err


def test_export_statements_json(db, tmp_path, capsys):
    load_file(db, SCENARIOS_DIR / "sms.toml")
    out = tmp_path / "st.json"
    assert main(["export-statements", "--month", LAST_MONTH.strftime("%Y-%m"), "--partner",
                 "TextWave Resellers Inc.", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    prairie = next(s for s in data["statements"] if s["customer"] == "Prairie Dental")
    assert prairie["total"] == "99.00" and {"label", "amount", "quantity"} <= set(prairie["lines"][0])


# ---------------------------------------------------------------- the generator and dates


def test_generator_is_deterministic(db):
    from seeds.scenario_format import read_scenario

    with Session(db) as s:
        a = read_scenario(SCENARIOS_DIR / "docai.toml", s, today=date(2025, 6, 15))
        b = read_scenario(SCENARIOS_DIR / "docai.toml", s, today=date(2025, 6, 15))
    ca, cb = a.partners[0].customers[0], b.partners[0].customers[0]
    ea, eb = customer_events(ca, 1), customer_events(cb, 1)
    assert ea == eb and len(ea) > 400
    days = [e["occurred_at"].date() for e in ea]
    assert min(days) >= date(2024, 6, 1) and max(days) <= date(2025, 6, 15)
    assert all(d.weekday() < 5 for d in days)  # weekdays_only
    # noise-free generators give exactly the volume written in the file
    oslo = a.partners[0].customers[1]
    assert {q for _, q in generate(oslo.usage[0])} == {D(2400)}


def test_relative_dates():
    today = date(2025, 3, 31)
    assert resolve_date("today", today) == today
    assert resolve_date("month", today) == date(2025, 3, 1)
    assert resolve_date("month-1m+4d", today) == date(2025, 2, 5)
    assert resolve_date("today-13m", today) == date(2024, 2, 29)
    assert resolve_date("month-2m-1d", today) == date(2024, 12, 31)
    assert resolve_date(date(2024, 1, 2), today) == date(2024, 1, 2)
    with pytest.raises(ValueError):
        resolve_date("yesterday", today)
