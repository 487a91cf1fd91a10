"""Stored plans keep working unchanged under the charge-model registry (issue 13).

Every plan of the demo scenarios (seeds/scenarios/*.toml) is loaded through the old code path (a frozen copy of
core/pricing before the registry: tests/pricing/legacy_engine) and the new one; both must store it identically
(plan_to_dict), rate it identically (every line: amount, label, explanation in every language) at quantities
around every tier bound, and accept the same customer overrides with the same result.
"""

from __future__ import annotations

import tomllib
from datetime import date
from decimal import Decimal as D
from pathlib import Path

import pytest

import core.pricing as new
from seeds.scenario_format import _plain
from tests.pricing import legacy_engine as old

SCENARIOS = Path(__file__).resolve().parents[2] / "seeds" / "scenarios"
START, END = date(2024, 4, 1), date(2024, 4, 30)


def _plan_dicts() -> list[tuple[str, dict]]:
    out = []
    for path in sorted(SCENARIOS.glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        plans = [(p, p.get("currency")) for p in data.get("platform_plans", [])]
        for partner in data.get("partners", []):
            plans += [(p, partner.get("currency", "EUR")) for p in partner.get("plans", [])]
        for raw, currency in plans:
            charges = []
            for c in raw.get("charges", []):
                c = _plain(c)
                for tk in ("tiers", "overage_tiers"):
                    if isinstance(c.get(tk), list):
                        c[tk] = [{**t, "last": t.get("last")} for t in c[tk]]
                charges.append(c)
            fees = [_plain(f) for f in raw.get("fees", []) if "start" not in f and "end" not in f]
            out.append((f"{path.stem}:{raw['code']}", {
                "currency": currency, "timing": raw.get("timing", "in_arrears"), "charges": charges,
                "fees": fees, "minimum_spend": _plain(raw.get("minimum_spend"))}))
    return out


# what the demo scenarios do not use: package, credits, wallet settlement, charge minimum, discounts
EXTRA = ("extra:all-options", {
    "currency": "EUR", "timing": "in_advance", "minimum_spend": "300", "fees": [],
    "charges": [
        {"id": "sms", "metric": "messages", "model": "package", "package_size": "1000", "unit_price": "9.50",
         "free_units": "200", "min_amount": "20"},
        {"id": "pages", "metric": "pages", "model": "graduated", "credit_rate": "1.5",
         "tiers": [{"first": 0, "last": 1000, "unit_price": "0.05", "flat_fee": "3"},
                   {"first": 1001, "last": None, "unit_price": "0.04"}]},
        {"id": "docs", "metric": "documents", "model": "per_unit", "settle": "wallet", "credit_rate": "2",
         "unit_price": "0.1"},
        {"id": "api", "metric": "requests", "model": "threshold", "threshold": "1000", "threshold_price": "0.002"},
    ],
    "discounts": [{"id": "loyal", "percent": "12.5", "applies_to": "usage"}],
})
PLANS = [*_plan_dicts(), EXTRA]


def test_the_plans_cover_every_original_model():
    models = {c["model"] for _, d in PLANS for c in d["charges"]}
    assert len(PLANS) >= 10
    assert {"per_unit", "graduated", "volume", "package", "allowance", "threshold"} <= models


def _quantities(d: dict) -> list[D]:
    qs = {D(0), D(1), D("0.5"), D(999), D(1000), D(1001), D(12345), D("250000.125")}
    for c in d["charges"]:
        for key in ("threshold", "included_units", "package_size", "free_units"):
            if c.get(key) is not None:
                v = D(str(c[key]))
                qs |= {v - 1, v, v + 1, v * 3 + D("0.3")}
        for t in (*(c.get("tiers") or []), *(c.get("overage_tiers") or [])):
            for b in (t["first"], t.get("last")):
                if b is not None:
                    qs |= {D(b) - 1, D(b), D(b) + 1}
    return sorted(q for q in qs if q >= 0)


def _lines(rating) -> list[tuple]:
    return [(ln.kind, ln.label, ln.amount, ln.explanation, ln.quantity, ln.metric, ln.charge_id, ln.fee_id,
             ln.credits, ln.settle, tuple(old.explain(ln, loc) for loc in old.LOCALES),
             tuple(old.explain_label(ln, loc) for loc in old.LOCALES)) for ln in rating.lines]


@pytest.mark.parametrize("name,d", PLANS, ids=[n for n, _ in PLANS])
def test_old_and_new_code_store_and_rate_every_demo_plan_identically(name, d):
    old_spec, new_spec = old.plan_from_dict(d), new.plan_from_dict(d)
    assert new.plan_to_dict(new_spec) == old.plan_to_dict(old_spec)
    assert new.plan_from_dict(old.plan_to_dict(old_spec)) == new_spec
    metrics = sorted(new_spec.metrics)
    for q in _quantities(d):
        usage = {m: q for m in metrics}
        a = old.rate_plan(old_spec, usage, START, END)
        b = new.rate_plan(new_spec, usage, START, END)
        assert b.total == a.total, (name, q)
        assert _lines(b) == _lines(a), (name, q)
        assert [(x.message, x.threshold) for x in b.alerts] == [(x.message, x.threshold) for x in a.alerts]


def _overrides(d: dict) -> dict[str, str]:
    out: dict[str, str] = {}
    for c in d["charges"]:
        for key in ("unit_price", "overage_price", "included_units", "threshold_price"):
            if c.get(key) is not None:
                out[f"charges.{c['id']}.{key}"] = "0.0123"
        if c.get("tiers"):
            out[f"charges.{c['id']}.tiers.0.unit_price"] = "0.07"
    for x in d.get("discounts", []):
        out[f"discounts.{x['id']}.percent"] = "15"
    for f in d["fees"]:
        out[f"fees.{f['id']}.amount"] = "12.34"
    out["minimum_spend"] = "55"
    return out


@pytest.mark.parametrize("name,d", PLANS, ids=[n for n, _ in PLANS])
def test_overrides_give_the_same_plan_under_old_and_new_code(name, d):
    ov = _overrides(d)
    a = old.apply_overrides(old.plan_from_dict(d), ov)
    b = new.apply_overrides(new.plan_from_dict(d), ov)
    assert new.plan_to_dict(b) == old.plan_to_dict(a)
    usage = {m: D(4321) for m in b.metrics}
    assert _lines(new.rate_plan(b, usage, START, END)) == _lines(old.rate_plan(a, usage, START, END))


def test_bad_overrides_are_refused_with_the_same_problems():
    name, d = next((n, x) for n, x in PLANS if any(c.get("tiers") for c in x["charges"]))
    cid = next(c["id"] for c in d["charges"] if c.get("tiers"))
    bad = {f"charges.{cid}.tiers.9.unit_price": "1", "charges.nope.unit_price": "1", "fees.x.amount": "1"}
    with pytest.raises(old.PlanValidationError) as a:
        old.apply_overrides(old.plan_from_dict(d), bad)
    with pytest.raises(new.PlanValidationError) as b:
        new.apply_overrides(new.plan_from_dict(d), bad)
    assert b.value.problems == a.value.problems
