"""Usage in a scenario: generators (checked here) and the deterministic usage they make.

A generator gives a volume per day (`daily`) or one event on `day` of each month (`monthly`), shaped by
compound `growth` per month, a `season` (a factor per calendar month: year-end peaks, campaigns), `weekdays`
(a factor per weekday, Monday first) and `noise`. The same file, seed and day of loading always make the same
events; with growth and noise 0 the quantities are exact (base × season × weekday factor), so a person can
compute a month by hand.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from seeds.scenario_checks import Check, a_date, dec, table, text, unknown, whole
from seeds.scenario_model import Event, Generator, Scenario, resolve_date

GEN_KEYS = ("metric", "daily", "monthly", "day", "growth", "noise", "start", "end", "weekdays_only", "decimals",
            "properties", "seed", "season", "weekdays")
EVENT_KEYS = ("metric", "quantity", "at", "properties")


def _metric(ck: Check, path: str, v: Any, metrics: set[str]) -> str | None:
    metric = text(ck, path, v)
    if metric and metric not in metrics:
        ck.fail(path, f"unknown metric {metric!r}")
        return None
    return metric


def _shape(ck: Check, path: str, g: dict[str, Any]) -> dict[str, Any]:
    shape: dict[str, Any] = {}
    season = table(ck, f"{path}.season", g.get("season"))
    if season:
        out = {}
        for k, v in season.items():
            if not str(k).isdigit() or not 1 <= int(k) <= 12:
                ck.fail(f"{path}.season.{k}", f"season keys are month numbers \"1\"–\"12\", got {k!r}")
                continue
            f = dec(ck, f"{path}.season.{k}", v)
            if f is not None:
                out[int(k)] = f
        shape["season"] = out
    wd = g.get("weekdays")
    if wd is not None:
        if not isinstance(wd, list) or len(wd) != 7:
            ck.fail(f"{path}.weekdays", "weekdays is a list of 7 factors, Monday first")
        else:
            factors = [dec(ck, f"{path}.weekdays[{i}]", v) for i, v in enumerate(wd)]
            if all(f is not None for f in factors):
                shape["weekdays"] = factors
    return shape


def generator(ck: Check, path: str, raw: Any, sc: Scenario, metrics: set[str], seed: str,
              end_default: date | None = None) -> Generator | None:
    g = table(ck, path, raw)
    unknown(ck, path, g, GEN_KEYS)
    metric = _metric(ck, f"{path}.metric", g.get("metric"), metrics)
    daily = dec(ck, f"{path}.daily", g.get("daily"))
    monthly = dec(ck, f"{path}.monthly", g.get("monthly"))
    if ("daily" in g) == ("monthly" in g):
        ck.fail(path, "give exactly one of 'daily' (volume per day) or 'monthly' (volume per month)")
    day = whole(ck, f"{path}.day", g.get("day"), 1, 28, 1)
    growth = dec(ck, f"{path}.growth", g.get("growth"), minimum=Decimal("-0.5"), default=Decimal(0))
    noise = dec(ck, f"{path}.noise", g.get("noise"), default=Decimal(0))
    if noise is not None and noise > 1:
        ck.fail(f"{path}.noise", f"noise is a share of the volume between 0 and 1, got {g.get('noise')!r}")
    start = a_date(ck, f"{path}.start", g.get("start"), sc.today, sc.start)
    end = a_date(ck, f"{path}.end", g.get("end"), sc.today, end_default or sc.today)
    if end > sc.today:
        ck.fail(f"{path}.end", f"usage cannot lie in the future (ends {end}, today is {sc.today})")
    if end < start:
        ck.fail(f"{path}.end", f"ends {end} before it starts {start}")
    decimals = whole(ck, f"{path}.decimals", g.get("decimals"), 0, 6, 0)
    props = table(ck, f"{path}.properties", g.get("properties"))
    weekdays = g.get("weekdays_only", False)
    if not isinstance(weekdays, bool):
        ck.fail(f"{path}.weekdays_only", "must be true or false")
    shape = _shape(ck, path, g)
    if metric is None or (daily is None) == (monthly is None):
        return None
    return Generator(metric, daily, monthly, day, growth or Decimal(0), noise or Decimal(0), start, end,
                     bool(weekdays), decimals, props, str(g.get("seed", seed)), shape, ck.src(path))


def event(ck: Check, path: str, raw: Any, sc: Scenario, metrics: set[str]) -> Event | None:
    e = table(ck, path, raw)
    unknown(ck, path, e, EVENT_KEYS)
    metric = _metric(ck, f"{path}.metric", e.get("metric"), metrics)
    qty = dec(ck, f"{path}.quantity", e.get("quantity"), required=True)
    raw_at = e.get("at")
    at: datetime | None = None
    if raw_at is None:
        ck.fail(f"{path}.at", "is required (a date such as 'month-1m+4d' or a date-time)")
    elif isinstance(raw_at, datetime):
        at = raw_at
    else:
        try:
            d = resolve_date(raw_at, sc.today)
            at = datetime(d.year, d.month, d.day)
        except ValueError as exc:
            ck.fail(f"{path}.at", str(exc))
    if at is not None and at.date() > sc.today:
        ck.fail(f"{path}.at", f"usage cannot lie in the future ({at.date()}, today is {sc.today})")
        at = None
    props = e.get("properties")
    if props is not None and not isinstance(props, dict):
        ck.fail(f"{path}.properties", "properties must be a table")
        props = None
    if metric is None or qty is None or at is None:
        return None
    return Event(metric, qty, at, props)


# ---------------------------------------------------------------- the generator


def _months_between(start: date, day: date) -> float:
    return (day - start).days / 30.4375


def _factor(g: Generator, day: date) -> Decimal:
    f = Decimal(1)
    season = g.shape.get("season")
    if season:
        f *= season.get(day.month, Decimal(1))
    wd = g.shape.get("weekdays")
    if wd and g.daily is not None:
        f *= wd[day.weekday()]
    return f


def _quantity(g: Generator, rng: random.Random, base: Decimal, day: date) -> Decimal:
    """base × season × weekday × (1 + growth)^months × noise, rounded half up to `decimals`. Exact when growth
    and noise are 0, so a person can compute it from the file."""
    noise = rng.gauss(1.0, float(g.noise)) if g.noise else 1.0
    shaped = base * _factor(g, day)
    if not g.growth and not g.noise:
        q = shaped
    else:
        months = _months_between(g.start, day)
        q = Decimal(repr(float(shaped) * (1.0 + float(g.growth)) ** months * max(0.0, noise)))
    return q.quantize(Decimal(1).scaleb(-g.decimals), rounding=ROUND_HALF_UP)


def generate(g: Generator) -> Iterator[tuple[date, Decimal]]:
    """(day, quantity) pairs of one generator, deterministic for its seed and dates. Days without usage
    (weekends when weekdays_only, a quantity that rounds to 0) are left out."""
    rng = random.Random(g.seed)
    if g.daily is not None:
        day = g.start
        while day <= g.end:
            if not (g.weekdays_only and day.weekday() >= 5):
                q = _quantity(g, rng, g.daily, day)
                if q > 0:
                    yield day, q
            day += timedelta(days=1)
        return
    assert g.monthly is not None
    y, m = g.start.year, g.start.month
    while True:
        day = date(y, m, g.day)
        if day > g.end:
            return
        if day >= g.start:
            q = _quantity(g, rng, g.monthly, day)
            if q > 0:
                yield day, q
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)


def at_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=UTC)


def generator_events(gens: list[Generator], events: list[Event], account_id: int,
                     prefix: str = "") -> list[dict[str, Any]]:
    """Every usage event of generators and single events, as core.usage.ingest.record_events takes them."""
    out: list[dict[str, Any]] = []
    for j, g in enumerate(gens):
        for day, q in generate(g):
            out.append({"account_id": account_id, "metric": g.metric, "quantity": q, "occurred_at": at_midnight(day),
                        "event_id": f"sc-{prefix}g{j}-{day:%Y%m%d}", "properties": dict(g.properties) or None})
    for i, e in enumerate(events):
        at = e.at if e.at.tzinfo else e.at.replace(tzinfo=UTC)
        out.append({"account_id": account_id, "metric": e.metric, "quantity": e.quantity, "occurred_at": at,
                    "event_id": f"sc-{prefix}e{i}", "properties": e.properties})
    return out
