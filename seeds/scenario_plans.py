"""Plans in a scenario file: charges, fees, plan-level discounts, and later price versions.

A plan's problems come from ``core.pricing.validate_plan`` with an inner path (``charges[0].tiers[1].unit_price``);
they are reported at the line of that very value. A later price version is written as the changes against
the version before it, in the override syntax of docs/pricing.md::

    [[partners.plans.versions]]
    from = "month-3m"
    set = { "charges.pages.tiers.1.unit_price" = "0.03", "fees.base.amount" = "35" }
"""

from __future__ import annotations

from datetime import date
from typing import Any

from core.pricing import PlanSpec, PlanValidationError, apply_overrides, validate_plan
from seeds.scenario_checks import Check, a_date, as_list, plain, table, text, unknown
from seeds.scenario_model import PlanDef, PlanVersionDef

PLAN_KEYS = ("code", "name", "description", "subject", "timing", "minimum_spend", "charges", "fees", "discounts",
             "versions")
VERSION_KEYS = ("from", "set", "note")


def _items(ck: Check, path: str, raw: Any, today: date, dated: bool) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(as_list(ck, path, raw)):
        item = plain(table(ck, f"{path}[{i}]", item))
        for tk in ("tiers", "overage_tiers"):
            if isinstance(item.get(tk), list):
                item[tk] = [{**t, "last": t.get("last")} if isinstance(t, dict) else t for t in item[tk]]
        if dated:
            for dk in ("start", "end"):
                if item.get(dk) is not None:
                    item[dk] = a_date(ck, f"{path}[{i}].{dk}", item[dk], today, today).isoformat()
        out.append(item)
    return out


def _subject(ck: Check, path: str, data: dict[str, Any], platform: bool) -> str:
    subject = data.get("subject", "account")
    if subject not in ("account", "partner"):
        ck.fail(f"{path}.subject", f"subject must be 'account' or 'partner', got {subject!r}")
    elif subject == "partner" and not platform:
        ck.fail(f"{path}.subject", "partner-level plans belong to the platform: define them under "
                                   "[[platform_plans]]")
    return subject


def plan(ck: Check, path: str, raw: Any, currency: str | None, today: date, metrics: set[str],
         *, platform: bool) -> PlanDef | None:
    """A checked plan, or None (its problems reported)."""
    data = table(ck, path, raw)
    unknown(ck, path, data, PLAN_KEYS + (("currency",) if platform else ()))
    code = text(ck, f"{path}.code", data.get("code"))
    name = text(ck, f"{path}.name", data.get("name"))
    subject = _subject(ck, path, data, platform)
    if platform:
        currency = text(ck, f"{path}.currency", data.get("currency"))
    spec_dict = {"currency": currency, "timing": data.get("timing", "in_arrears"),
                 "charges": _items(ck, f"{path}.charges", data.get("charges"), today, False),
                 "fees": _items(ck, f"{path}.fees", data.get("fees"), today, True),
                 "discounts": _items(ck, f"{path}.discounts", data.get("discounts"), today, True),
                 "minimum_spend": plain(data.get("minimum_spend"))}
    try:
        spec = validate_plan(spec_dict, known_metrics=metrics, expected_currency=currency)
    except PlanValidationError as exc:
        for p, msg in exc.problems:
            ck.fail(f"{path}.{p}" if p else path, msg)
        return None
    versions = _versions(ck, path, data.get("versions"), spec, today, metrics)
    if code is None or name is None or currency is None or versions is None:
        return None
    return PlanDef(code, name, currency, subject, data.get("description"), spec, versions, ck.src(path))


def _versions(ck: Check, path: str, raw: Any, spec: PlanSpec, today: date,
              metrics: set[str]) -> list[PlanVersionDef] | None:
    out: list[PlanVersionDef] = []
    ok = True
    prev, prev_from = spec, None
    for i, v in enumerate(as_list(ck, f"{path}.versions", raw)):
        vp = f"{path}.versions[{i}]"
        v = table(ck, vp, v)
        unknown(ck, vp, v, VERSION_KEYS)
        if v.get("from") is None:
            ck.fail(f"{vp}.from", "a price version needs the date it takes effect ('from')")
            ok = False
            continue
        eff = a_date(ck, f"{vp}.from", v.get("from"), today, today)
        if prev_from is not None and eff <= prev_from:
            ck.fail(f"{vp}.from", f"versions are in date order: {eff} is not after the previous one ({prev_from})")
            ok = False
        changes = {str(k): (None if x is None else str(plain(x))) for k, x in table(ck, f"{vp}.set", v.get("set")).items()}
        if not changes:
            ck.fail(f"{vp}.set", "a price version changes something: set = { \"fees.base.amount\" = \"35\" }")
            ok = False
            continue
        try:
            prev = apply_overrides(prev, changes, known_metrics=metrics)
        except PlanValidationError as exc:
            override_problems(ck, f"{vp}.set", exc)
            ok = False
            continue
        prev_from = eff
        out.append(PlanVersionDef(eff, prev, v.get("note")))
    return out if ok else None


def override_problems(ck: Check, path: str, exc: PlanValidationError) -> None:
    """Problems of an override table (or a version's `set`), each at the line of its key."""
    for p, msg in exc.problems:
        if p.startswith("override"):  # the result is invalid as a whole: point at the table
            ck.fail(path, f"{p}: {msg}")
        else:
            ck.fail(f"{path}.{p}", msg)
