"""Partners in a scenario file: staff, payment card, wallet and its dated history, statement settings and
statement history, partner-level plan, plans and customers.

    statements = { tax_rate = "25", language = "nb", payment_terms_days = 30, number_prefix = "ND",
                   display_name = "Nordic Docs", address = "…", logo_text = "ND", footer = "…" }
    wallet_history = [
      { on = "month-6m+2d", top_up = 20000 },                      # a purchase on that day
      { on = "month-5m", adjust = -500, reason = "Duplicate import" },
      { on = "month-4m", refund = 5000, of = 0, reason = "Goodwill" },   # of: the top-up's index here, -1 = `buy`
      { on = "month-1m", expire = 1000 },
    ]
    statement_history = [
      { month = "month-3m", finalise = true, on = "month-2m+2d" },
      { month = "month-3m", void = "Bergen Bygg", reason = "Wrong address", on = "month-2m+5d" },
      { month = "month-3m", regenerate = "Bergen Bygg", on = "month-2m+6d" },
      { month = "month-3m", credit = "Oslo Revisjon AS", reason = "Goodwill", on = "month-2m+9d" },
    ]
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from core.statements.i18n import LANGUAGES
from core.validation import countries, currencies
from db.models import Partner
from db.models.wallet import OVERDRAFT_POLICIES
from seeds.scenario_checks import Check, a_date, as_list, card, dec, table, text, unknown
from seeds.scenario_customers import CUSTOMER_KEYS, Ctx, customer, generated
from seeds.scenario_model import PartnerDef, PlanDef, Scenario, StatementAction, WalletAction, add_months
from seeds.scenario_people import Seen, person
from seeds.scenario_plans import plan
from seeds.scenario_ratecards import read_partner_card

PARTNER_KEYS = ("name", "currency", "country", "contact_email", "staff", "card", "wallet", "partner_plan",
                "partner_plan_from", "plans", "customers", "generate_customers", "statements", "wallet_history",
                "statement_history", "created", "rate_card")
WALLET_KEYS = ("buy", "low_balance_threshold", "auto_buy_credits", "overdraft_policy", "overdraft_limit",
               "reminder", "auto_buy")
CARD_KEYS = ("number", "exp_month", "exp_year", "label")
SETTINGS_KEYS = ("tax_rate", "language", "payment_terms_days", "number_prefix", "display_name", "address",
                 "logo_text", "footer", "labels")
WALLET_ACTIONS = ("top_up", "adjust", "refund", "expire")
STATEMENT_ACTIONS = ("finalise", "void", "regenerate", "credit")
DEMO_CARD = "4242424242424242"


def _identity(ck: Check, path: str, p: dict[str, Any], seen: Seen) -> tuple[str | None, str | None]:
    name = text(ck, f"{path}.name", p.get("name"))
    currency = text(ck, f"{path}.currency", p.get("currency"))
    if currency and currency not in currencies():
        ck.fail(f"{path}.currency", f"unknown currency {currency!r}")
        currency = None
    country = p.get("country")
    if country is not None and country not in countries():
        ck.fail(f"{path}.country", f"unknown country {country!r}")
    if name:
        low = name.lower()
        if low in seen.partners:
            ck.fail(f"{path}.name", f"duplicate partner name {name!r} (also at {seen.partners[low]})")
        elif seen.session.scalar(select(Partner.id).where(func.lower(Partner.name) == low)):
            ck.fail(f"{path}.name", f"a partner named {name!r} already exists in the database")
        seen.partners.setdefault(low, f"{ck.file}: {path}")
    return name, currency


def _payment(ck: Check, path: str, p: dict[str, Any], today: date) -> tuple[dict | None, dict | None]:
    c, w = p.get("card"), p.get("wallet")
    if c is not None:
        c = table(ck, f"{path}.card", c)
        unknown(ck, f"{path}.card", c, CARD_KEYS)
    if w is not None:
        w = table(ck, f"{path}.wallet", w)
        unknown(ck, f"{path}.wallet", w, WALLET_KEYS)
        for k in ("buy", "low_balance_threshold", "auto_buy_credits", "overdraft_limit"):
            if k in w:
                w[k] = dec(ck, f"{path}.wallet.{k}", w[k])
        if w.get("overdraft_policy", "refuse") not in OVERDRAFT_POLICIES:
            ck.fail(f"{path}.wallet.overdraft_policy", f"use one of {', '.join(OVERDRAFT_POLICIES)}")
        for k in ("reminder", "auto_buy"):
            if k in w and not isinstance(w[k], bool):
                ck.fail(f"{path}.wallet.{k}", "must be true or false")
        c = c if c is not None else {}
    if c is not None:
        c = {"number": str(c.get("number", DEMO_CARD)), "exp_month": c.get("exp_month", 12),
             "exp_year": c.get("exp_year", today.year + 3), "label": c.get("label")}
        card(ck, f"{path}.card", c, today)
    return c, w


def settings(ck: Check, path: str, raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    s = table(ck, path, raw)
    unknown(ck, path, s, SETTINGS_KEYS)
    if "tax_rate" in s:
        rate = dec(ck, f"{path}.tax_rate", s["tax_rate"])
        if rate is not None and rate > 100:
            ck.fail(f"{path}.tax_rate", f"a tax rate is a percentage 0–100, got {s['tax_rate']!r}")
        s["tax_rate"] = rate
    lang = s.get("language", "en")
    if lang not in LANGUAGES:
        ck.fail(f"{path}.language", f"statement languages: {', '.join(LANGUAGES)} (got {lang!r})")
    terms = s.get("payment_terms_days", 14)
    if not isinstance(terms, int) or isinstance(terms, bool) or not 0 <= terms <= 365:
        ck.fail(f"{path}.payment_terms_days", f"payment terms are 0–365 days, got {terms!r}")
    return s


def _wallet_history(ck: Check, path: str, raw: Any, sc: Scenario, has_wallet: bool) -> list[WalletAction]:
    out: list[WalletAction] = []
    for i, item in enumerate(as_list(ck, path, raw)):
        hp = f"{path}[{i}]"
        h = table(ck, hp, item)
        unknown(ck, hp, h, ("on", *WALLET_ACTIONS, "reason", "of"))
        kinds = [k for k in WALLET_ACTIONS if k in h]
        if len(kinds) != 1:
            ck.fail(hp, f"give exactly one of {', '.join(WALLET_ACTIONS)}")
            continue
        kind = kinds[0]
        if not has_wallet:
            ck.fail(f"{hp}.{kind}", "a wallet history needs a [partners.wallet]")
            continue
        credits = dec(ck, f"{hp}.{kind}", h[kind], minimum=None if kind == "adjust" else Decimal(1), required=True)
        on = a_date(ck, f"{hp}.on", h.get("on"), sc.today, sc.today) if "on" in h else None
        if on is None:
            ck.fail(f"{hp}.on", "a wallet event needs its date ('on')")
        elif on > sc.today:
            ck.fail(f"{hp}.on", f"wallet history cannot lie in the future ({on}, today is {sc.today})")
        of = h.get("of")
        if kind == "refund" and not (isinstance(of, int) and (of == -1 or (0 <= of < i and "top_up" in
                                                                              (raw[of] or {})))):
            ck.fail(f"{hp}.of", "a refund names the purchase: of = the index of an earlier top_up here, or -1 for "
                                "the wallet's initial `buy`")
            continue
        if kind in ("adjust", "refund") and not text(ck, f"{hp}.reason", h.get("reason")):
            continue
        if credits is not None and on is not None and on <= sc.today:
            out.append(WalletAction(kind, on, credits, h.get("reason"), of, ck.src(hp)))
    return out


def _month(ck: Check, path: str, v: Any, today: date) -> date | None:
    """A month: "2026-01", or any date in it (relative dates too: "month-3m")."""
    if isinstance(v, str) and re.fullmatch(r"\d{4}-\d{2}", v.strip()):
        y, m = map(int, v.strip().split("-"))
        if 1 <= m <= 12:
            return date(y, m, 1)
    n = len(ck.problems)
    d = a_date(ck, path, v if v is not None else "", today, today)
    return None if len(ck.problems) > n else d.replace(day=1)


def _statement_history(ck: Check, path: str, raw: Any, sc: Scenario) -> list[StatementAction]:
    out: list[StatementAction] = []
    for i, item in enumerate(as_list(ck, path, raw)):
        hp = f"{path}[{i}]"
        h = table(ck, hp, item)
        unknown(ck, hp, h, ("month", "on", "reason", *STATEMENT_ACTIONS))
        kinds = [k for k in STATEMENT_ACTIONS if k in h]
        if len(kinds) != 1:
            ck.fail(hp, f"give exactly one of {', '.join(STATEMENT_ACTIONS)}")
            continue
        kind = kinds[0]
        month = _month(ck, f"{hp}.month", h.get("month"), sc.today)
        if month is None:
            continue
        on = a_date(ck, f"{hp}.on", h.get("on"), sc.today, add_months(month, 1))
        if add_months(month, 1) > sc.today or on < add_months(month, 1) or on > sc.today:
            ck.fail(f"{hp}.on", f"a statement of {month:%Y-%m} is handled after the month ends and not after "
                                f"today ({sc.today}); got {on}")
            continue
        who = h[kind]
        if kind == "finalise" and who is not True:
            ck.fail(f"{hp}.finalise", "finalise = true (all of the partner's statements of the month)")
            continue
        if kind != "finalise" and not text(ck, f"{hp}.{kind}", who):
            continue
        if kind in ("void", "credit") and not text(ck, f"{hp}.reason", h.get("reason")):
            continue
        out.append(StatementAction(kind, month, on, None if kind == "finalise" else who, h.get("reason"),
                                   ck.src(hp)))
    return out


def _partner_plan(ck: Check, path: str, pp: Any, currency: str | None, platform: dict[str, PlanDef]) -> None:
    if pp is None:
        return
    found = platform.get(pp) if isinstance(pp, str) else None
    if found is None:
        ck.fail(f"{path}.partner_plan", f"unknown platform plan {pp!r}")
    elif found.subject != "partner":
        ck.fail(f"{path}.partner_plan", f"plan {pp!r} prices customer accounts, not partners")
    elif currency and found.currency != currency:
        ck.fail(f"{path}.partner_plan", f"currency mismatch: plan {pp!r} is in {found.currency}, the partner "
                                        f"in {currency}")


def _plans(ck: Check, path: str, raw: Any, partner: PartnerDef, sc: Scenario, seen: Seen,
           metrics: set[str], currency: str | None) -> dict[str, PlanDef]:
    plans: dict[str, PlanDef] = {}
    for i, raw_plan in enumerate(as_list(ck, f"{path}.plans", raw)):
        pd = plan(ck, f"{path}.plans[{i}]", raw_plan, currency, sc.today, metrics, platform=False)
        if pd is not None:
            if pd.code.lower() in {c.lower() for c in plans}:
                ck.fail(f"{path}.plans[{i}].code", f"duplicate plan code {pd.code!r}")
            plans[pd.code] = pd
        elif isinstance(raw_plan, dict) and isinstance(raw_plan.get("code"), str):
            seen.broken_plans.add((partner.name, raw_plan["code"]))  # known but broken: no second error
    return plans


def partner(ck: Check, path: str, raw: Any, sc: Scenario, seen: Seen, metrics: set[str],
            platform: dict[str, PlanDef]) -> PartnerDef | None:
    p = table(ck, path, raw)
    unknown(ck, path, p, PARTNER_KEYS)
    name, currency = _identity(ck, path, p, seen)
    staff = [s for i, raw_s in enumerate(as_list(ck, f"{path}.staff", p.get("staff")))
             if (s := person(ck, f"{path}.staff[{i}]", raw_s, seen, sc.password, None))]
    card_, wallet = _payment(ck, path, p, sc.today)
    _partner_plan(ck, path, p.get("partner_plan"), currency, platform)
    pd = PartnerDef(name or "", currency or "EUR", p.get("country"), p.get("contact_email"), staff, card_, wallet,
                    p.get("partner_plan"),
                    a_date(ck, f"{path}.partner_plan_from", p.get("partner_plan_from"), sc.today, sc.start), [], [],
                    settings(ck, f"{path}.statements", p.get("statements")),
                    _wallet_history(ck, f"{path}.wallet_history", p.get("wallet_history"), sc, wallet is not None),
                    _statement_history(ck, f"{path}.statement_history", p.get("statement_history"), sc),
                    a_date(ck, f"{path}.created", p["created"], sc.today, sc.start) if "created" in p else None,
                    src=ck.src(path))
    pd.rate_card = read_partner_card(ck, f"{path}.rate_card", p.get("rate_card"), sc, currency, metrics, table,
                                     unknown, a_date)
    plans = _plans(ck, path, p.get("plans"), pd, sc, seen, metrics, currency)
    pd.plans = list(plans.values())
    ctx = Ctx(sc, seen, metrics, pd, plans, platform)
    for i, raw_c in enumerate(as_list(ck, f"{path}.customers", p.get("customers"))):
        cp = f"{path}.customers[{i}]"
        c = table(ck, cp, raw_c)
        unknown(ck, cp, c, CUSTOMER_KEYS)
        cd = customer(ck, cp, c, f"{name}|{i}|{c.get('name')}", ctx)
        if cd:
            pd.customers.append(cd)
    for i, raw_g in enumerate(as_list(ck, f"{path}.generate_customers", p.get("generate_customers"))):
        pd.customers += generated(ck, f"{path}.generate_customers[{i}]", raw_g, ctx)
    return pd if name and currency else None
