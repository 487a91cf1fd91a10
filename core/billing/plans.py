"""Price plans: the catalogue (create, version, archive), and assigning plans to customers with overrides.

A plan's prices live in immutable versions (`plan_versions.spec` = `core.pricing.plan_to_dict`): editing
a plan writes a new version that takes effect from a date, so a past period is always re-rated with the
prices it had. Every spec is validated with `core.pricing.validate_plan` (known metrics from the metric
catalogue, the plan's currency) before anything is written; problems come back as a ValidationError whose
keys are `spec.<path>` (e.g. `spec.charges[0].tiers[1]`), so a page can show each one with its path.

Who may do what: partner staff manage their own partner's plans and assign them (or the platform plans
offered to partners) to their own customers; platform admins manage everything, including the platform's
plans and partner-level plans (client-count bands) assigned to partners. Managers see their own
account's plan (`current_assignment`), nobody else does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from core import clock
from core.accounts import audit
from core.accounts.accounts import get_partner, house_partner
from core.accounts.actor import Actor
from core.accounts.permissions import authorize
from core.billing.platform_prices import check_platform_prices
from core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from core.pricing import (
    PlanSpec,
    PlanValidationError,
    apply_overrides,
    plan_from_dict,
    plan_to_dict,
    validate_plan,
)
from core.usage.metrics import metric_keys
from core.validation import Checker
from db.models import CustomerAccount, Partner
from db.models.billing import Plan, PlanAssignment, PlanVersion

CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,59}$")


# ---------------------------------------------------------------- helpers


def known_metrics(session: Session) -> set[str]:
    """Metric keys a plan may price: the metric catalogue's (an operator can add more)."""
    return metric_keys(session)


def spec_errors(exc: PlanValidationError, prefix: str = "spec") -> ValidationError:
    """PlanValidationError (path, message) pairs → ValidationError keyed `spec.<path>`."""
    errors: dict[str, str] = {}
    for path, msg in exc.problems:
        key = f"{prefix}.{path}" if path else prefix
        errors[key] = f"{errors[key]}; {msg}" if key in errors else msg
    return ValidationError(errors)


def _checked_spec(session: Session, spec: PlanSpec | Mapping[str, Any], currency: str | None) -> PlanSpec:
    """Validate a spec fully (metrics, currency, tiers, prices ...) or raise ValidationError."""
    if isinstance(spec, Mapping) and "currency" not in spec and currency:
        spec = {**spec, "currency": currency}
    try:
        return validate_plan(spec, known_metrics=known_metrics(session), expected_currency=currency)
    except PlanValidationError as exc:
        raise spec_errors(exc) from None


def _plan(session: Session, partner_id: int, plan_id: int) -> Plan:
    plan = session.get(Plan, (partner_id, plan_id))
    if plan is None:
        raise NotFound(f"Plan {plan_id} does not exist.")
    return plan


def versions_of(session: Session, partner_id: int, plan_id: int) -> list[PlanVersion]:
    """All versions of a plan, oldest first."""
    return list(session.scalars(select(PlanVersion).where(
        PlanVersion.partner_id == partner_id, PlanVersion.plan_id == plan_id).order_by(PlanVersion.version)))


def version_on(versions: list[PlanVersion], day: date) -> PlanVersion:
    """The version in force on `day`: the newest one effective on or before it. The first version also
    covers the days before its effective date (it has no predecessor)."""
    current = versions[0]
    for v in versions:
        if v.effective_from <= day:
            current = v
    return current


def _latest(session: Session, plan: Plan) -> PlanVersion:
    v = session.scalar(select(PlanVersion).where(
        PlanVersion.partner_id == plan.partner_id, PlanVersion.plan_id == plan.id)
        .order_by(PlanVersion.version.desc()).limit(1))
    if v is None:  # create_plan always writes version 1
        raise NotFound(f"Plan {plan.name} has no version.")
    return v


def _is_house(session: Session, partner_id: int) -> bool:
    return session.scalar(select(Partner.is_house).where(Partner.id == partner_id)) is True


def _may_use(session: Session, actor: Actor, plan: Plan) -> bool:
    """Staff may read (and assign) their own plans and the platform's active customer plans."""
    if actor.is_admin:
        return True
    if not actor.is_staff:
        return False
    if plan.partner_id == actor.partner_id:
        return True
    return not plan.archived and plan.subject == "account" and _is_house(session, plan.partner_id)


