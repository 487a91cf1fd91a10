"""Scenario files (TOML): reading, relative dates, and checking EVERYTHING before anything is written.

A scenario describes partners, staff, customer accounts with users, plans, billing modes, wallets and usage
(see docs/scenarios.md). :func:`read_scenario` turns one file (and the files it includes) into a
:class:`Scenario` of plain, checked values, or raises :class:`ScenarioError` listing every problem with its
place: the file, a path such as ``partners[1].customers[3].plan`` and, where it can be found cheaply, the
line. tomllib gives no line numbers for values, so the line is found by searching the key and value in
the source text (good enough to point a person at the right spot).

Nothing here writes to the database; the session is only used to read the metric catalogue, the
platform's plans and the e-mail addresses and partner names already taken (when adding to a database).
"""

from __future__ import annotations

import calendar
import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.accounts.accounts import ACCOUNT_FIELDS, check_account_fields
from core.accounts.actor import CUSTOMER_ROLES
from core.accounts.passwords import password_problem
from core.errors import ValidationError
from core.pricing import PlanSpec, PlanValidationError, validate_plan
from core.usage.metrics import KEY_RE, get_metrics
from core.validation import EMAIL_RE, normalise_email
from db.models import LoginDirectory, Partner
from db.models.usage import AGGREGATIONS
from db.models.wallet import BILLING_MODES, ON_DECLINE, OVERDRAFT_POLICIES

DATE_RE = re.compile(r"^(today|month)((?:\s*[+-]\s*\d+\s*[dmy])*)$")
OFFSET_RE = re.compile(r"([+-])\s*(\d+)\s*([dmy])")
MAX_EVENTS = 500_000  # per scenario: a demo, not a benchmark (seeds/bulk.py is for that)
DEMO_CARD = "4242424242424242"


class ScenarioError(ValidationError):
    """A scenario file has problems; nothing was written. `.problems` lists every one of them."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__({p.where_text(): p.message for p in problems} or {"_form": "invalid scenario"})

    def report(self) -> str:
        return "\n".join(str(p) for p in self.problems)


@dataclass(frozen=True)
class Problem:
    file: str
    path: str
    message: str
    line: int | None = None

    def where_text(self) -> str:
        at = f"{self.file}" + (f":{self.line}" if self.line else "")
        return f"{at}: {self.path}" if self.path else at

    def __str__(self) -> str:
        return f"{self.where_text()}: {self.message}"


# ---------------------------------------------------------------- checked values


@dataclass
class Generator:
    metric: str
    daily: Decimal | None
    monthly: Decimal | None
    day: int
    growth: Decimal
    noise: Decimal
    start: date
    end: date
    weekdays_only: bool
    decimals: int
    properties: dict[str, Any]
    seed: str


@dataclass
class Event:
    metric: str
    quantity: Decimal
    at: datetime
    properties: dict[str, Any] | None


@dataclass
class PlanDef:
    code: str
    name: str
    currency: str
    subject: str
    description: str | None
    spec: PlanSpec


@dataclass
class CustomerDef:
    key: str  # stable id for event ids and random seeds
    fields: dict[str, Any]
    users: list[dict[str, str]]
    plan: str | None
    plan_owner: str  # "partner" | "platform"
    plan_from: date
    overrides: dict[str, str | None]
    mode: str | None
    on_decline: str | None
    mode_from: date
    usage: list[Generator]
    events: list[Event]


@dataclass
class PartnerDef:
    name: str
    currency: str
    country: str | None
    contact_email: str | None
    staff: list[dict[str, str]]
    card: dict[str, Any] | None
    wallet: dict[str, Any] | None
    partner_plan: str | None
    partner_plan_from: date
    plans: list[PlanDef]
    customers: list[CustomerDef]


@dataclass
class Scenario:
    name: str
    today: date
    start: date  # default start of generated usage
    password: str
    seed: str
    metrics: list[dict[str, Any]] = field(default_factory=list)
    admins: list[dict[str, str]] = field(default_factory=list)
    platform_plans: list[PlanDef] = field(default_factory=list)
    partners: list[PartnerDef] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- dates


def add_months(d: date, n: int) -> date:
    y, m = divmod(d.month - 1 + n, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def resolve_date(value: Any, today: date) -> date:
    """A date in a scenario: a TOML date, an ISO string, or relative to the load day:
    ``today``, ``month`` (the 1st of this month), each optionally followed by offsets such as
    ``-13m``, ``+4d``, ``-1y``: ``month-1m+4d`` is the 5th of last month. Raises ValueError."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a date (YYYY-MM-DD or e.g. 'today-13m'), got {value!r}")
    text = value.strip().lower()
    m = DATE_RE.match(text)
    if not m:
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not a date: {value!r} (use YYYY-MM-DD, 'today', 'month-1m+4d' ...)") from None
    d = today if m.group(1) == "today" else today.replace(day=1)
    for sign, num, unit in OFFSET_RE.findall(m.group(2)):
        n = int(num) * (1 if sign == "+" else -1)
        d = d + timedelta(days=n) if unit == "d" else add_months(d, n * (12 if unit == "y" else 1))
    return d


