"""white label: the partner's colours and VAT id with its statement branding

Revision ID: 0025
Revises: 0022

A partner's clients see the app in the partner's colours (primary: buttons, links, the selected page; sidebar:
the sidebar's background), set with the statement branding; statements show the issuer's VAT id. No new
table: the app role's grants on statement_settings (0006/0014) cover the new columns.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0025'
down_revision = '0022'
branch_labels = None
depends_on = None

COLOUR = "{col} is null or {col} ~ '^#[0-9a-f]{{6}}$'"


def upgrade() -> None:
    op.add_column("statement_settings", sa.Column("vat_id", sa.String(length=40), nullable=True))
    op.add_column("statement_settings", sa.Column("primary_colour", sa.String(length=7), nullable=True))
    op.add_column("statement_settings", sa.Column("sidebar_colour", sa.String(length=7), nullable=True))
    for col in ("primary_colour", "sidebar_colour"):
        op.create_check_constraint(op.f(f"ck_statement_settings_{col}"), "statement_settings",
                                   COLOUR.format(col=col))


def downgrade() -> None:
    for col in ("sidebar_colour", "primary_colour"):
        op.drop_constraint(op.f(f"ck_statement_settings_{col}"), "statement_settings", type_="check")
    op.drop_column("statement_settings", "sidebar_colour")
    op.drop_column("statement_settings", "primary_colour")
    op.drop_column("statement_settings", "vat_id")
