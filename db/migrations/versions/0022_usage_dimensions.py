"""usage per value of a declared event property (dimensions), kept exact at ingestion

Revision ID: 0022
Revises: 0023

`metric_dimensions` declares which event properties prices may depend on (messages by `country`, documents by
`type`, API requests by `integration`); ingestion keeps `usage_dimension_daily` (sum and count per account,
metric, property, value and day) for them in the same transaction, so rating and the lab read aggregates
instead of raw events. The declared dimensions are backfilled here from the stored events (corrections left
out, as from every aggregate).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0023'
branch_labels = None
depends_on = None

BUILTIN = [("messages", "country", "Destination country"), ("documents", "type", "Document type"),
           ("api_requests", "integration", "Integration")]

BACKFILL = """
INSERT INTO usage_dimension_daily (partner_id, account_id, metric, property, day, value, qty_sum, events)
SELECT e.partner_id, e.account_id, e.metric, d.property, e.day, e.properties ->> d.property, sum(e.quantity), count(*)
FROM usage_events e JOIN metric_dimensions d ON d.metric = e.metric
WHERE NOT e.correction AND e.properties ->> d.property IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6
"""


def upgrade() -> None:
    op.create_table(
        "metric_dimensions",
        sa.Column("metric", sa.String(length=40), nullable=False),
        sa.Column("property", sa.String(length=60), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("builtin", sa.Boolean(), server_default="false", nullable=False),
        sa.ForeignKeyConstraint(["metric"], ["metrics.key"], name=op.f("fk_metric_dimensions_metric_metrics")),
        sa.PrimaryKeyConstraint("metric", "property", name=op.f("pk_metric_dimensions")),
    )
    op.create_table(
        "usage_dimension_daily",
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("metric", sa.String(length=40), nullable=False),
        sa.Column("property", sa.String(length=60), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("qty_sum", sa.Numeric(30, 6), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("partner_id", "account_id", "metric", "property", "day", "value",
                                name=op.f("pk_usage_dimension_daily")),
    )
    present = {r[0] for r in op.get_bind().execute(sa.text("SELECT key FROM metrics"))}
    for metric, prop, label in BUILTIN:
        if metric in present:
            op.execute(sa.text("INSERT INTO metric_dimensions (metric, property, label, builtin) "
                               "VALUES (:m, :p, :l, true)").bindparams(m=metric, p=prop, l=label))
    op.execute(BACKFILL)
    # the app role reads and writes rows (db/roles.py grants again after every migration)
    op.execute("""
DO $$ BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rc_app') THEN
    GRANT SELECT, INSERT, UPDATE, DELETE ON usage_dimension_daily TO rc_app;
    GRANT SELECT, INSERT, UPDATE, DELETE ON metric_dimensions TO rc_app;
  END IF;
END $$""")


def downgrade() -> None:
    op.drop_table("usage_dimension_daily")
    op.drop_table("metric_dimensions")