def _check_date(c: Checker, field: str, value: Any, label: str) -> date | None:
    if not isinstance(value, date):
        c.fail(field, f"{label} is required (a date).")
        return None
    return value


# ---------------------------------------------------------------- catalogue


@dataclass(frozen=True)
class PlanRow:
    partner_id: int
    id: int
    name: str
    code: str
    currency: str
    subject: str
    archived: bool
    owner: str  # "Platform" for the house partner's plans, else the partner's name
    version: int
    effective_from: date
    description: str | None


def create_plan(session: Session, actor: Actor, *, name: str, code: str, currency: str,
                spec: PlanSpec | Mapping[str, Any], partner_id: int | None = None, description: str | None = None,
                subject: str = "account", effective_from: date | None = None, note: str | None = None) -> Plan:
    """Create a plan and its version 1. Platform plans (and partner-level plans) belong to the house partner."""
    partner_id = partner_id if partner_id is not None else actor.partner_id
    authorize(actor, "plan.manage", partner_id)
    get_partner(session, partner_id)
    c = Checker()
    name_v = c.text("name", name, "Plan name")
    code_v = (code or "").strip()
    if not CODE_RE.match(code_v):
        c.fail("code", "Code is required: letters, digits, '-' or '_' (at most 60).")
    elif session.scalar(select(Plan.id).where(Plan.partner_id == partner_id, func.lower(Plan.code) == code_v.lower())):
        c.fail("code", f"A plan with code {code_v!r} already exists.")
    cur = c.currency("currency", currency)
    c.choice("subject", subject, ("account", "partner"), "Subject")
    if subject == "partner" and not _is_house(session, partner_id):
        c.fail("subject", "Partner-level plans are the platform's: only the platform can own them.")
    desc = c.text("description", description, "Description", required=False, max_len=2000)
    eff = effective_from or clock.today()
    try:
        checked = _checked_spec(session, spec, cur)
    except ValidationError as exc:
        c.errors.update({k: v for k, v in exc.errors.items() if k not in c.errors})
        checked = None
    if checked is not None:
        check_platform_prices(session, actor, partner_id, checked, c)
    c.done()
    assert checked is not None
    plan = Plan(partner_id=partner_id, name=name_v, code=code_v, currency=cur, subject=subject, description=desc,
                created_by=actor.user_id or None)
    session.add(plan)
    session.flush()
    data = plan_to_dict(checked)
    session.add(PlanVersion(partner_id=partner_id, plan_id=plan.id, version=1, effective_from=eff, spec=data,
                            note=note, created_by=actor.user_id or None))
    session.flush()
    audit.record(session, actor, partner_id=partner_id, action="create", entity="plan", entity_id=plan.id,
                 after={"name": name_v, "code": code_v, "currency": cur, "subject": subject, "version": 1,
                        "effective_from": eff, "spec": data})
    return plan


def new_version(session: Session, actor: Actor, partner_id: int, plan_id: int, *,
                spec: PlanSpec | Mapping[str, Any], effective_from: date, note: str | None = None) -> PlanVersion:
    """Save changed prices as a new version effective from a date (not before the latest version's).

    Refused when an existing assignment's overrides would no longer apply to the new prices.
    """
    authorize(actor, "plan.manage", partner_id)
    plan = _plan(session, partner_id, plan_id)
    if plan.archived:
        raise Conflict(f"Plan {plan.name} is archived; unarchive it before changing it.")
    latest = _latest(session, plan)
    c = Checker()
    eff = _check_date(c, "effective_from", effective_from, "Effective date")
    if eff is not None and eff < latest.effective_from:
        c.fail("effective_from", f"A new version cannot take effect before the latest one "
                                 f"(version {latest.version}, from {latest.effective_from.isoformat()}).")
    try:
        checked = _checked_spec(session, spec, plan.currency)
    except ValidationError as exc:
        c.errors.update(exc.errors)
        checked = None
    if checked is not None:
        _check_assignments_still_apply(session, plan, checked, c)
        check_platform_prices(session, actor, partner_id, checked, c)
    c.done()
    assert checked is not None and eff is not None
    data = plan_to_dict(checked)
    ver = PlanVersion(partner_id=partner_id, plan_id=plan_id, version=latest.version + 1, effective_from=eff,
                      spec=data, note=note, created_by=actor.user_id or None)
    session.add(ver)
    session.flush()
    audit.record(session, actor, partner_id=partner_id, action="new_version", entity="plan", entity_id=plan_id,
                 before={"version": latest.version, "spec": latest.spec},
                 after={"version": ver.version, "effective_from": eff, "spec": data})
    return ver


