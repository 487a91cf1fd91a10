"""The scenario checker (issue 16): the line of the offending value itself, no follow-on errors, card
problems caught by --check, load-time failures as clear messages with file, line and path (nothing
written), and a missing include named with the including file and line."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from db.models import Partner, User
from seeds.scenario import load_file, main
from seeds.scenario_format import ScenarioError

TODAY = date(2026, 11, 20)

HEAD = """\
password = "demo-pass-2026"

[[partners]]
name = "Checker Partner"
currency = "EUR"
"""


def _write(tmp_path, body: str, name: str = "s.toml"):
    f = tmp_path / name
    f.write_text(body, encoding="utf-8")
    return f


def _problems(db, f, **kw) -> ScenarioError:
    with pytest.raises(ScenarioError) as exc:
        load_file(db, f, today=TODAY, **kw)
    return exc.value


def _line(body: str, fragment: str) -> int:
    return next(n for n, ln in enumerate(body.splitlines(), start=1) if fragment in ln)


def _nothing_written(db) -> None:
    with Session(db) as s:
        assert s.scalar(select(func.count()).select_from(Partner).where(~Partner.is_house)) == 0
        assert s.scalar(select(func.count()).select_from(User)) == 0
        assert s.scalar(text("SELECT count(*) FROM payment_charges")) == 0


PLAN_BODY = HEAD + """
  [[partners.plans]]
  code = "tiered"
  name = "Tiered"
    [[partners.plans.charges]]
    id = "docs"
    metric = "documents"
    model = "graduated"
    tiers = [
      { first = 1, last = 1000, unit_price = "0.10" },
      { first = 1001, unit_price = "-0.08" },
    ]
    [[partners.plans.fees]]
    id = "base"
    kind = "base"
    amount = "12x"

  [[partners.plans]]
  code = "good"
  name = "Good"
    [[partners.plans.charges]]
    id = "pages"
    metric = "pages"
    model = "per_unit"
    unit_price = "0.05"

  [[partners.customers]]
  name = "Kunde"
  country = "NO"
  plan = "good"
  overrides = { "charges.pages.unit_price" = "0.04", "charges.pages.unit_price_typo" = "0.03" }

  [[partners.generate_customers]]
  count = 3
  name = "Gen {n}"
  country = "NO"
  plan = "tiered"
"""


def test_line_of_the_value_inside_a_tier_a_fee_and_an_override(db, tmp_path):
    err = _problems(db, _write(tmp_path, PLAN_BODY))
    by_path = {p.path: p for p in err.problems}
    tier = next(p for p in err.problems if ".tiers[1]" in p.path)
    assert tier.line == _line(PLAN_BODY, '"-0.08"'), err.report()
    fee = next(p for p in err.problems if ".fees[0]" in p.path)
    assert fee.line == _line(PLAN_BODY, '"12x"'), err.report()
    ov = next(p for p in err.problems if ".overrides" in p.path)
    assert ov.line == _line(PLAN_BODY, "unit_price_typo"), err.report()
    # the broken plan is reported once; its generated customers get no false "unknown plan"
    assert not any("unknown plan" in p.message for p in err.problems), err.report()
    assert "partners[0].generate_customers[0].plan" not in by_path
    _nothing_written(db)


CARD_BODY = HEAD + """card = { number = "4242424242424241", exp_month = "november", exp_year = 2030 }
"""


def test_card_month_and_checksum_caught_by_check(db, tmp_path, capsys):
    f = _write(tmp_path, CARD_BODY)
    err = _problems(db, f, check_only=True)
    paths = {p.path: p.line for p in err.problems}
    assert paths.get("partners[0].card.number") == _line(CARD_BODY, "card ="), err.report()
    assert paths.get("partners[0].card.exp_month") == _line(CARD_BODY, "card ="), err.report()
    assert main(["load", str(f), "--check", "--today", TODAY.isoformat()]) == 2
    out = capsys.readouterr()
    assert "File is valid" not in out.out and "exp_month" in out.err and "checksum" in out.err


def test_missing_include_names_the_including_file_and_line(db, tmp_path):
    body = 'password = "demo-pass-2026"\n\ninclude = ["there.toml", "missing.toml"]\n'
    _write(tmp_path, 'password = "demo-pass-2026"\n', "there.toml")
    err = _problems(db, _write(tmp_path, body, "main.toml"))
    (p,) = err.problems
    assert (p.file, p.line, p.path) == ("main.toml", 3, "include[1]"), err.report()
    assert "missing.toml" in p.message


WALLET_BODY = HEAD + """wallet = { buy = 100 }

  [[partners.plans]]
  code = "prepaid"
  name = "Prepaid"
    [[partners.plans.charges]]
    id = "mail"
    metric = "recipients"
    model = "per_unit"
    credit_rate = "1"
    settle = "wallet"

  [[partners.customers]]
  name = "Kunde"
  country = "DE"
  plan = "prepaid"
  mode = "partner_prepaid"
  usage = [{ metric = "recipients", monthly = 400, day = 3, start = "2026-10-01" }]