def default_start(today: date) -> date:
    """13 calendar months ending today: the 1st of the month 12 months before this one."""
    return add_months(today.replace(day=1), -12)


# ---------------------------------------------------------------- the checker


class _Check:
    """Collects problems for one file; knows the source text to find line numbers."""

    def __init__(self, file: str, source: str):
        self.file = file
        self.lines = source.splitlines()
        self.problems: list[Problem] = []

    def line_of(self, key: str | None, value: Any, after: int = 0) -> int | None:
        """The first line (after line `after`) where `key = value` is written."""
        if key is None:
            return None
        if isinstance(value, str):
            pat = re.compile(rf"\b{re.escape(key)}\s*=\s*[\"']{re.escape(value)}[\"']")
        elif isinstance(value, (bool, int, float, Decimal)):
            lit = str(value).lower() if isinstance(value, bool) else str(value)
            pat = re.compile(rf"\b{re.escape(key)}\s*=\s*[\"']?{re.escape(lit)}\b")
        else:
            pat = re.compile(rf"^\s*{re.escape(key)}\s*=")
        for n, text in enumerate(self.lines, start=1):
            if n > after and pat.search(text):
                return n
        return None

    def fail(self, path: str, message: str, value: Any = None, *, key: str | None = None, after: int = 0) -> None:
        key = key if key is not None else (path.rsplit(".", 1)[-1].split("[")[0] if path else None)
        self.problems.append(Problem(self.file, path, message, self.line_of(key, value, after)))

    def near(self, path: str, message: str, anchor_key: str, anchor_value: Any) -> None:
        """A problem about a whole table: point at its `name = ...` (or other identifying) line."""
        self.problems.append(Problem(self.file, path, message, self.line_of(anchor_key, anchor_value)))


def _table(ck: _Check, path: str, v: Any) -> dict[str, Any]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        ck.fail(path, f"expected a table, got {type(v).__name__}")
        return {}
    return v


def _list(ck: _Check, path: str, v: Any) -> list[Any]:
    if v is None:
        return []
    if not isinstance(v, list):
        ck.fail(path, f"expected a list (array of tables), got {type(v).__name__}")
        return []
    return v