def _check_assignments_still_apply(session: Session, plan: Plan, spec: PlanSpec, c: Checker) -> None:
    rows = session.scalars(select(PlanAssignment).where(
        PlanAssignment.plan_partner_id == plan.partner_id, PlanAssignment.plan_id == plan.id))
    metrics = known_metrics(session)
    for a in (r for r in rows if r.overrides):
        try:
            apply_overrides(spec, a.overrides, known_metrics=metrics)
        except PlanValidationError as exc:
            who = f"customer account {a.account_id}" if a.account_id else f"partner {a.partner_id}"
            problems = "; ".join(f"{p}: {m}" for p, m in exc.problems)
            c.fail("spec", f"The overrides of {who} would no longer apply: {problems}")


def set_archived(session: Session, actor: Actor, partner_id: int, plan_id: int, archived: bool) -> Plan:
    """Archive (no longer offered or assignable; existing assignments keep billing) or unarchive a plan."""
    authorize(actor, "plan.manage", partner_id)
    plan = _plan(session, partner_id, plan_id)
    if plan.archived == archived:
        raise Conflict(f"Plan {plan.name} is already {'archived' if archived else 'active'}.")
    plan.archived = archived
    session.flush()
    audit.record(session, actor, partner_id=partner_id, action="archive" if archived else "unarchive",
                 entity="plan", entity_id=plan_id, before={"archived": not archived}, after={"archived": archived})
    return plan


def archive_plan(session: Session, actor: Actor, partner_id: int, plan_id: int) -> Plan:
    return set_archived(session, actor, partner_id, plan_id, True)


def unarchive_plan(session: Session, actor: Actor, partner_id: int, plan_id: int) -> Plan:
    return set_archived(session, actor, partner_id, plan_id, False)


def list_plans(session: Session, actor: Actor, *, include_archived: bool = False,
               subject: str | None = None, currency: str | None = None) -> list[PlanRow]:
    """The plan catalogue the actor sees: partner staff their own plans plus the platform's active
    customer plans; platform admins every plan."""
    if not actor.is_staff:
        raise PermissionDenied(f"{actor.role_label} {actor.email} may not see the plan catalogue.")
    authorize(actor, "plan.view", actor.partner_id)
    latest = (select(PlanVersion.partner_id, PlanVersion.plan_id, func.max(PlanVersion.version).label("v"))
              .group_by(PlanVersion.partner_id, PlanVersion.plan_id).subquery())
    q = (select(Plan, Partner.name, Partner.is_house, PlanVersion.version, PlanVersion.effective_from)
         .join(Partner, Partner.id == Plan.partner_id)
         .join(latest, (latest.c.partner_id == Plan.partner_id) & (latest.c.plan_id == Plan.id))
         .join(PlanVersion, (PlanVersion.partner_id == Plan.partner_id) & (PlanVersion.plan_id == Plan.id)
               & (PlanVersion.version == latest.c.v)))
    if not actor.is_admin:
        q = q.where(or_(Plan.partner_id == actor.partner_id,
                        Partner.is_house & ~Plan.archived & (Plan.subject == "account")))
    if not include_archived:
        q = q.where(~Plan.archived)
    if subject:
        q = q.where(Plan.subject == subject)
    if currency:
        q = q.where(Plan.currency == currency)
    q = q.order_by(Partner.is_house.desc(), func.lower(Plan.name), Plan.id)
    return [PlanRow(p.partner_id, p.id, p.name, p.code, p.currency, p.subject, p.archived,
                    "Platform" if is_house else pname, v, eff, p.description)
            for p, pname, is_house, v, eff in session.execute(q)]


@dataclass(frozen=True)
class PlanDetail:
    plan: Plan
    versions: list[PlanVersion]

    @property
    def latest(self) -> PlanVersion:
        return self.versions[-1]

    def spec(self, version: int | None = None) -> PlanSpec:
        v = self.latest if version is None else next(x for x in self.versions if x.version == version)
        return plan_from_dict(v.spec)