"""


def test_wallet_too_small_is_a_clear_message_and_nothing_is_written(db, tmp_path):
    err = _problems(db, _write(tmp_path, WALLET_BODY))
    (p,) = err.problems
    assert p.file == "s.toml" and p.path == "partners[0].customers[0].usage", err.report()
    assert p.line == _line(WALLET_BODY, "usage = ["), err.report()
    assert "the wallet lacks 300 credits (balance 100, 400 needed)" in p.message, p.message
    assert "auto_buy_credits" in p.message and "2026-10" in p.message
    _nothing_written(db)


def test_purchase_above_the_demo_gateway_limit_is_a_clear_message(db, tmp_path, capsys):
    body = HEAD + "wallet = { buy = 5000000 }\n"
    f = _write(tmp_path, body)
    err = _problems(db, f)
    (p,) = err.problems
    assert (p.path, p.line) == ("partners[0].wallet.buy", _line(body, "wallet =")), err.report()
    assert "limit" in p.message
    _nothing_written(db)
    assert main(["load", str(f), "--today", TODAY.isoformat()]) == 2
    assert "Traceback" not in capsys.readouterr().err


HISTORY_BODY = HEAD + """wallet = { buy = 1000 }
wallet_history = [
  { on = "2026-02-10", top_up = 5000 },
  { on = "2026-02-20", refund = 6000, of = 0, reason = "Too much" },
]
statement_history = [{ month = "2026-01", credit = "Kunde", reason = "Goodwill", on = "2026-02-05" }]

  [[partners.customers]]
  name = "Kunde"
  country = "DE"
"""


def test_a_failing_dated_step_is_reported_at_its_line_and_nothing_is_written(db, tmp_path):
    err = _problems(db, _write(tmp_path, HISTORY_BODY))
    (p,) = err.problems  # the first failing step in date order: the credit note on 5 Feb
    assert (p.path, p.line) == ("partners[0].statement_history[0].credit", _line(HISTORY_BODY, "Goodwill"))
    assert "no final statement for 2026-01" in p.message
    body = HISTORY_BODY.replace('statement_history = [{ month = "2026-01", credit = "Kunde", reason = "Goodwill", '
                                'on = "2026-02-05" }]\n', "")
    err = _problems(db, _write(tmp_path, body))
    (p,) = err.problems
    assert (p.path, p.line) == ("partners[0].wallet_history[1]", _line(body, "refund = 6000"))
    assert "refund on 2026-02-20 failed" in p.message and "5,000" in p.message
    _nothing_written(db)


@pytest.fixture
def engine(owner_engine):
    """Scenario files are loaded by a set-up tool that runs as the database owner (seeds.setup, the scenario
    command): it stamps history at the dates it happened, re-dating audit and ledger rows of its own load
    transaction, which the app's role may never change."""
    return owner_engine
