"""Customers in a scenario file: account fields, users, creation and deletion dates, the plan history
(plan changes with overrides), the billing-mode history, and usage; and `generate_customers` blocks.

    plan = "per-page"                 # one plan from plan_from (default: the scenario start), or a history:
    plans = [{ plan = "per-page", from = "month-12m" },
             { plan = "per-document", from = "month-5m", overrides = { "fees.base.amount" = "39" } }]
    modes = [{ mode = "customer_pays", from = "month-12m" }, { mode = "partner_prepaid", from = "month-4m+14d" }]
    created = "month-12m"             # the account's creation date (default: its first plan, mode or usage)
    deleted = "month-1m+19d"          # deleted on that day (its usage generators end the day before)
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from core.accounts.accounts import ACCOUNT_FIELDS, check_account_fields
from core.accounts.actor import CUSTOMER_ROLES
from core.errors import ValidationError
from core.pricing import PlanValidationError, apply_overrides
from db.models.wallet import BILLING_MODES, ON_DECLINE
from seeds.scenario_checks import Check, a_date, as_list, plain, table, unknown
from seeds.scenario_model import Assignment, CustomerDef, Generator, ModeDef, PartnerDef, PlanDef, Scenario
from seeds.scenario_people import Seen, person
from seeds.scenario_plans import override_problems
from seeds.scenario_usage import event, generator

HISTORY_KEYS = ("plan", "plan_from", "overrides", "mode", "on_decline", "mode_from", "plans", "modes", "created",
                "deleted")
CUSTOMER_KEYS = (*ACCOUNT_FIELDS, "users", "usage", "events", *HISTORY_KEYS)
GENERATED_KEYS = ("count", "name", "country", "currency", "first", "usage", *HISTORY_KEYS)


class Ctx:
    """What checking a customer needs to know: the scenario, the partner and the plans it may use."""

    def __init__(self, sc: Scenario, seen: Seen, metrics: set[str], partner: PartnerDef,
                 plans: dict[str, PlanDef], platform: dict[str, PlanDef]):
        self.sc, self.seen, self.metrics, self.partner = sc, seen, metrics, partner
        self.plans, self.platform = plans, platform

    def plan_def(self, ref: str) -> tuple[str, PlanDef | None, bool]:
        """(owner, plan, broken): broken = defined but with problems of its own (reported already)."""
        if ref.startswith("platform:"):
            code = ref.split(":", 1)[1]
            return "platform", self.platform.get(code), ("", code) in self.seen.broken_plans
        return "partner", self.plans.get(ref), (self.partner.name, ref) in self.seen.broken_plans


def _fields(ck: Check, path: str, c: dict[str, Any], partner: PartnerDef) -> dict[str, Any] | None:
    fields_in = {k: c[k] for k in ACCOUNT_FIELDS if k in c}
    fields_in.setdefault("currency", partner.currency)
    try:
        return check_account_fields(fields_in)
    except ValidationError as exc:
        for f, msg in exc.errors.items():
            ck.fail(f"{path}.{f}", msg)
        return None


def _assignment(ck: Check, path: str, ref: Any, eff: date, ov_raw: Any, ov_path: str, ctx: Ctx,
                currency: str | None) -> Assignment | None:
    if not isinstance(ref, str):
        ck.fail(path, f"plan must be a plan code, got {ref!r}")
        return None
    owner, pd, broken = ctx.plan_def(ref)
    if broken:
        return None  # its plan's own problems are reported already: no false "unknown plan"
    if pd is None:
        known = sorted(ctx.plans) + [f"platform:{k}" for k in ctx.platform]
        ck.fail(path, f"unknown plan {ref!r} (known: {', '.join(known) or 'none'})")
        return None
    if pd.subject != "account":
        ck.fail(path, f"plan {ref!r} prices partners, not customer accounts")
        return None
    if currency and pd.currency != currency:
        ck.fail(path, f"currency mismatch: plan {ref!r} is in {pd.currency} but the customer is billed in "
                      f"{currency}")
        return None
    overrides = {str(k): (None if v is None else str(plain(v))) for k, v in table(ck, ov_path, ov_raw).items()}
    for spec in [pd.spec] + [v.spec for v in pd.versions] if overrides else []:
        try:
            apply_overrides(spec, overrides, known_metrics=ctx.metrics)
        except PlanValidationError as exc:
            override_problems(ck, ov_path, exc)
            return None
    return Assignment(ref, owner, eff, overrides, ck.src(path))


def _plans(ck: Check, path: str, c: dict[str, Any], ctx: Ctx, currency: str | None) -> list[Assignment] | None:
    sc = ctx.sc
    if c.get("plans") is not None and c.get("plan") is not None:
        ck.fail(f"{path}.plans", "give either plan (with plan_from) or plans (a history), not both")
        return None
    if c.get("plan") is not None:
        a = _assignment(ck, f"{path}.plan", c["plan"], a_date(ck, f"{path}.plan_from", c.get("plan_from"), sc.today,
                        sc.start), c.get("overrides"), f"{path}.overrides", ctx, currency)
        return None if a is None else [a]
    out, ok = [], True
    for i, raw in enumerate(as_list(ck, f"{path}.plans", c.get("plans"))):
        hp = f"{path}.plans[{i}]"
        h = table(ck, hp, raw)
        unknown(ck, hp, h, ("plan", "from", "overrides"))
        a = _assignment(ck, f"{hp}.plan", h.get("plan"), a_date(ck, f"{hp}.from", h.get("from"), sc.today, sc.start),
                        h.get("overrides"), f"{hp}.overrides", ctx, currency)
        if a is None:
            ok = False
        elif out and a.effective_from <= out[-1].effective_from:
            ck.fail(f"{hp}.from", f"plan changes are in date order: {a.effective_from} is not after "
                                  f"{out[-1].effective_from}")
            ok = False
        else:
            out.append(a)
    return out if ok else None


def _mode(ck: Check, path: str, mode: Any, on_decline: Any, eff: date, partner: PartnerDef) -> ModeDef | None:
    if mode not in BILLING_MODES:
        ck.fail(f"{path}.mode" if not path.endswith(".mode") else path,
                f"bad mode {mode!r}: use one of {', '.join(BILLING_MODES)}")
        return None
    where = path if path.endswith(".mode") else f"{path}.mode"
    if on_decline is not None and (mode != "partner_on_demand" or on_decline not in ON_DECLINE):
        ck.fail(where.removesuffix(".mode") + ".on_decline",
                "on_decline is 'block' or 'flag' and only for mode partner_on_demand")
        return None
    if mode == "partner_prepaid" and partner.wallet is None:
        ck.fail(where, "mode partner_prepaid needs a [partners.wallet] for the partner")
        return None
    if mode == "partner_on_demand" and partner.card is None:
        ck.fail(where, "mode partner_on_demand needs a payment card for the partner ([partners.card] or a wallet)")
        return None
    return ModeDef(mode, eff, on_decline, ck.src(where))


def _modes(ck: Check, path: str, c: dict[str, Any], ctx: Ctx) -> list[ModeDef] | None:
    sc = ctx.sc
    if c.get("modes") is not None and c.get("mode") is not None:
        ck.fail(f"{path}.modes", "give either mode (with mode_from) or modes (a history), not both")
        return None
    if c.get("mode") is not None:
        m = _mode(ck, f"{path}.mode", c["mode"], c.get("on_decline"),
                  a_date(ck, f"{path}.mode_from", c.get("mode_from"), sc.today, sc.start), ctx.partner)
        return None if m is None else [m]
    if c.get("on_decline") is not None:
        ck.fail(f"{path}.on_decline", "on_decline is 'block' or 'flag' and only for mode partner_on_demand")
        return None
    out, ok = [], True
    for i, raw in enumerate(as_list(ck, f"{path}.modes", c.get("modes"))):
        hp = f"{path}.modes[{i}]"
        h = table(ck, hp, raw)
        unknown(ck, hp, h, ("mode", "from", "on_decline"))
        m = _mode(ck, hp, h.get("mode"), h.get("on_decline"),
                  a_date(ck, f"{hp}.from", h.get("from"), sc.today, sc.start), ctx.partner)
        if m is None:
            ok = False
        elif out and m.effective_from <= out[-1].effective_from:
            ck.fail(f"{hp}.from", f"mode changes are in date order: {m.effective_from} is not after "
                                  f"{out[-1].effective_from}")
            ok = False
        else:
            out.append(m)
    return out if ok else None


def _dates(ck: Check, path: str, c: dict[str, Any], sc: Scenario) -> tuple[date | None, date | None]:
    created = a_date(ck, f"{path}.created", c["created"], sc.today, sc.today) if "created" in c else None
    deleted = a_date(ck, f"{path}.deleted", c["deleted"], sc.today, sc.today) if "deleted" in c else None
    if created and created > sc.today:
        ck.fail(f"{path}.created", f"an account cannot be created in the future ({created}, today is {sc.today})")
    if deleted and (deleted > sc.today or (created and deleted < created)):
        ck.fail(f"{path}.deleted", f"deleted {deleted}: after its creation and not after today ({sc.today})")
    return created, deleted


def _usage(ck: Check, path: str, c: dict[str, Any], key: str, ctx: Ctx, deleted: date | None
           ) -> tuple[list[Generator], list, bool]:
    sc, ok = ctx.sc, True
    end = deleted - timedelta(days=1) if deleted else None
    usage = []
    for i, g in enumerate(as_list(ck, f"{path}.usage", c.get("usage"))):
        gen = generator(ck, f"{path}.usage[{i}]", g, sc, ctx.metrics, f"{sc.seed}|{key}|{i}", end)
        ok = ok and gen is not None
        if gen:
            if deleted and gen.end >= deleted:
                ck.fail(f"{path}.usage[{i}].end", f"no usage on or after the deletion ({deleted})")
                ok = False
            usage.append(gen)
    events = []
    for i, e in enumerate(as_list(ck, f"{path}.events", c.get("events"))):
        ev = event(ck, f"{path}.events[{i}]", e, sc, ctx.metrics)
        ok = ok and ev is not None
        if ev:
            events.append(ev)
    return usage, events, ok


def customer(ck: Check, path: str, c: dict[str, Any], key: str, ctx: Ctx, *,
             with_users: bool = True) -> CustomerDef | None:
    fields = _fields(ck, path, c, ctx.partner)
    users = [person(ck, f"{path}.users[{i}]", u, ctx.seen, ctx.sc.password, CUSTOMER_ROLES)
             for i, u in enumerate(as_list(ck, f"{path}.users", c.get("users")) if with_users else [])]
    plans = _plans(ck, path, c, ctx, (fields or {}).get("currency"))
    modes = _modes(ck, path, c, ctx)
    created, deleted = _dates(ck, path, c, ctx.sc)
    usage, events, ok = _usage(ck, path, c, key, ctx, deleted)
    if fields is None or None in users or plans is None or modes is None or not ok:
        return None
    return CustomerDef(key, fields, users, plans, modes, usage, events, created, deleted,  # type: ignore[arg-type]
                       ck.src(path))


def generated(ck: Check, path: str, raw: Any, ctx: Ctx) -> list[CustomerDef]:
    g = table(ck, path, raw)
    unknown(ck, path, g, GENERATED_KEYS)
    count = g.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 2000:
        ck.fail(f"{path}.count", f"count must be a whole number 1–2000, got {count!r}")
        return []
    first = g.get("first", 1)
    pattern = g.get("name")
    if not isinstance(pattern, str) or "{n" not in pattern:
        ck.fail(f"{path}.name", "name must be a pattern containing {n}, e.g. 'Client {n:03}'")
        return []
    try:
        names = [pattern.format(n=n) for n in range(first, first + count)]
    except (ValueError, KeyError, IndexError) as exc:
        ck.fail(f"{path}.name", f"bad name pattern {pattern!r}: {exc}")
        return []
    template = {k: v for k, v in g.items() if k not in ("count", "name", "first")}
    # check the template once, then copy it: one problem per block, not one per generated customer
    partner = ctx.partner.name
    base = customer(ck, path, {**template, "name": names[0]}, f"{partner}|{path}|0", ctx, with_users=False)
    if base is None:
        return []
    out = []
    for i, name in enumerate(names):
        key = f"{partner}|{path}|{i}"
        usage = [Generator(**{**u.__dict__, "seed": f"{ctx.sc.seed}|{key}|{j}"}) for j, u in enumerate(base.usage)]
        out.append(CustomerDef(key, {**base.fields, "name": name}, [], list(base.plans), list(base.modes), usage, [],
                               base.created, base.deleted, base.src))
    return out