def get_plan(session: Session, actor: Actor, partner_id: int, plan_id: int) -> PlanDetail:
    plan = _plan(session, partner_id, plan_id)
    if not _may_use(session, actor, plan):
        raise PermissionDenied(f"{actor.role_label} {actor.email} may not see this plan.")
    return PlanDetail(plan, versions_of(session, partner_id, plan_id))


# ---------------------------------------------------------------- assignments


@dataclass(frozen=True)
class AssignmentRow:
    id: int
    partner_id: int
    subject: str
    account_id: int | None
    plan_partner_id: int
    plan_id: int
    plan_name: str
    plan_code: str
    currency: str
    effective_from: date
    overrides: dict
    created_at: Any


def parse_overrides_text(text: str | None) -> dict[str, str | None]:
    """Overrides typed as lines `path = value` (`null` or nothing = remove the value); `#` comments."""
    out: dict[str, str | None] = {}
    problems = []
    for n, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        path, sep, value = line.partition("=")
        path, value = path.strip(), value.strip()
        if not sep or not path:
            problems.append(f"line {n}: expected 'path = value', e.g. charges.pages.unit_price = 0.09")
            continue
        out[path] = None if value.lower() in ("", "null", "none") else value
    if problems:
        raise ValidationError({"overrides": "; ".join(problems)})
    return out


def _check_overrides(session: Session, versions: list[PlanVersion], effective_from: date,
                     overrides: Mapping[str, Any]) -> None:
    """The overrides must apply cleanly to every version the assignment can be priced with."""
    start = version_on(versions, effective_from).version
    metrics = known_metrics(session)
    for v in versions:
        if v.version < start:
            continue
        try:
            apply_overrides(plan_from_dict(v.spec), overrides, known_metrics=metrics)
        except PlanValidationError as exc:
            text = "; ".join(f"{p}: {m}" for p, m in exc.problems)
            raise ValidationError({"overrides": text if len(versions) == 1 else f"version {v.version}: {text}"}) \
                from None


def _assign(session: Session, actor: Actor, *, partner_id: int, account_id: int | None, subject: str,
            currency: str, plan: Plan, effective_from: date, overrides: Mapping[str, Any] | None,
            who: str) -> PlanAssignment:
    c = Checker()
    eff = _check_date(c, "effective_from", effective_from, "Effective date")
    if plan.archived:
        c.fail("plan", f"Plan {plan.name} is archived and can no longer be assigned.")
    if plan.subject != subject:
        c.fail("plan", f"Plan {plan.name} prices {plan.subject}s, not {subject}s.")
    if plan.currency != currency:
        c.fail("plan", f"Plan {plan.name} is in {plan.currency} but {who} is billed in {currency}: "
                       f"pick a plan in {currency}.")
    if overrides is not None and not isinstance(overrides, Mapping):
        c.fail("overrides", "Overrides must be a mapping of path to value.")
    c.done()
    assert eff is not None
    clean = {str(k): (v if v is None or isinstance(v, str) else str(v)) for k, v in (overrides or {}).items()}
    if any(isinstance(v, float) for v in (overrides or {}).values()):
        raise ValidationError({"overrides": "Override values must be decimal strings such as \"0.09\", not floats."})
    _check_overrides(session, versions_of(session, plan.partner_id, plan.id), eff, clean)
    row = PlanAssignment(partner_id=partner_id, subject=subject, account_id=account_id,
                         plan_partner_id=plan.partner_id, plan_id=plan.id, effective_from=eff, overrides=clean,
                         created_by=actor.user_id or None)
    session.add(row)
    session.flush()
    audit.record(session, actor, partner_id=partner_id, action="assign_plan", entity="plan_assignment",
                 entity_id=row.id, account_id=account_id,
                 after={"plan_partner_id": plan.partner_id, "plan_id": plan.id, "plan": plan.name,
                        "effective_from": eff, "overrides": clean})
    return row


