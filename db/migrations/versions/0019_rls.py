"""row-level security: every table with partner_id is bound to the transaction's tenant

Revision ID: 0019
Revises: 0025

A policy `tenant_isolation` on every table that carries partner_id (found in the catalogue at upgrade time):
a row is visible and writable when its partner_id equals the transaction's `app.partner_id`, or in the explicit
platform scope (`app.scope = 'platform'`). With neither setting the app role sees and writes nothing. A later
migration adding such a table calls `db.roles.enable_tenant_rls(op.get_bind())` again.
"""
from __future__ import annotations

from alembic import op

from db.roles import disable_tenant_rls, enable_tenant_rls

revision = '0019'
down_revision = '0025'
branch_labels = None
depends_on = None


def upgrade() -> None:
    enable_tenant_rls(op.get_bind())


def downgrade() -> None:
    disable_tenant_rls(op.get_bind())
