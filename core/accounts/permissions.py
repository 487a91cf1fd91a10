"""The permission matrix: which role may do which action, and in what scope.

Scopes:
- ``platform``: any tenant (platform admins);
- ``partner``: records of the actor's own partner (tenant) only;
- ``account``: records of the actor's own customer account only.

Every core service calls :func:`authorize` before reading or writing; a denied action raises
:class:`PermissionDenied` before anything is written. `docs/permissions.md` renders this matrix and
`tests/test_permissions.py` checks every role × action × (own, foreign) combination.
"""

from __future__ import annotations

from core.accounts.actor import CUSTOMER_ROLES, STAFF_ROLES, Actor
from core.errors import PermissionDenied

PLATFORM, PARTNER, ACCOUNT = "platform", "partner", "account"

ROLES = STAFF_ROLES + CUSTOMER_ROLES

ACTIONS: dict[str, str] = {
    "partner.create": "Create a partner (tenant)",
    "partner.list": "List all partners",
    "partner.settings": "Edit a partner's statement branding and settings",
    "staff.create": "Create partner staff",
    "account.create": "Create a customer account",
    "account.list": "List and search customer accounts",
    "account.view": "View a customer account",
    "account.update": "Edit a customer account",
    "account.suspend": "Suspend or reactivate a customer account",
    "account.delete": "Delete a customer account (soft)",
    "account.restore": "Restore a deleted customer account",
    "user.list": "List the users of a customer account",
    "user.create": "Add a user to a customer account",
    "user.change_role": "Change a user's role",
    "user.deactivate": "Deactivate or reactivate a user",
    "user.reset_password": "Reset a user's password",
    "audit.view": "Read the audit log",
    "impersonate": "Log in as a customer's Manager",
    "metric.manage": "Add billable metrics to the catalogue",
    "plan.manage": "Create, edit, version and archive price plans; assign plans",
    "plan.view": "See the assigned plan and its prices",
    "usage.view": "See usage (quantities, no prices)",
    "usage.import": "Record usage events (CSV upload, import)",
    "billing.manage": "Change billing mode, generate, finalise and void statements",
    "statement.view": "See billing statements",
    "wallet.view": "See the partner's credit wallet",
    "wallet.manage": "Buy credits, configure the wallet and its payment methods",
    "wallet.adjust": "Adjust, refund or expire a partner's credits manually (platform only)",
    "ratecard.manage": "Create and change rate cards: what the platform charges partners (platform only)",
    "ratecard.view": "See the partner's rate card (the platform's prices to the partner)",
    "margin.view": "See the platform's charges to the partner and the partner's margin",
    "apikey.manage": "Create, rotate and revoke the partner's API keys",
    "webhook.manage": "Register webhook endpoints, read their delivery log and replay deliveries",
}

_CUSTOMER_READ = {"account.view": ACCOUNT, "account.list": ACCOUNT, "usage.view": ACCOUNT}

MATRIX: dict[str, dict[str, str]] = {
    "platform_admin": {action: PLATFORM for action in ACTIONS},
    "partner_staff": {
        "partner.settings": PARTNER,
        "account.create": PARTNER,
        "account.list": PARTNER,
        "account.view": PARTNER,
        "account.update": PARTNER,
        "account.suspend": PARTNER,
        "account.delete": PARTNER,
        "user.list": PARTNER,
        "user.create": PARTNER,
        "user.change_role": PARTNER,
        "user.deactivate": PARTNER,
        "user.reset_password": PARTNER,
        "audit.view": PARTNER,
        "impersonate": PARTNER,
        "plan.manage": PARTNER,
        "plan.view": PARTNER,
        "usage.view": PARTNER,
        "usage.import": PARTNER,
        "billing.manage": PARTNER,
        "statement.view": PARTNER,
        "wallet.view": PARTNER,
        "wallet.manage": PARTNER,
        "ratecard.view": PARTNER,
        "margin.view": PARTNER,
        "apikey.manage": PARTNER,
        "webhook.manage": PARTNER,
    },
    "manager": {
        **_CUSTOMER_READ,
        "user.list": ACCOUNT,
        "user.create": ACCOUNT,
        "user.change_role": ACCOUNT,
        "user.deactivate": ACCOUNT,
        "user.reset_password": ACCOUNT,
        "plan.view": ACCOUNT,
        "statement.view": ACCOUNT,
    },
    "user": dict(_CUSTOMER_READ),
    "annotation_manager": dict(_CUSTOMER_READ),
    "annotator": dict(_CUSTOMER_READ),
}


def scope_of(role: str, action: str) -> str | None:
    if action not in ACTIONS:
        raise KeyError(f"unknown action {action!r}")
    return MATRIX.get(role, {}).get(action)


def allowed(actor: Actor, action: str, partner_id: int | None = None, account_id: int | None = None) -> bool:
    """May `actor` do `action` on a record of `partner_id` (and `account_id`)?

    With partner_id None the question is "may the actor do this at all, somewhere" (used to build menus).
    """
    scope = scope_of(actor.role, action)
    if scope is None:
        return False
    if actor.limited_to is not None and action not in actor.limited_to:
        return False  # an API key: its scopes allow only some of its role's actions
    if scope == PLATFORM or partner_id is None:
        return True
    if actor.partner_id != partner_id:
        return False
    if scope == PARTNER:
        return True
    return account_id is not None and actor.account_id == account_id


def authorize(actor: Actor, action: str, partner_id: int | None = None, account_id: int | None = None) -> None:
    if not allowed(actor, action, partner_id, account_id):
        raise PermissionDenied(f"{actor.role_label} {actor.email} may not {ACTIONS[action].lower()} here.")


def render_markdown() -> str:
    """The matrix as a Markdown table (docs/permissions.md is generated from this)."""
    head = "| Action | " + " | ".join(ROLES) + " |"
    sep = "|---|" + "---|" * len(ROLES)
    rows = [head, sep]
    for action, text in ACTIONS.items():
        cells = [scope_of(role, action) or "–" for role in ROLES]
        rows.append(f"| `{action}` — {text} | " + " | ".join(cells) + " |")
    return "\n".join(rows)