def assign_plan(session: Session, actor: Actor, partner_id: int, account_id: int, *, plan_id: int,
                effective_from: date, overrides: Mapping[str, Any] | None = None,
                plan_partner_id: int | None = None) -> PlanAssignment:
    """Put a customer account on a plan from a date, with customer-specific price overrides.

    The plan is the account's partner's own (default) or a platform plan (plan_partner_id = house partner).
    """
    authorize(actor, "plan.manage", partner_id, account_id)
    acc = session.get(CustomerAccount, (partner_id, account_id))
    if acc is None or acc.status == "deleted":
        raise NotFound(f"Customer account {account_id} does not exist.")
    owner = plan_partner_id if plan_partner_id is not None else partner_id
    plan = session.get(Plan, (owner, plan_id))
    if plan is None or (owner != partner_id and not _is_house(session, owner)):
        raise ValidationError({"plan": f"Plan {plan_id} is not available to this customer."})
    return _assign(session, actor, partner_id=partner_id, account_id=account_id, subject="account",
                   currency=acc.currency, plan=plan, effective_from=effective_from, overrides=overrides,
                   who=f"customer {acc.name}")


def assign_partner_plan(session: Session, actor: Actor, partner_id: int, *, plan_id: int, effective_from: date,
                        overrides: Mapping[str, Any] | None = None) -> PlanAssignment:
    """Put a partner on one of the platform's partner-level plans (e.g. client-count bands)."""
    house = house_partner(session)
    authorize(actor, "plan.manage", house.id)
    partner = get_partner(session, partner_id)
    plan = session.get(Plan, (house.id, plan_id))
    if plan is None:
        raise ValidationError({"plan": f"Plan {plan_id} is not a platform plan."})
    return _assign(session, actor, partner_id=partner_id, account_id=None, subject="partner",
                   currency=partner.currency, plan=plan, effective_from=effective_from, overrides=overrides,
                   who=f"partner {partner.name}")


def _authorize_view(actor: Actor, partner_id: int, account_id: int | None) -> None:
    authorize(actor, "plan.view", partner_id, account_id)


def assignment_history(session: Session, actor: Actor, partner_id: int,
                       account_id: int | None = None) -> list[AssignmentRow]:
    """Every plan assignment of a customer account (or, with account_id None, of the partner itself),
    newest effective date first."""
    _authorize_view(actor, partner_id, account_id)
    return _assignments(session, partner_id, account_id, newest_first=True)


def _assignments(session: Session, partner_id: int, account_id: int | None, *,
                 newest_first: bool = False) -> list[AssignmentRow]:
    subject = "account" if account_id is not None else "partner"
    q = (select(PlanAssignment, Plan).join(Plan, (Plan.partner_id == PlanAssignment.plan_partner_id)
                                          & (Plan.id == PlanAssignment.plan_id))
         .where(PlanAssignment.partner_id == partner_id, PlanAssignment.subject == subject))
    q = q.where(PlanAssignment.account_id == account_id) if account_id is not None else q
    order = (PlanAssignment.effective_from, PlanAssignment.id)
    q = q.order_by(*(o.desc() for o in order)) if newest_first else q.order_by(*order)
    return [AssignmentRow(a.id, a.partner_id, a.subject, a.account_id, a.plan_partner_id, a.plan_id, p.name,
                          p.code, p.currency, a.effective_from, dict(a.overrides or {}), a.created_at)
            for a, p in session.execute(q)]


def assignments_in_force(session: Session, partner_id: int, account_id: int | None) -> list[AssignmentRow]:
    """The assignments that are in force at some time, oldest first: of several with the same effective
    date only the newest counts (it corrected the others)."""
    rows = _assignments(session, partner_id, account_id)
    by_day: dict[date, AssignmentRow] = {}
    for r in rows:
        by_day[r.effective_from] = r  # rows are ordered by (effective_from, id): the last one wins
    return sorted(by_day.values(), key=lambda r: r.effective_from)


@dataclass(frozen=True)
class CurrentPlan:
    assignment: AssignmentRow
    version: int
    version_effective_from: date
    spec: PlanSpec  # the version's spec with the assignment's overrides applied


def current_assignment(session: Session, actor: Actor, partner_id: int, account_id: int | None,
                       on: date | None = None) -> CurrentPlan | None:
    """The plan in force on a day (default today) with the customer's overrides applied, or None."""
    _authorize_view(actor, partner_id, account_id)
    day = on or clock.today()
    rows = [r for r in assignments_in_force(session, partner_id, account_id) if r.effective_from <= day]
    if not rows:
        return None
    a = rows[-1]
    v = version_on(versions_of(session, a.plan_partner_id, a.plan_id), day)
    spec = apply_overrides(plan_from_dict(v.spec), a.overrides)
    return CurrentPlan(a, v.version, v.effective_from, spec)
