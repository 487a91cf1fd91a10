"""Scenario files (TOML): reading, relative dates, and checking EVERYTHING before anything is written.

A scenario describes partners, staff, customer accounts with users, plans (with price versions and
discounts), billing modes and plan changes over time, wallets with their history, statement history and
usage (see docs/scenarios.md). :func:`read_scenario` turns one file (and the files it includes) into a
:class:`Scenario` of plain, checked values, or raises :class:`ScenarioError` listing every problem with its
place: the file, the line of the offending value itself (seeds.scenario_positions maps every dotted path
to its line) and a path such as ``partners[1].customers[3].plan``.

The parts: seeds.scenario_model (values, problems, dates), scenario_checks (single values), scenario_plans,
scenario_people, scenario_usage, scenario_customers, scenario_partners; this module reads the files.

Nothing here writes to the database; the session is only used to read the metric catalogue, the
platform's plans and the e-mail addresses and partner names already taken (when adding to a database).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from core import clock
from core.usage.metrics import KEY_RE, get_metrics
from db.models.usage import AGGREGATIONS
from seeds.scenario_checks import Check, a_date, as_list, table, unknown
from seeds.scenario_checks import plain as _plain  # noqa: F401  (older name, used by tests/pricing)
from seeds.scenario_model import (  # noqa: F401  (re-exported: the public names of scenario files)
    CustomerDef,
    Event,
    Generator,
    PartnerDef,
    PlanDef,
    Problem,
    Scenario,
    ScenarioError,
    add_months,
    default_start,
    resolve_date,
)
from seeds.scenario_partners import partner, settings
from seeds.scenario_people import Seen, person
from seeds.scenario_plans import plan
from seeds.scenario_ratecards import read_standard_cards
from seeds.scenario_usage import event, generator

MAX_EVENTS = 500_000  # per scenario: a demo, not a benchmark (seeds/bulk.py is for that)
TOP_KEYS = ("scenario", "password", "include", "metrics", "admins", "platform", "platform_plans", "rate_cards",
            "partners", "usage", "events")
METRIC_KEYS = ("key", "name", "unit", "aggregation", "property", "counts_as_active")
Progress = Callable[[str], None]


def _metrics(ck: Check, raw: Any, sc: Scenario, catalogue: dict[str, Any]) -> None:
    for i, m in enumerate(as_list(ck, "metrics", raw)):
        path = f"metrics[{i}]"
        m = table(ck, path, m)
        unknown(ck, path, m, METRIC_KEYS)
        key = m.get("key")
        if not isinstance(key, str) or not KEY_RE.match(key):
            ck.fail(f"{path}.key", "a metric key is lower-case letters, digits and _ (at most 40)")
            continue
        agg = m.get("aggregation", "sum")
        if agg not in AGGREGATIONS:
            ck.fail(f"{path}.aggregation", f"use one of {', '.join(AGGREGATIONS)}")
            continue
        entry = {"key": key, "name": m.get("name") or key, "unit": m.get("unit") or key, "aggregation": agg,
                 "property": m.get("property"), "counts_as_active": bool(m.get("counts_as_active", False))}
        have = catalogue.get(key)
        if have is not None:
            same = (have["aggregation"] == agg and have.get("property") == entry["property"]
                    and bool(have["counts_as_active"]) == entry["counts_as_active"])
            if not same:
                ck.fail(f"{path}.key", f"metric {key!r} already exists with another definition "
                                       f"(aggregation {have['aggregation']})")
            continue
        catalogue[key] = entry
        sc.metrics.append(entry)


class _Reader:
    """Reads a file and the files it includes into one Scenario; cross-file usage is resolved at the end."""

    def __init__(self, session: Session, today: date, progress: Progress | None):
        self.session, self.today, self.progress = session, today, progress
        self.seen = Seen(session)
        self.catalogue = {k: {"aggregation": m.aggregation, "property": m.property,
                              "counts_as_active": m.counts_as_active} for k, m in get_metrics(session).items()}
        self.problems: list[Problem] = []
        self.sc: Scenario | None = None
        self.pending: list[tuple[Check, dict[str, Any]]] = []  # files with top-level usage / events

    def _parse(self, path: Path, ck_from: Check | None, inc_path: str) -> tuple[str, Any] | None:
        name = path.name
        try:
            source = path.read_text(encoding="utf-8")
        except OSError as exc:
            why = f"cannot read the file {str(path)!r}: {exc.strerror or exc}"
            if ck_from is not None:  # a missing include: the including file and the line of the include
                ck_from.fail(inc_path, f"included file {why}")
            else:
                self.problems.append(Problem(name, "", why))
            return None
        try:
            return source, tomllib.loads(source)
        except tomllib.TOMLDecodeError as exc:
            m = re.search(r"line (\d+)", str(exc))
            self.problems.append(Problem(name, "", f"not valid TOML: {exc}", int(m.group(1)) if m else None))
            return None

    def _head(self, ck: Check, path: Path, data: dict[str, Any]) -> Scenario:
        head = table(ck, "scenario", data.get("scenario"))
        unknown(ck, "scenario", head, ("name", "seed", "start", "description"))
        if self.sc is None:
            password = data.get("password")
            if not isinstance(password, str) or len(password) < 8:
                ck.fail("password", "a scenario needs password = \"...\" (8+ characters) shared by its demo users")
                password = ""
            start = a_date(ck, "scenario.start", head.get("start"), self.today, default_start(self.today))
            self.sc = Scenario(str(head.get("name") or path.stem), self.today, start, password,
                               str(head.get("seed", "42")))
        return self.sc

    def read(self, path: Path, ck_from: Check | None = None, inc_path: str = "", depth: int = 0) -> None:
        parsed = self._parse(path, ck_from, inc_path)
        if parsed is None:
            return
        source, data = parsed
        ck = Check(path.name, source)
        if self.progress:
            self.progress(f"checking {path.name} ({len(source.splitlines()):,} lines)")
        unknown(ck, "", data, TOP_KEYS)
        sc = self._head(ck, path, data)
        sc.files.append(path.name)
        for i, inc in enumerate(as_list(ck, "include", data.get("include"))):
            if not isinstance(inc, str):
                ck.fail(f"include[{i}]", "an included file is a path relative to this file")
            elif depth > 4:
                ck.fail(f"include[{i}]", "includes nest too deeply")
            else:
                self.read(path.parent / inc, ck, f"include[{i}]", depth + 1)
        self._body(ck, data, sc)
        if data.get("usage") is not None or data.get("events") is not None:
            self.pending.append((ck, data))
        self.problems += ck.problems

    def _body(self, ck: Check, data: dict[str, Any], sc: Scenario) -> None:
        _metrics(ck, data.get("metrics"), sc, self.catalogue)
        platform = table(ck, "platform", data.get("platform"))
        unknown(ck, "platform", platform, ("statements",))
        if platform.get("statements") is not None:
            sc.platform_settings = settings(ck, "platform.statements", platform["statements"])
        metrics = set(self.catalogue)
        for i, a in enumerate(as_list(ck, "admins", data.get("admins"))):
            p = person(ck, f"admins[{i}]", a, self.seen, sc.password, None)
            if p:
                sc.admins.append(p)
        platform_codes = {p.code: p for p in sc.platform_plans}
        for i, raw in enumerate(as_list(ck, "platform_plans", data.get("platform_plans"))):
            pd = plan(ck, f"platform_plans[{i}]", raw, None, self.today, metrics, platform=True)
            if pd is None:
                if isinstance(raw, dict) and isinstance(raw.get("code"), str):
                    self.seen.broken_plans.add(("", raw["code"]))
                continue
            if pd.code in platform_codes:
                ck.fail(f"platform_plans[{i}].code", f"duplicate platform plan code {pd.code!r}")
            platform_codes[pd.code] = pd
            sc.platform_plans.append(pd)
        read_standard_cards(ck, data.get("rate_cards"), sc, metrics, table, as_list, unknown, a_date)
        for i, raw in enumerate(as_list(ck, "partners", data.get("partners"))):
            pd = partner(ck, f"partners[{i}]", raw, sc, self.seen, metrics, platform_codes)
            if pd is not None:
                sc.partners.append(pd)
                if self.progress:
                    self.progress(f"  checked {pd.name}: {len(pd.customers):,} customers, {len(pd.plans)} plans")

    def cross_file(self) -> None:
        """Top-level [[usage]] and [[events]]: usage for a customer defined in any file of the scenario."""
        assert self.sc is not None
        metrics = set(self.catalogue)
        for n, (ck, data) in enumerate(self.pending):
            before = len(ck.problems)
            for kind in ("usage", "events"):
                for i, raw in enumerate(as_list(ck, kind, data.get(kind))):
                    self._one_cross(ck, f"{kind}[{i}]", kind, raw, n, metrics)
            self.problems += ck.problems[before:]

    def _one_cross(self, ck: Check, path: str, kind: str, raw: Any, n: int, metrics: set[str]) -> None:
        sc = self.sc
        assert sc is not None
        item = dict(table(ck, path, raw))
        who = item.pop("partner", None), item.pop("customer", None)
        if not all(isinstance(x, str) for x in who):
            ck.fail(path, "name the customer: partner = \"…\", customer = \"…\" (defined in any file of the scenario)")
            return
        c = sc.customer(*who)  # type: ignore[arg-type]
        if c is None:
            ck.fail(f"{path}.customer", f"no customer {who[1]!r} of partner {who[0]!r} in this scenario")
            return
        if kind == "usage":
            g = generator(ck, path, item, sc, metrics, f"{sc.seed}|x{n}|{path}")
            if g is not None:
                c.usage.append(g)
        else:
            e = event(ck, path, item, sc, metrics)
            if e is not None:
                c.events.append(e)


def read_scenario(path: Path | str, session: Session, *, today: date | None = None,
                  progress: Progress | None = None) -> Scenario:
    """Read and check a scenario file and everything it includes. Raises ScenarioError with every
    problem (nothing is written by this function in any case)."""
    today = today or clock.today()
    reader = _Reader(session, today, progress)
    reader.read(Path(path))
    if reader.sc is not None:
        reader.cross_file()
    sc, problems = reader.sc, reader.problems
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
