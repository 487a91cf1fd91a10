"""usage_events partitioned by month; the idempotency key moves to usage_event_ids

Revision ID: 0020
Revises: 0018

`usage_events` becomes a declaratively partitioned table, RANGE on `day` (the UTC date of `occurred_at`), one
partition per calendar month in the schema `usage_parts` plus a DEFAULT partition, so an event of a month
without its partition is still stored (never an ingestion failure). A primary key of a partitioned table must
contain the partition key, so the table's key is now (partner_id, account_id, day, event_id): that index is
also the history index (partner, account, newest day first), which replaces ix_usage_events_account_day.

The idempotency key (partner_id, account_id, event_id) can no longer be a constraint of the partitioned table
(PostgreSQL checks uniqueness within one partition only): an event id re-sent with a different occurred_at in
another month would be stored, and counted, twice. It moves to `usage_event_ids` (one narrow row per event,
with the day it was stored under), which ingestion writes first: an event id counts once, whatever
occurred_at a replay carries (the first one wins, as before).

Partitions are DDL, which the app role may not run: `usage_ensure_partitions(from_month, to_month)` is a
SECURITY DEFINER function owned by the migration owner that creates the missing monthly partitions (moving
any rows of those months out of the DEFAULT partition first); the app role is granted EXECUTE by
db/roles.py. `make run`'s set-up, the seeds and the worker call it for the months ahead.

Row-level security (migration 0019, another branch): the policy belongs on the parent `usage_events` (and on
`usage_event_ids`); partitions are reached only through the parent.
"""
from __future__ import annotations

from alembic import op

revision = '0020'
down_revision = '0018'
branch_labels = None
depends_on = None

COLUMNS = "partner_id, account_id, event_id, metric, quantity, occurred_at, day, source, properties, correction, recorded_at"

