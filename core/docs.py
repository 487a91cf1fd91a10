"""Regenerate generated documentation: `python -m core.docs` (make docs)."""

from __future__ import annotations

from pathlib import Path

from core.accounts.permissions import render_markdown

ROOT = Path(__file__).resolve().parent.parent

PERMISSIONS_INTRO = """# Permissions

Who may do what. Every core service checks this itself (`core.accounts.permissions.authorize`) before it reads or
writes; the navigation and the pages only mirror it. Scopes:

- **platform**: any tenant (platform admins).
- **partner**: records of the actor's own partner only (partner staff).
- **account**: records of the actor's own customer account only (customer roles).
- **–**: never.

A cross-tenant or out-of-role attempt raises `PermissionDenied` and writes nothing.
`tests/test_permissions.py` checks every role × action × (own account, another account of the same
partner, another partner) through the real services, and that this table matches the code.

Further rules enforced by the services:
- Only customer roles (Manager, User, Annotation Manager, Annotator) can be given to users of a customer
  account; partner staff are created by platform admins; nobody changes their own role or deactivates
  themselves; an account always keeps at least one active Manager.
- Deleted accounts are restored by platform admins only.
- Users and Annotators see usage quantities but never prices, plans or statements.
- Rate cards (what the platform charges a partner) are written by platform admins only; partner staff read
  their own partner's card and margins; Managers never see the platform's charges or margins. Once a rate
  card prices a partner, its staff can no longer put credit rates (or wallet-settled charges) in their plans.

"""


def main() -> None:
    (ROOT / "docs" / "permissions.md").write_text(PERMISSIONS_INTRO + render_markdown() + "\n", encoding="utf-8")
    print("docs/permissions.md written")


if __name__ == "__main__":
    main()