def _unknown(ck: _Check, path: str, data: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for k in data:
        if k not in allowed:
            ck.fail(f"{path}.{k}" if path else k, f"unknown field {k!r} (allowed: {', '.join(allowed)})",
                    key=k)


def _dec(ck: _Check, path: str, v: Any, *, required: bool = False, minimum: Decimal | None = Decimal(0),
         default: Decimal | None = None) -> Decimal | None:
    """A decimal written as a string ("0.017"), an integer, or a TOML float (read as the digits typed)."""
    if v is None:
        if required:
            ck.fail(path, "is required")
        return default
    if isinstance(v, bool):
        ck.fail(path, f"expected a number, got {v!r}", v)
        return default
    try:
        d = Decimal(repr(v)) if isinstance(v, float) else Decimal(str(v).strip())
    except InvalidOperation:
        ck.fail(path, f"not a decimal number: {v!r}", v)
        return default
    if not d.is_finite():
        ck.fail(path, f"must be a finite number, got {v!r}", v)
        return default
    if minimum is not None and d < minimum:
        ck.fail(path, f"must be at least {minimum}, got {v!r}", v)
        return default
    return d


def _str(ck: _Check, path: str, v: Any, *, required: bool = True) -> str | None:
    if v is None:
        if required:
            ck.fail(path, "is required")
        return None
    if not isinstance(v, str) or not v.strip():
        ck.fail(path, f"must be a non-empty text, got {v!r}", v)
        return None
    return v.strip()


def _date(ck: _Check, path: str, v: Any, today: date, default: date) -> date:
    if v is None:
        return default
    try:
        return resolve_date(v, today)
    except ValueError as exc:
        ck.fail(path, str(exc), v)
        return default


def _plain(v: Any) -> Any:
    """TOML values → what the pricing parser expects: floats as the decimal string typed."""
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


# ---------------------------------------------------------------- plans


PLAN_KEYS = ("code", "name", "description", "subject", "timing", "minimum_spend", "charges", "fees")


def _plan(ck: _Check, path: str, raw: Any, currency: str | None, today: date, metrics: set[str],
          *, platform: bool) -> PlanDef | None:
    data = _table(ck, path, raw)
    _unknown(ck, path, data, PLAN_KEYS + (("currency",) if platform else ()))
    code = _str(ck, f"{path}.code", data.get("code"))
    name = _str(ck, f"{path}.name", data.get("name"))
    subject = data.get("subject", "account")
    if subject not in ("account", "partner"):
        ck.fail(f"{path}.subject", f"subject must be 'account' or 'partner', got {subject!r}", subject)
    elif subject == "partner" and not platform:
        ck.fail(f"{path}.subject", "partner-level plans belong to the platform: define them under "
                                   "[[platform_plans]]", subject)
    if platform:
        currency = _str(ck, f"{path}.currency", data.get("currency"))
    charges = []
    for i, c in enumerate(_list(ck, f"{path}.charges", data.get("charges"))):
        c = _plain(_table(ck, f"{path}.charges[{i}]", c))
        for tk in ("tiers", "overage_tiers"):
            if isinstance(c.get(tk), list):
                c[tk] = [{**t, "last": t.get("last")} if isinstance(t, dict) else t for t in c[tk]]
        charges.append(c)
    fees = []
    for i, f in enumerate(_list(ck, f"{path}.fees", data.get("fees"))):
        f = _plain(_table(ck, f"{path}.fees[{i}]", f))
        for dk in ("start", "end"):
            if f.get(dk) is not None:
                f[dk] = _date(ck, f"{path}.fees[{i}].{dk}", f[dk], today, today).isoformat()
        fees.append(f)
    spec_dict = {"currency": currency, "timing": data.get("timing", "in_arrears"), "charges": charges,
                 "fees": fees, "minimum_spend": _plain(data.get("minimum_spend"))}
    try:
        spec = validate_plan(spec_dict, known_metrics=metrics, expected_currency=currency)
    except PlanValidationError as exc:
        for p, msg in exc.problems:
            inner = p if p else ""
            value = None
            m = re.match(r"^(charges|fees)\[(\d+)\]\.(\w+)", inner)
            if m:
                items = charges if m.group(1) == "charges" else fees
                idx = int(m.group(2))
                if idx < len(items) and isinstance(items[idx], dict):
                    value = items[idx].get(m.group(3))
            full = f"{path}.{inner}" if inner else path
            if value is not None and not isinstance(value, (list, dict)):
                ck.fail(full, msg, value)
            else:
                ck.near(full, msg, "code", code)
        return None
    if code is None or name is None or currency is None:
        return None
    return PlanDef(code, name, currency, subject, data.get("description"), spec)


# ---------------------------------------------------------------- usage


GEN_KEYS = ("metric", "daily", "monthly", "day", "growth", "noise", "start", "end", "weekdays_only", "decimals",
            "properties", "seed")
EVENT_KEYS = ("metric", "quantity", "at", "properties")


def _generator(ck: _Check, path: str, raw: Any, sc: Scenario, metrics: set[str], seed: str) -> Generator | None:
    g = _table(ck, path, raw)
    _unknown(ck, path, g, GEN_KEYS)
    metric = _str(ck, f"{path}.metric", g.get("metric"))
    if metric and metric not in metrics:
        ck.fail(f"{path}.metric", f"unknown metric {metric!r}", metric)
        metric = None
    daily = _dec(ck, f"{path}.daily", g.get("daily"))
    monthly = _dec(ck, f"{path}.monthly", g.get("monthly"))
    if ("daily" in g) == ("monthly" in g):
        ck.near(path, "give exactly one of 'daily' (volume per day) or 'monthly' (volume per month)",
                "metric", g.get("metric"))
    day = g.get("day", 1)
    if not isinstance(day, int) or isinstance(day, bool) or not 1 <= day <= 28:
        ck.fail(f"{path}.day", f"day of the month must be a whole number 1–28, got {day!r}", day)
        day = 1
    growth = _dec(ck, f"{path}.growth", g.get("growth"), minimum=Decimal("-0.5"), default=Decimal(0))
    noise = _dec(ck, f"{path}.noise", g.get("noise"), default=Decimal(0))
    if noise is not None and noise > 1:
        ck.fail(f"{path}.noise", f"noise is a share of the volume between 0 and 1, got {g.get('noise')!r}",
                g.get("noise"))
    start = _date(ck, f"{path}.start", g.get("start"), sc.today, sc.start)
    end = _date(ck, f"{path}.end", g.get("end"), sc.today, sc.today)
    if end > sc.today:
        ck.fail(f"{path}.end", f"usage cannot lie in the future (ends {end}, today is {sc.today})", g.get("end"))
    if end < start:
        ck.fail(f"{path}.end", f"ends {end} before it starts {start}", g.get("end"))
    decimals = g.get("decimals", 0)
    if not isinstance(decimals, int) or isinstance(decimals, bool) or not 0 <= decimals <= 6:
        ck.fail(f"{path}.decimals", "decimals must be a whole number 0–6", decimals)
        decimals = 0
    props = _table(ck, f"{path}.properties", g.get("properties"))
    weekdays = g.get("weekdays_only", False)
    if not isinstance(weekdays, bool):
        ck.fail(f"{path}.weekdays_only", "must be true or false", weekdays)
    if metric is None or (daily is None) == (monthly is None):
        return None
    return Generator(metric, daily, monthly, day, growth or Decimal(0), noise or Decimal(0), start, end,
                     bool(weekdays), decimals, props, str(g.get("seed", seed)))


def _event(ck: _Check, path: str, raw: Any, sc: Scenario, metrics: set[str]) -> Event | None:
    e = _table(ck, path, raw)
    _unknown(ck, path, e, EVENT_KEYS)
    metric = _str(ck, f"{path}.metric", e.get("metric"))
    if metric and metric not in metrics:
        ck.fail(f"{path}.metric", f"unknown metric {metric!r}", metric)
        metric = None
    qty = _dec(ck, f"{path}.quantity", e.get("quantity"), required=True)
    raw_at = e.get("at")
    at: datetime | None = None
    if raw_at is None:
        ck.fail(f"{path}.at", "is required (a date such as 'month-1m+4d' or a date-time)")
    elif isinstance(raw_at, datetime):
        at = raw_at if raw_at.tzinfo else raw_at.replace(tzinfo=None)
    else:
        try:
            d = resolve_date(raw_at, sc.today)
            at = datetime(d.year, d.month, d.day)
        except ValueError as exc:
            ck.fail(f"{path}.at", str(exc), raw_at)
    if at is not None and at.date() > sc.today:
        ck.fail(f"{path}.at", f"usage cannot lie in the future ({at.date()}, today is {sc.today})", raw_at)
        at = None
    props = e.get("properties")
    if props is not None and not isinstance(props, dict):
        ck.fail(f"{path}.properties", "properties must be a table", None)
        props = None
    if metric is None or qty is None or at is None:
        return None
    return Event(metric, qty, at, props)


# ---------------------------------------------------------------- people


class _Seen:
    """E-mail addresses and partner names across all files of a scenario (and the database)."""

    def __init__(self, session: Session):
        self.session = session
        self.emails: dict[str, tuple[str, str, int | None]] = {}  # e-mail -> (file, path, line)
        self.partners: dict[str, str] = {}


def _person(ck: _Check, path: str, raw: Any, seen: _Seen, password: str | None, roles: tuple[str, ...] | None
            ) -> dict[str, str] | None:
    u = _table(ck, path, raw)
    _unknown(ck, path, u, ("email", "name") + (("role",) if roles else ()))
    email = _str(ck, f"{path}.email", u.get("email"))
    name = _str(ck, f"{path}.name", u.get("name"))
    role = None
    if roles:
        role = u.get("role")
        if role not in roles:
            ck.fail(f"{path}.role", f"bad role {role!r}: use one of {', '.join(roles)}", role)
            role = None
    if email:
        if not EMAIL_RE.match(email):
            ck.fail(f"{path}.email", f"not a valid e-mail address: {email!r}", email)
            email = None
        else:
            norm = normalise_email(email)
            if norm in seen.emails:
                f0, p0, l0 = seen.emails[norm]
                at = f"{f0}:{l0}" if l0 else f0
                ck.fail(f"{path}.email", f"duplicate e-mail {email!r} (also at {at}: {p0})", email,
                        after=(l0 or 0) if f0 == ck.file else 0)
            elif seen.session.get(LoginDirectory, norm) is not None:
                ck.fail(f"{path}.email", f"a user with e-mail {email!r} already exists in the database", email)
            else:
                seen.emails[norm] = (ck.file, f"{path}.email", ck.line_of("email", email))
            if password:
                problem = password_problem(password, email)
                if problem:
                    ck.fail(f"{path}.email", f"the scenario password is refused for {email}: {problem}", email)
    if email is None or name is None or (roles and role is None):
        return None
    return {"email": email, "name": name, **({"role": role} if role else {})}


# ---------------------------------------------------------------- customers


CUSTOMER_KEYS = (*ACCOUNT_FIELDS, "users", "plan", "plan_from", "overrides", "mode", "on_decline", "mode_from",
                 "usage", "events")
GENERATED_KEYS = ("count", "name", "country", "currency", "plan", "plan_from", "overrides", "mode", "on_decline",
                  "mode_from", "usage", "first")


def _customer(ck: _Check, path: str, c: dict[str, Any], key: str, sc: Scenario, seen: _Seen, metrics: set[str],
              partner: PartnerDef | None, plan_codes: dict[str, PlanDef], platform_codes: dict[str, PlanDef],
              *, with_users: bool = True) -> CustomerDef | None:
    ok = True
    fields_in = {k: c[k] for k in ACCOUNT_FIELDS if k in c}
    if partner is not None:
        fields_in.setdefault("currency", partner.currency)
    try:
        fields = check_account_fields(fields_in)
    except ValidationError as exc:
        for f, msg in exc.errors.items():
            ck.fail(f"{path}.{f}", msg, fields_in.get(f))
        fields, ok = {}, False
    users = []
    for i, u in enumerate(_list(ck, f"{path}.users", c.get("users")) if with_users else []):
        person = _person(ck, f"{path}.users[{i}]", u, seen, sc.password, CUSTOMER_ROLES)
        ok = ok and person is not None
        if person:
            users.append(person)
    # plan: the partner's own code, or "platform:<code>" for a platform plan
    plan_ref = c.get("plan")
    owner, plan_def = "partner", None
    if plan_ref is not None:
        if not isinstance(plan_ref, str):
            ck.fail(f"{path}.plan", f"plan must be a plan code, got {plan_ref!r}", plan_ref)
            ok = False
        else:
            if plan_ref.startswith("platform:"):
                owner, plan_def = "platform", platform_codes.get(plan_ref.split(":", 1)[1])
            else:
                plan_def = plan_codes.get(plan_ref)
            if plan_def is None:
                known = sorted(plan_codes) + [f"platform:{k}" for k in platform_codes]
                ck.fail(f"{path}.plan", f"unknown plan {plan_ref!r} (known: {', '.join(known) or 'none'})", plan_ref)
                ok = False
            elif plan_def.subject != "account":
                ck.fail(f"{path}.plan", f"plan {plan_ref!r} prices partners, not customer accounts", plan_ref)
                ok = False
            elif fields.get("currency") and plan_def.currency != fields["currency"]:
                ck.fail(f"{path}.plan", f"currency mismatch: plan {plan_ref!r} is in {plan_def.currency} but the "
                                        f"customer is billed in {fields['currency']}", plan_ref)
                ok = False
    overrides_raw = _table(ck, f"{path}.overrides", c.get("overrides"))
    overrides = {str(k): (None if v is None else str(_plain(v))) for k, v in overrides_raw.items()}
    if overrides and plan_def is not None:
        from core.pricing import apply_overrides

        try:
            apply_overrides(plan_def.spec, overrides, known_metrics=metrics)
        except PlanValidationError as exc:
            for p, msg in exc.problems:
                ck.fail(f"{path}.overrides.{p}", msg, key=p.split(" ")[0].split(".")[-1])
            ok = False
    mode = c.get("mode")
    if mode is not None and mode not in BILLING_MODES:
        ck.fail(f"{path}.mode", f"bad mode {mode!r}: use one of {', '.join(BILLING_MODES)}", mode)
        ok = False
    on_decline = c.get("on_decline")
    if on_decline is not None and (mode != "partner_on_demand" or on_decline not in ON_DECLINE):
        ck.fail(f"{path}.on_decline", "on_decline is 'block' or 'flag' and only for mode partner_on_demand",
                on_decline)
        ok = False
    if partner is not None and mode == "partner_prepaid" and partner.wallet is None:
        ck.fail(f"{path}.mode", "mode partner_prepaid needs a [partners.wallet] for the partner", mode)
        ok = False
    if partner is not None and mode == "partner_on_demand" and partner.card is None:
        ck.fail(f"{path}.mode", "mode partner_on_demand needs a payment card for the partner "
                                "([partners.card] or a wallet)", mode)
        ok = False
    plan_from = _date(ck, f"{path}.plan_from", c.get("plan_from"), sc.today, sc.start)
    mode_from = _date(ck, f"{path}.mode_from", c.get("mode_from"), sc.today, sc.start)
    usage = []
    for i, g in enumerate(_list(ck, f"{path}.usage", c.get("usage"))):
        gen = _generator(ck, f"{path}.usage[{i}]", g, sc, metrics, f"{sc.seed}|{key}|{i}")
        ok = ok and gen is not None
        if gen:
            usage.append(gen)
    events = []
    for i, e in enumerate(_list(ck, f"{path}.events", c.get("events"))):
        ev = _event(ck, f"{path}.events[{i}]", e, sc, metrics)
        ok = ok and ev is not None
        if ev:
            events.append(ev)
    if not ok:
        return None
    return CustomerDef(key, fields, users, plan_ref, owner, plan_from, overrides, mode, on_decline, mode_from,
                       usage, events)


def _generated(ck: _Check, path: str, raw: Any, sc: Scenario, seen: _Seen, metrics: set[str], partner: PartnerDef,
               plan_codes: dict[str, PlanDef], platform_codes: dict[str, PlanDef]) -> list[CustomerDef]:
    g = _table(ck, path, raw)
    _unknown(ck, path, g, GENERATED_KEYS)
    count = g.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 2000:
        ck.fail(f"{path}.count", f"count must be a whole number 1–2000, got {count!r}", count)
        return []
    first = g.get("first", 1)
    pattern = g.get("name")
    if not isinstance(pattern, str) or "{n" not in pattern:
        ck.fail(f"{path}.name", "name must be a pattern containing {n}, e.g. 'Client {n:03}'", pattern)
        return []
    try:
        names = [pattern.format(n=n) for n in range(first, first + count)]
    except (ValueError, KeyError, IndexError) as exc:
        ck.fail(f"{path}.name", f"bad name pattern {pattern!r}: {exc}", pattern)
        return []
    template = {k: v for k, v in g.items() if k not in ("count", "name", "first")}
    # check the template once, then copy it: one problem per block, not one per generated customer
    base = _customer(ck, path, {**template, "name": names[0]}, f"{partner.name}|{path}|0", sc, seen, metrics,
                     partner, plan_codes, platform_codes, with_users=False)
    if base is None:
        return []
    out = []
    for i, name in enumerate(names):
        key = f"{partner.name}|{path}|{i}"
        usage = [Generator(**{**u.__dict__, "seed": f"{sc.seed}|{key}|{j}"}) for j, u in enumerate(base.usage)]
        out.append(CustomerDef(key, {**base.fields, "name": name}, [], base.plan, base.plan_owner, base.plan_from,
                               dict(base.overrides), base.mode, base.on_decline, base.mode_from, usage, []))
    return out


# ---------------------------------------------------------------- partners


PARTNER_KEYS = ("name", "currency", "country", "contact_email", "staff", "card", "wallet", "partner_plan",
                "partner_plan_from", "plans", "customers", "generate_customers")
WALLET_KEYS = ("buy", "low_balance_threshold", "auto_buy_credits", "overdraft_policy", "overdraft_limit")
CARD_KEYS = ("number", "exp_month", "exp_year", "label")


def _partner(ck: _Check, path: str, raw: Any, sc: Scenario, seen: _Seen, metrics: set[str],
             platform_codes: dict[str, PlanDef]) -> PartnerDef | None:
    p = _table(ck, path, raw)
    _unknown(ck, path, p, PARTNER_KEYS)
    name = _str(ck, f"{path}.name", p.get("name"))
    currency = _str(ck, f"{path}.currency", p.get("currency"))
    from core.validation import countries, currencies

    if currency and currency not in currencies():
        ck.fail(f"{path}.currency", f"unknown currency {currency!r}", currency)
        currency = None
    country = p.get("country")
    if country is not None and country not in countries():
        ck.fail(f"{path}.country", f"unknown country {country!r}", country)
    if name:
        low = name.lower()
        if low in seen.partners:
            ck.fail(f"{path}.name", f"duplicate partner name {name!r} (also at {seen.partners[low]})", name)
        elif seen.session.scalar(select(Partner.id).where(func.lower(Partner.name) == low)):
            ck.fail(f"{path}.name", f"a partner named {name!r} already exists in the database", name)
        seen.partners.setdefault(low, f"{ck.file}: {path}")
    staff = [s for i, raw_s in enumerate(_list(ck, f"{path}.staff", p.get("staff")))
             if (s := _person(ck, f"{path}.staff[{i}]", raw_s, seen, sc.password, None))]
    card = p.get("card")
    wallet = p.get("wallet")
    if card is not None:
        card = _table(ck, f"{path}.card", card)
        _unknown(ck, f"{path}.card", card, CARD_KEYS)
    if wallet is not None:
        wallet = _table(ck, f"{path}.wallet", wallet)
        _unknown(ck, f"{path}.wallet", wallet, WALLET_KEYS)
        for k in ("buy", "low_balance_threshold", "auto_buy_credits", "overdraft_limit"):
            if k in wallet:
                wallet[k] = _dec(ck, f"{path}.wallet.{k}", wallet[k])
        pol = wallet.get("overdraft_policy", "refuse")
        if pol not in OVERDRAFT_POLICIES:
            ck.fail(f"{path}.wallet.overdraft_policy", f"use one of {', '.join(OVERDRAFT_POLICIES)}", pol)
        card = card if card is not None else {}
    if card is not None:
        card = {"number": str(card.get("number", DEMO_CARD)), "exp_month": card.get("exp_month", 12),
                "exp_year": card.get("exp_year", sc.today.year + 3), "label": card.get("label")}
    pp = p.get("partner_plan")
    if pp is not None:
        plan = platform_codes.get(pp) if isinstance(pp, str) else None
        if plan is None:
            ck.fail(f"{path}.partner_plan", f"unknown platform plan {pp!r}", pp)
        elif plan.subject != "partner":
            ck.fail(f"{path}.partner_plan", f"plan {pp!r} prices customer accounts, not partners", pp)
        elif currency and plan.currency != currency:
            ck.fail(f"{path}.partner_plan", f"currency mismatch: plan {pp!r} is in {plan.currency}, the partner "
                                            f"in {currency}", pp)
    partner = PartnerDef(name or "", currency or "EUR", country, p.get("contact_email"), staff, card, wallet, pp,
                         _date(ck, f"{path}.partner_plan_from", p.get("partner_plan_from"), sc.today, sc.start),
                         [], [])
    plans: dict[str, PlanDef] = {}
    for i, raw_plan in enumerate(_list(ck, f"{path}.plans", p.get("plans"))):
        pd = _plan(ck, f"{path}.plans[{i}]", raw_plan, currency, sc.today, metrics, platform=False)
        if pd is not None:
            if pd.code.lower() in {c.lower() for c in plans}:
                ck.fail(f"{path}.plans[{i}].code", f"duplicate plan code {pd.code!r}", pd.code)
            plans[pd.code] = pd
        elif isinstance(raw_plan, dict) and isinstance(raw_plan.get("code"), str):
            plans[raw_plan["code"]] = None  # type: ignore[assignment]  # known but broken: no second error
    partner.plans = [pd for pd in plans.values() if pd is not None]
    good_codes = {k: v for k, v in plans.items() if v is not None}
    broken = {k for k, v in plans.items() if v is None}
    for i, raw_c in enumerate(_list(ck, f"{path}.customers", p.get("customers"))):
        cp = f"{path}.customers[{i}]"
        c = _table(ck, cp, raw_c)
        _unknown(ck, cp, c, CUSTOMER_KEYS)
        if c.get("plan") in broken:
            c = {**c, "plan": None}  # its plan's own problems are reported already
        cd = _customer(ck, cp, c, f"{name}|{i}|{c.get('name')}", sc, seen, metrics, partner, good_codes,
                       platform_codes)
        if cd:
            partner.customers.append(cd)
    for i, raw_g in enumerate(_list(ck, f"{path}.generate_customers", p.get("generate_customers"))):
        partner.customers += _generated(ck, f"{path}.generate_customers[{i}]", raw_g, sc, seen, metrics, partner,
                                        good_codes, platform_codes)
    return partner if name and currency else None


# ---------------------------------------------------------------- files


TOP_KEYS = ("scenario", "password", "include", "metrics", "admins", "platform_plans", "partners")
METRIC_KEYS = ("key", "name", "unit", "aggregation", "property", "counts_as_active")


def _metrics(ck: _Check, raw: Any, sc: Scenario, catalogue: dict[str, Any]) -> None:
    for i, m in enumerate(_list(ck, "metrics", raw)):
        path = f"metrics[{i}]"
        m = _table(ck, path, m)
        _unknown(ck, path, m, METRIC_KEYS)
        key = _str(ck, f"{path}.key", m.get("key"))
        if key and not KEY_RE.match(key):
            ck.fail(f"{path}.key", "a metric key is lower-case letters, digits and _ (at most 40)", key)
            continue
        agg = m.get("aggregation", "sum")
        if agg not in AGGREGATIONS:
            ck.fail(f"{path}.aggregation", f"use one of {', '.join(AGGREGATIONS)}", agg)
            continue
        if not key:
            continue
        entry = {"key": key, "name": m.get("name") or key, "unit": m.get("unit") or key, "aggregation": agg,
                 "property": m.get("property"), "counts_as_active": bool(m.get("counts_as_active", False))}
        have = catalogue.get(key)
        if have is not None:
            same = (have["aggregation"] == agg and have.get("property") == entry["property"]
                    and bool(have["counts_as_active"]) == entry["counts_as_active"])
            if not same:
                ck.fail(f"{path}.key", f"metric {key!r} already exists with another definition "
                                       f"(aggregation {have['aggregation']})", key)
            continue
        catalogue[key] = entry
        sc.metrics.append(entry)


def _read_file(path: Path, sc: Scenario | None, session: Session, seen: _Seen, catalogue: dict[str, Any],
               problems: list[Problem], today: date, depth: int = 0) -> Scenario | None:
    name = path.name
    try:
        source = path.read_text(encoding="utf-8")
    except OSError as exc:
        problems.append(Problem(name, "", f"cannot read the file: {exc.strerror or exc}"))
        return sc
    ck = _Check(name, source)
    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        problems.append(Problem(name, "", f"not valid TOML: {exc}", int(m.group(1)) if m else None))
        return sc
    _unknown(ck, "", data, TOP_KEYS)
    head = _table(ck, "scenario", data.get("scenario"))
    _unknown(ck, "scenario", head, ("name", "seed", "start", "description"))
    if sc is None:
        password = data.get("password")
        if not isinstance(password, str) or len(password) < 8:
            ck.fail("password", "a scenario needs password = \"...\" (8+ characters) shared by its demo users",
                    password)
            password = ""
        start = _date(ck, "scenario.start", head.get("start"), today, default_start(today))
        sc = Scenario(str(head.get("name") or path.stem), today, start, password, str(head.get("seed", "42")))
    sc.files.append(name)
    for i, inc in enumerate(_list(ck, "include", data.get("include"))):
        if not isinstance(inc, str):
            ck.fail(f"include[{i}]", "an included file is a path relative to this file", inc)
            continue
        if depth > 4:
            ck.fail(f"include[{i}]", "includes nest too deeply", inc)
            continue
        _read_file(path.parent / inc, sc, session, seen, catalogue, problems, today, depth + 1)
    _metrics(ck, data.get("metrics"), sc, catalogue)
    metrics = set(catalogue)
    for i, a in enumerate(_list(ck, "admins", data.get("admins"))):
        person = _person(ck, f"admins[{i}]", a, seen, sc.password, None)
        if person:
            sc.admins.append(person)
    platform_codes = {p.code: p for p in sc.platform_plans}
    for i, raw in enumerate(_list(ck, "platform_plans", data.get("platform_plans"))):
        pd = _plan(ck, f"platform_plans[{i}]", raw, None, today, metrics, platform=True)
        if pd is not None:
            if pd.code in platform_codes:
                ck.fail(f"platform_plans[{i}].code", f"duplicate platform plan code {pd.code!r}", pd.code)
            platform_codes[pd.code] = pd
            sc.platform_plans.append(pd)
    for i, raw in enumerate(_list(ck, "partners", data.get("partners"))):
        partner = _partner(ck, f"partners[{i}]", raw, sc, seen, metrics, platform_codes)
        if partner is not None:
            sc.partners.append(partner)
    problems += ck.problems
    return sc


def read_scenario(path: Path | str, session: Session, *, today: date | None = None) -> Scenario:
    """Read and check a scenario file and everything it includes. Raises ScenarioError with every
    problem (nothing is written by this function in any case)."""
    today = today or date.today()
    problems: list[Problem] = []
    catalogue = {k: {"aggregation": m.aggregation, "property": m.property, "counts_as_active": m.counts_as_active}
                 for k, m in get_metrics(session).items()}
    sc = _read_file(Path(path), None, session, _Seen(session), catalogue, problems, today)
    if sc is not None and not problems:
        n = estimate_events(sc)
        if n > MAX_EVENTS:
            problems.append(Problem(Path(path).name, "", f"the usage would make about {n:,} events; a scenario "
                                                         f"may make at most {MAX_EVENTS:,}"))
    if problems or sc is None:
        raise ScenarioError(problems or [Problem(Path(path).name, "", "empty scenario")])
    return sc


def estimate_events(sc: Scenario) -> int:
    n = 0
    for p in sc.partners:
        for c in p.customers:
            n += len(c.events)
            for g in c.usage:
                days = (g.end - g.start).days + 1
                n += days if g.daily is not None else days // 28 + 1
    return n