ENSURE_FN = r"""
CREATE OR REPLACE FUNCTION usage_ensure_partitions(from_month date, to_month date) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    first date := date_trunc('month', from_month)::date;
    last date := date_trunc('month', to_month)::date;
    m date;
    nxt date;
    part text;
    made integer := 0;
BEGIN
    IF from_month IS NULL OR to_month IS NULL OR last < first THEN
        RAISE EXCEPTION 'usage_ensure_partitions: to_month must not be before from_month';
    END IF;
    IF last > (first + interval '120 months')::date THEN
        RAISE EXCEPTION 'usage_ensure_partitions: at most 120 months at once';
    END IF;
    -- the months asked for, and every month that has rows waiting in the DEFAULT partition
    FOR m IN SELECT CAST(g AS date) FROM generate_series(first, last, interval '1 month') g
             UNION SELECT DISTINCT CAST(date_trunc('month', day) AS date) FROM usage_parts.usage_events_default
             ORDER BY 1 LOOP
        nxt := (m + interval '1 month')::date;
        part := format('usage_events_%s', to_char(m, 'YYYY_MM'));
        IF to_regclass(format('usage_parts.%I', part)) IS NULL THEN
            -- a plain table first, the month's rows moved out of the DEFAULT partition, then attached
            -- (ATTACH takes a weaker lock on the parent than CREATE ... PARTITION OF: ingestion goes on)
            EXECUTE format('CREATE TABLE usage_parts.%I (LIKE public.usage_events INCLUDING DEFAULTS)', part);
            EXECUTE format('ALTER TABLE usage_parts.%I ADD CONSTRAINT %I CHECK (day >= %L AND day < %L)',
                           part, part || '_range', m, nxt);
            EXECUTE format('WITH moved AS (DELETE FROM usage_parts.usage_events_default WHERE day >= %L AND day < %L '
                           'RETURNING *) INSERT INTO usage_parts.%I SELECT * FROM moved', m, nxt, part);
            EXECUTE format('ALTER TABLE public.usage_events ATTACH PARTITION usage_parts.%I '
                           'FOR VALUES FROM (%L) TO (%L)', part, m, nxt);
            EXECUTE format('ALTER TABLE usage_parts.%I DROP CONSTRAINT %I', part, part || '_range');
            made := made + 1;
        END IF;
    END LOOP;
    RETURN made;
END $$;
REVOKE ALL ON FUNCTION usage_ensure_partitions(date, date) FROM PUBLIC;
"""


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS usage_parts")
    op.execute("CREATE SCHEMA IF NOT EXISTS usage_archive")
    # 1. the idempotency key, from the stored events (key built after the load: sorted, fast)
    op.execute("""
        CREATE TABLE usage_event_ids (
            partner_id bigint NOT NULL, account_id bigint NOT NULL, event_id varchar(100) NOT NULL,
            day date NOT NULL)""")
    op.execute("INSERT INTO usage_event_ids SELECT partner_id, account_id, event_id, day FROM usage_events")
    op.execute("ALTER TABLE usage_event_ids ADD CONSTRAINT pk_usage_event_ids "
               "PRIMARY KEY (partner_id, account_id, event_id)")
    # 2. the old table out of the way
    op.execute("ALTER TABLE usage_events RENAME TO usage_events_old")
    op.execute("ALTER TABLE usage_events_old RENAME CONSTRAINT pk_usage_events TO pk_usage_events_old")
    op.execute("DROP INDEX ix_usage_events_account_day")
    # 3. the partitioned table (same columns, same types, same defaults)
    op.execute("""
        CREATE TABLE usage_events (
            partner_id bigint NOT NULL,
            account_id bigint NOT NULL,
            event_id varchar(100) NOT NULL,
            metric varchar(40) NOT NULL,
            quantity numeric(24, 6) NOT NULL,
            occurred_at timestamptz NOT NULL,
            day date NOT NULL,
            source varchar(60) NOT NULL,
            properties jsonb,
            correction boolean DEFAULT false NOT NULL,
            recorded_at timestamptz DEFAULT now() NOT NULL,
            CONSTRAINT pk_usage_events PRIMARY KEY (partner_id, account_id, day, event_id)
        ) PARTITION BY RANGE (day)""")
    op.execute("CREATE TABLE usage_parts.usage_events_default PARTITION OF usage_events DEFAULT")
    op.execute(ENSURE_FN)
    # 4. a partition for every month with events and the months up to three ahead, then the rows
    op.execute("""
        SELECT usage_ensure_partitions(LEAST(coalesce(min(day), current_date), current_date),
                                       (current_date + interval '3 months')::date)
        FROM usage_events_old""")
    op.execute(f"INSERT INTO usage_events ({COLUMNS}) SELECT {COLUMNS} FROM usage_events_old")
    op.execute("DROP TABLE usage_events_old")


def downgrade() -> None:
    op.execute("ALTER TABLE usage_events RENAME TO usage_events_parted")
    op.execute("ALTER TABLE usage_events_parted RENAME CONSTRAINT pk_usage_events TO pk_usage_events_parted")
    op.execute("""
        CREATE TABLE usage_events (
            partner_id bigint NOT NULL,
            account_id bigint NOT NULL,
            event_id varchar(100) NOT NULL,
            metric varchar(40) NOT NULL,
            quantity numeric(24, 6) NOT NULL,
            occurred_at timestamptz NOT NULL,
            day date NOT NULL,
            source varchar(60) NOT NULL,
            properties jsonb,
            correction boolean DEFAULT false NOT NULL,
            recorded_at timestamptz DEFAULT now() NOT NULL,
            CONSTRAINT pk_usage_events PRIMARY KEY (partner_id, account_id, event_id))""")
    # the first stored row of an event id wins, as the key would have decided
    op.execute(f"INSERT INTO usage_events ({COLUMNS}) SELECT {COLUMNS} FROM usage_events_parted "
               "ORDER BY recorded_at ON CONFLICT DO NOTHING")
    op.execute("CREATE INDEX ix_usage_events_account_day ON usage_events (partner_id, account_id, day)")
    op.execute("DROP TABLE usage_events_parted")
    op.execute("DROP FUNCTION usage_ensure_partitions(date, date)")
    op.execute("DROP TABLE usage_event_ids")
    op.execute("DROP SCHEMA usage_parts CASCADE")
    op.execute("DROP SCHEMA IF EXISTS usage_archive")
