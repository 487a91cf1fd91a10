"""Loading a checked scenario through the core services, as its history happened (seeds.scenario_history).

Set-up (metrics, admins, partners with staff, card, wallet and statement settings, plans) happens at the
scenario's start; then every dated step runs in date order: accounts opened, plan assignments and changes,
price versions, billing modes, wallet events, usage (chronological batches of one metric, cut at every dated
step of the partner so a top-up or a mode change lands between the right draws), statement history and
deletions. A failure is a ScenarioError with the file, line and path of what was being loaded.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts import accounts
from core.accounts.accounts import house_partner
from core.accounts.actor import ROLE_LABELS, SYSTEM, Actor
from core.billing import modes as billing_modes
from core.billing import payments, plans, wallet
from core.billing.modes import UsageBlocked
from core.pricing.money import format_quantity
from core.statements import lifecycle as statements
from core.statements import planning
from core.statements import settings as statement_settings
from core.usage import ingest as usage
from core.usage import metrics
from db.models.statements import Statement
from seeds.scenario_history import CHANGE, CLOSE, OPEN, STATEMENTS, USAGE, WALLET, Timeline, restamp
from seeds.scenario_model import CustomerDef, PartnerDef, PlanDef, Scenario, StatementAction, WalletAction
from seeds.scenario_ratecards import load_partner_card, load_standard_cards
from seeds.scenario_usage import generator_events

BATCH = 5000
SOURCE = "scenario"
# progress(partner name, partner number (1-based), partners, usage events written, usage events of the partner)
Progress = Callable[[str, int, int, int, int], None]
Notes = Callable[[str], None]


@dataclass
class LoadSummary:
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    partners: list[str] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    password: str = ""

    def text(self) -> str:
        lines = ["Created: " + ", ".join(f"{v:,} {k}" for k, v in self.counts.items() if v)]
        lines += [f"  {p}" for p in self.partners]
        if self.logins:
            lines.append(f"\nDemo logins (password for all: {self.password}):")
            lines += [f"  {email:38s} {what}" for email, what in self.logins]
        return "\n".join(lines)


def customer_events(c: CustomerDef, account_id: int) -> list[dict[str, Any]]:
    """Every usage event of one customer as core.usage.ingest.record_events takes it."""
    return generator_events(c.usage, c.events, account_id)


def batches(events: list[dict[str, Any]], cuts: list[date] | None = None,
            size: int = BATCH) -> Iterator[list[dict[str, Any]]]:
    """Chronological batches of one month and one metric each, also cut at the days in `cuts` (the
    partner's dated steps): the ingestion hooks re-rate only the accounts the metric concerns, and
    partner-paid usage is settled in date order around top-ups and mode changes."""
    cuts = sorted(cuts or [])
    groups: dict[tuple[date, int, str], list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        day = e["occurred_at"].date()
        groups[(day.replace(day=1), bisect.bisect_right(cuts, day), e["metric"])].append(e)
    for key in sorted(groups):
        rows = sorted(groups[key], key=lambda e: (e["occurred_at"], e["account_id"], e["event_id"]))
        for i in range(0, len(rows), size):
            yield rows[i:i + size]


class Loader:
    def __init__(self, session: Session, sc: Scenario, actor: Actor, progress: Progress | None,
                 notes: Notes | None = None):
        self.session, self.sc, self.actor, self.progress, self.notes = session, sc, actor, progress, notes
        self.n = 0  # the partner being loaded (1-based), its usage events and how many are written
        self.events = self.written = 0
        self.s = LoadSummary(password=sc.password)
        self.tl = Timeline()
        self.house_id = house_partner(session).id
        self.platform: dict[str, int] = {}
        self.ids: dict[str, int] = {}  # customer key -> account id, once its account is opened

    def say(self, msg: str) -> None:
        if self.notes:
            self.notes(msg)

    def tick(self, name: str) -> None:
        if self.progress:
            self.progress(name, self.n, len(self.sc.partners), self.written, self.events)

    # ---------------------------------------------------------------- set-up
    def plans(self, owner_id: int, defs: list[PlanDef]) -> dict[str, int]:
        out = {}
        for pd in defs:
            plan = plans.create_plan(self.session, SYSTEM, name=pd.name, code=pd.code, currency=pd.currency,
                                     spec=pd.spec, partner_id=owner_id, description=pd.description,
                                     subject=pd.subject, effective_from=self.sc.start)
            out[pd.code] = plan.id
            self.s.counts["plans"] += 1
            for v in pd.versions:
                self.tl.add(v.effective_from, CHANGE, _call(plans.new_version, self.session, SYSTEM, owner_id,
                                                            plan.id, spec=v.spec, effective_from=v.effective_from,
                                                            note=v.note), pd.src, "a price version")
                self.s.counts["price versions"] += 1
        return out

    def save_settings(self, pid: int, values: dict[str, Any]) -> None:
        statement_settings.save_settings(self.session, SYSTEM, pid, **{("labels_" if k == "labels" else k): v
                                                                       for k, v in values.items()})

    def wallet(self, pid: int, p: PartnerDef) -> None:
        if p.card is not None:
            payments.add_card(self.session, SYSTEM, pid, number=p.card["number"], exp_month=p.card["exp_month"],
                              exp_year=p.card["exp_year"], label=p.card.get("label"))
            self.s.counts["payment cards"] += 1
        if p.wallet is None:
            return
        w = p.wallet
        wallet.get_or_create_wallet(self.session, SYSTEM, pid)
        if w.get("buy"):
            self.buy(pid, p, w["buy"], "wallet.buy", f"scenario:{pid}:{self.sc.today}")
        wallet.configure(self.session, SYSTEM, pid, low_balance_threshold=w.get("low_balance_threshold"),
                         auto_buy_credits=w.get("auto_buy_credits"),
                         overdraft_policy=w.get("overdraft_policy", "refuse"),
                         overdraft_limit=w.get("overdraft_limit") or 0)
        self.s.counts["wallets"] += 1

    def buy(self, pid: int, p: PartnerDef, credits: Any, sub: str, key: str) -> int:
        """A purchase, refused with its place (not a foreign-key violation) when the demo gateway would
        decline it: above its limit, or a card ending in 0002."""
        q = wallet.price_for(self.session, pid, credits)
        gw = payments.get_gateway()
        limit = getattr(gw, "limit", None)
        if limit is not None and q.amount > limit:
            raise p.src.error(sub, f"buying {credits} credits costs {q.amount} {q.currency}, above the demo "
                                   f"payment gateway's limit of {limit} {q.currency} per charge "
                                   "(RC_DEMO_GATEWAY_LIMIT): buy less at a time")
        if p.card and str(p.card["number"]).endswith("0002"):
            raise p.src.error(sub, "the demo gateway declines every charge to a card ending in 0002")
        self.s.counts["credit purchases"] += 1
        # the partner was created in this same transaction: the demo gateway may charge in it too
        return wallet.buy_credits(self.session, SYSTEM, pid, credits, idempotency_key=key, same_transaction=True)

    def partner(self, p: PartnerDef) -> None:
        session, actor = self.session, self.actor
        partner = accounts.create_partner(session, actor, name=p.name, contact_email=p.contact_email,
                                          currency=p.currency, country=p.country)
        pid = partner.id
        self.s.counts["partners"] += 1
        for st in p.staff:
            accounts.create_staff(session, actor, partner_id=pid, email=st["email"], display_name=st["name"],
                                  password=self.sc.password)
            self.s.counts["staff"] += 1
            self.s.logins.append((st["email"], f"Partner staff, {p.name}"))
        if p.settings:
            self.save_settings(pid, p.settings)
        self.wallet(pid, p)
        own = self.plans(pid, p.plans)
        if p.partner_plan:
            plans.assign_partner_plan(session, actor, pid, plan_id=self.platform[p.partner_plan],
                                      effective_from=p.partner_plan_from)
            self.s.counts["plan assignments"] += 1
        restamp(session, _stamp(p.created or self.sc.start, 7), p.created or self.sc.start)
        for c in p.customers:
            self.customer(pid, c, own)
        if p.rate_card:  # the partner's negotiated prices, from their date in the history
            self.tl.add(p.rate_card["from"], CHANGE, _call(load_partner_card, self.session, pid, p.rate_card,
                                                           self.actor), replace(p.src, path=p.src.at("rate_card")),
                        "the partner's rate card")
            self.s.counts["rate cards"] += 1
        self.wallet_history(pid, p)
        self.statement_history(pid, p)
        self.usage(pid, p)
        self.tick(p.name)
        self.tl.run(session)
        self.tl = Timeline()
        self.tick(p.name)

    # ---------------------------------------------------------------- customers
    def customer(self, pid: int, c: CustomerDef, own: dict[str, int]) -> None:
        """The account opens on its creation date (default: its first plan, mode or usage); its plan and mode
        changes and its deletion are steps of the history too."""
        opened = c.created or min([a.effective_from for a in c.plans] + [m.effective_from for m in c.modes]
                                  + [g.start for g in c.usage] + [self.sc.start])
        self.tl.add(opened, OPEN, lambda: self._open(pid, c), c.src, "opening the account")
        for a in c.plans:
            plan_id, owner = ((self.platform[a.plan.split(":", 1)[1]], self.house_id) if a.owner == "platform"
                              else (own[a.plan], pid))
            self.tl.add(a.effective_from, CHANGE, _later(plans.assign_plan, self, c, self.session, SYSTEM, pid,
                                                         plan_id=plan_id, effective_from=a.effective_from,
                                                         overrides=a.overrides or None, plan_partner_id=owner),
                        a.src, "the plan assignment")
            self.s.counts["plan assignments"] += 1
        for m in c.modes:
            # set at its own date in the history: usage before it is already settled by the mode before
            self.tl.add(m.effective_from, CHANGE, _later(billing_modes.set_mode, self, c, self.session, SYSTEM, pid,
                                                         mode=m.mode, effective_from=m.effective_from,
                                                         on_decline=m.on_decline, today=m.effective_from),
                        m.src, "the billing mode")
            self.s.counts["billing modes"] += 1
        if c.deleted:
            self.tl.add(c.deleted, CLOSE, _later(accounts.delete_account, self, c, self.session, SYSTEM, pid), c.src,
                        "deleting the account")
            self.s.counts["deleted accounts"] += 1

    def _open(self, pid: int, c: CustomerDef) -> None:
        acc = accounts.create_account(self.session, SYSTEM, partner_id=pid, **c.fields)
        self.ids[c.key] = acc.id
        for u in c.users:
            accounts.create_user(self.session, SYSTEM, partner_id=pid, account_id=acc.id, email=u["email"],
                                 display_name=u["name"], role=u["role"], password=self.sc.password)
            self.s.counts["users"] += 1
            self.s.logins.append((u["email"], f"{ROLE_LABELS[u['role']]}, {acc.name}"))
        self.s.counts["customer accounts"] += 1

    # ---------------------------------------------------------------- wallet and statement history
    def wallet_history(self, pid: int, p: PartnerDef) -> None:
        bought: dict[int, int] = {}

        def run(i: int, a: WalletAction) -> None:
            session = self.session
            if a.kind == "top_up":
                bought[i] = self.buy(pid, p, a.credits, "top_up", f"scenario:{pid}:history:{i}")
            elif a.kind == "adjust":
                wallet.adjust(session, SYSTEM, pid, a.credits, a.reason or "")
            elif a.kind == "refund":
                of = bought.get(a.of) if a.of is not None and a.of >= 0 else self._initial_purchase(pid)
                if of is None:
                    raise a.src.error("of", "no such purchase to refund")
                wallet.refund(session, SYSTEM, pid, of, a.credits, a.reason or "")
            else:
                wallet.expire(session, SYSTEM, pid, a.credits, a.reason or "Credits expired")
            self.s.counts["wallet events"] += 1

        for i, a in enumerate(p.wallet_history):
            self.tl.add(a.on, WALLET, (lambda i=i, a=a: run(i, a)), a.src, f"the wallet {a.kind.replace('_', '-')}")

    def _initial_purchase(self, pid: int) -> int | None:
        rows = wallet.list_ledger(self.session, SYSTEM, pid, kind="purchase")
        return min((r.id for r in rows), default=None)

    def statement_history(self, pid: int, p: PartnerDef) -> None:
        names = {c.fields["name"].lower(): c.key for c in p.customers}
        for a in p.statement_history:
            self.tl.add(a.on, STATEMENTS, (lambda a=a: self._statement(pid, a, names)), a.src,
                        f"the statement {a.action}")

    def _statement(self, pid: int, a: StatementAction, names: dict[str, str]) -> None:
        session = self.session
        if a.action in ("finalise", "regenerate"):  # as generate_month, issued on the step's day
            data = planning.MonthData(session, pid, a.month)
            for key in planning.plan_month(session, SYSTEM, pid, a.month, data):
                statements.generate(session, SYSTEM, key, finalise=True, data=data, today=a.on)
            self.s.counts["statement events"] += 1
            return
        acc = self.ids.get(names.get((a.customer or "").lower(), ""))
        if acc is None:
            raise a.src.error(a.action, f"no customer {a.customer!r} of this partner")
        st = session.scalar(select(Statement).where(
            Statement.partner_id == pid, Statement.account_id == acc, Statement.period_start == a.month,
            Statement.kind == "statement", Statement.status == "final").order_by(Statement.id.desc()).limit(1))
        if st is None:
            raise a.src.error(a.action, f"{a.customer} has no final statement for {a.month:%Y-%m} to "
                                        f"{a.action} (finalise it first)")
        if a.action == "void":
            statements.void(session, SYSTEM, pid, st.id, a.reason or "")
        else:
            statements.create_credit_note(session, SYSTEM, pid, st.id, a.reason or "", today=a.on)
        self.s.counts["statement events"] += 1

    # ---------------------------------------------------------------- usage
    def usage(self, pid: int, p: PartnerDef) -> None:
        """The partner's usage as steps of the history: chronological batches, cut at its dated steps. The
        events are made when the first batch runs (the accounts exist by then)."""
        cuts = sorted({m.effective_from for c in p.customers for m in c.modes[1:]}
                      | {a.on for a in p.wallet_history} | {c.deleted for c in p.customers if c.deleted})
        events: list[dict[str, Any]] = []
        for c in p.customers:
            for e in customer_events(c, 0):
                e["account_id"] = c.key  # resolved to the account id when the batch runs
                events.append(e)
        n = self.events = len(events)
        self.written = 0
        for batch in batches(events, cuts):
            last = batch[-1]["occurred_at"]
            self.tl.add(batch[0]["occurred_at"].date(), USAGE, (lambda b=batch: self._record(pid, b, p)),
                        p.src, "usage", at=datetime.combine(last.date(), time(20), tzinfo=UTC))
        self.s.partners.append(f"{p.name} ({p.currency}): {len(p.staff)} staff, {len(p.customers)} customers, "
                               f"{len(p.plans)} plans, {n:,} usage events")

    def _record(self, pid: int, batch: list[dict[str, Any]], p: PartnerDef) -> None:
        by_key = {c.key: c for c in p.customers}
        rows = [{**e, "account_id": self.ids[e["account_id"]]} for e in batch]
        try:
            res = usage.record_events(self.session, self.actor, pid, rows, default_source=SOURCE)
        except UsageBlocked as exc:
            day = batch[0]["occurred_at"].date()
            c = _paying_customer(batch, by_key, day)
            draw = exc.result.draw
            why = (f"the wallet lacks {format_quantity(draw.shortfall)} credits (balance "
                   f"{format_quantity(draw.balance)}, {format_quantity(draw.credits)} needed)." if draw is not None
                   else str(exc))
            raise c.src.error("usage", f"the usage of {day:%Y-%m} ({batch[0]['metric']}) was refused: {why} "
                                       "Buy more credits (wallet.buy, or a wallet_history top_up before it), or "
                                       "set wallet.auto_buy_credits, or allow an overdraft.") from None
        self.s.counts["usage events"] += res.inserted
        self.written += len(batch)
        self.tick(p.name)

    def run(self) -> LoadSummary:
        session, actor = self.session, self.actor
        for m in self.sc.metrics:
            metrics.add_metric(session, actor, **m)
            self.s.counts["metrics"] += 1
        for a in self.sc.admins:
            accounts.create_admin(session, actor, email=a["email"], display_name=a["name"], password=self.sc.password)
            self.s.counts["admins"] += 1
            self.s.logins.append((a["email"], "Platform admin"))
        self.platform = self.plans(self.house_id, self.sc.platform_plans)
        if self.sc.platform_settings:
            self.save_settings(self.house_id, self.sc.platform_settings)
        self.s.counts["rate cards"] += load_standard_cards(session, self.sc, self.actor)
        restamp(session, _stamp(self.sc.start, 6), self.sc.start)
        self.tl.run(session)  # the platform plans' price versions
        self.tl = Timeline()
        for n, p in enumerate(self.sc.partners, start=1):
            self.n = n
            self.say(f"loading partner {self.n} of {len(self.sc.partners)}: {p.name} ({len(p.customers)} customers)")
            self.partner(p)
        return self.s


def _paying_customer(batch: list[dict[str, Any]], owner: dict[str, CustomerDef], day: date) -> CustomerDef:
    """The customer of a refused batch whose usage the partner pays for on that day (else the first)."""
    for e in batch:
        c = owner[e["account_id"]]
        modes = [m for m in c.modes if m.effective_from <= day]
        if modes and modes[-1].mode in ("partner_prepaid", "partner_on_demand"):
            return c
    return owner[batch[0]["account_id"]]


def _later(fn: Callable[..., Any], loader: Loader, c: CustomerDef, session: Session, actor: Actor, pid: int,
           **kwargs: Any) -> Callable[[], Any]:
    """A call about a customer's account, whose id is known once the account is opened."""
    return lambda: fn(session, actor, pid, loader.ids[c.key], **kwargs)


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[[], Any]:
    return lambda: fn(*args, **kwargs)


def _stamp(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour, 0), tzinfo=UTC)


def load_scenario(session: Session, sc: Scenario, actor: Actor = SYSTEM, progress: Progress | None = None,
                  notes: Notes | None = None) -> LoadSummary:
    """Write a checked scenario through the core services (caller owns the one transaction). `progress` is
    called before a partner's history and after each batch of its usage (the long part); `notes` hears
    what is being loaded."""
    return Loader(session, sc, actor, progress, notes).run()
