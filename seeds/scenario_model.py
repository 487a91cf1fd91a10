"""Scenario files: the checked values (plain dataclasses), problems with their place, and relative dates.

Every definition read from a file keeps its :class:`Src` (file, path, and the file's path → line map), so a
problem found while LOADING (a wallet that runs dry, a declined purchase) is reported with the same file,
line and path as a problem found while checking.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from core.errors import ValidationError
from core.pricing import PlanSpec
from seeds.scenario_positions import line_for

DATE_RE = re.compile(r"^(today|month)((?:\s*[+-]\s*\d+\s*[dmy])*)$")
OFFSET_RE = re.compile(r"([+-])\s*(\d+)\s*([dmy])")


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


@dataclass(frozen=True)
class Src:
    """Where a definition is written: its file, its path, and the file's path → line map."""

    file: str
    path: str
    lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def at(self, sub: str = "") -> str:
        if not sub:
            return self.path
        return f"{self.path}{sub}" if sub.startswith("[") else f"{self.path}.{sub}" if self.path else sub

    def problem(self, sub: str, message: str) -> Problem:
        full = self.at(sub)
        return Problem(self.file, full, message, line_for(self.lines, full))

    def error(self, sub: str, message: str) -> ScenarioError:
        return ScenarioError([self.problem(sub, message)])


NOWHERE = Src("", "")


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
    shape: dict[str, Any] = field(default_factory=dict)  # season, weekdays, ramp (see docs/scenarios.md)
    src: Src = NOWHERE


@dataclass
class Event:
    metric: str
    quantity: Decimal
    at: datetime
    properties: dict[str, Any] | None


@dataclass
class PlanVersionDef:
    effective_from: date
    spec: PlanSpec
    note: str | None = None


@dataclass
class PlanDef:
    code: str
    name: str
    currency: str
    subject: str
    description: str | None
    spec: PlanSpec
    versions: list[PlanVersionDef] = field(default_factory=list)  # later price versions, by date
    src: Src = NOWHERE


@dataclass
class Assignment:
    plan: str  # the partner's own code, or "platform:<code>"
    owner: str  # "partner" | "platform"
    effective_from: date
    overrides: dict[str, str | None]
    src: Src = NOWHERE


@dataclass
class ModeDef:
    mode: str
    effective_from: date
    on_decline: str | None
    src: Src = NOWHERE


@dataclass
class CustomerDef:
    key: str  # stable id for event ids and random seeds
    fields: dict[str, Any]
    users: list[dict[str, str]]
    plans: list[Assignment]
    modes: list[ModeDef]
    usage: list[Generator]
    events: list[Event]
    created: date | None = None
    deleted: date | None = None
    src: Src = NOWHERE

    # the first plan and mode (what older code and tests read)
    @property
    def plan(self) -> str | None:
        return self.plans[0].plan if self.plans else None

    @property
    def mode(self) -> str | None:
        return self.modes[0].mode if self.modes else None


@dataclass
class WalletAction:
    """A dated wallet event: top_up (a purchase), adjust (+/-), refund (of a top-up), expire."""

    kind: str
    on: date
    credits: Decimal
    reason: str | None
    of: int | None  # refund: index of the top-up in the partner's wallet history (-1: the initial `buy`)
    src: Src = NOWHERE


@dataclass
class StatementAction:
    """A dated statement event for one month: finalise (all of the partner's statements of the month), void
    or credit (one customer's statement, with a reason), regenerate (after a void)."""

    action: str
    month: date
    on: date
    customer: str | None
    reason: str | None
    src: Src = NOWHERE


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
    settings: dict[str, Any] | None = None
    wallet_history: list[WalletAction] = field(default_factory=list)
    statement_history: list[StatementAction] = field(default_factory=list)
    created: date | None = None
    rate_card: dict[str, Any] | None = None  # negotiated prices (seeds.scenario_ratecards)
    src: Src = NOWHERE


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
    platform_settings: dict[str, Any] | None = None  # [platform.statements]: the platform's statement settings
    rate_cards: list[tuple[str, date, Any]] = field(default_factory=list)  # standard cards: (name, from, card)

    def customer(self, partner: str, name: str) -> CustomerDef | None:
        for p in self.partners:
            if p.name.lower() == partner.lower():
                return next((c for c in p.customers if c.fields.get("name", "").lower() == name.lower()), None)
        return None


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
