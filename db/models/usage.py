"""ORM models: usage metering — the metrics catalogue, raw usage events, their aggregates and period locks.

Why the shapes are what they are (details in docs/performance.md):

- `usage_events` is the raw, append-only record, partitioned by month (RANGE on `day`, migration 0020: one
  partition per month in the schema `usage_parts` plus a DEFAULT one; `usage_ensure_partitions` makes them).
  A partitioned table's primary key must contain the partition key, so its key is (partner_id, account_id,
  day, occurred_at, event_id); that index is also the history index (partner, account, newest first). It has no foreign keys on
  purpose: per-row referential-integrity triggers would roughly halve the ingestion rate, and the single
  ingestion path (core.usage.ingest.record_events) validates account and metric before writing.
- `usage_event_ids` is the idempotency key (partner_id, account_id, event_id), one narrow row per stored event
  with the day it was stored under: a constraint on the partitioned table could only refuse a repeated id
  within one month. Ingestion writes the keys first (COPY when none is stored yet, otherwise ON CONFLICT DO
  NOTHING) and stores and aggregates only the events whose key was new, so a repeated (or concurrently
  repeated) event id never counts twice, even with another occurred_at in another month (the first wins).
- `usage_daily` and `usage_monthly` are kept exactly consistent with the raw events in the same
  transaction. Each row keeps enough to answer every aggregation: sum, count, max and latest.
- `usage_partner_daily` / `usage_partner_monthly` (migration 0008) keep the additive statistics (sum of
  quantities, number of events) per partner: partner and platform totals of sum/count metrics.
- `usage_distinct` keeps the distinct property values per day for `unique_count` metrics, because distinct
  counts cannot be added up from daily numbers.
- `usage_period_locks` marks periods whose statement is final; events for those periods are stored with
  `correction = true` and are left out of the aggregates ("needs a correction").
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.base import QUANTITY, Base, reference_data

AGGREGATIONS = ("sum", "count", "max", "unique_count", "latest")
TOTAL = Numeric(30, 6)  # sums of many QUANTITY values


class Metric(Base):
    """A billable metric (global catalogue). Built-in rows ship with migration 0002."""

    __tablename__ = "metrics"

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    unit: Mapped[str] = mapped_column(String(40))
    aggregation: Mapped[str] = mapped_column(String(16))
    # For unique_count: the event property whose distinct values are counted.
    property: Mapped[str | None] = mapped_column(String(60))
    builtin: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    # A customer with usage of such a metric in a period counts as an active client (partner client bands).
    counts_as_active: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        CheckConstraint("aggregation in ('sum','count','max','unique_count','latest')", name="aggregation"),
        CheckConstraint("(aggregation = 'unique_count') = (property is not null)", name="property_for_unique"),
        CheckConstraint("key ~ '^[a-z][a-z0-9_]{0,39}$'", name="key_format"),
        reference_data("NOT builtin"),  # the shipped catalogue; metrics added later are not
    )


class UsageEvent(Base):
    """One metered usage event, exactly as received (plus its UTC billing day). Partitioned by month on day."""

    __tablename__ = "usage_events"

    partner_id: Mapped[int] = mapped_column(BigInteger)
    account_id: Mapped[int] = mapped_column(BigInteger)
    # occurred_at's date in UTC: the day the event is billed on, and the partition key.
    day: Mapped[date] = mapped_column(Date)
    event_id: Mapped[str] = mapped_column(String(100))
    metric: Mapped[str] = mapped_column(String(40))
    quantity: Mapped[Decimal] = mapped_column(QUANTITY)
    occurred_at: Mapped[datetime] = mapped_column()
    source: Mapped[str] = mapped_column(String(60))
    properties: Mapped[dict | None] = mapped_column(JSONB)
    correction: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    recorded_at: Mapped[datetime] = mapped_column(server_default=func.now())

    # The key doubles as the history index: newest day, then newest time first (migration 0028), so a page of
    # an account's history reads its rows and no more, however many events a day the account has. The
    # idempotency key is usage_event_ids'.
    __table_args__ = (
        PrimaryKeyConstraint("partner_id", "account_id", "day", "occurred_at", "event_id", name="pk_usage_events"),
        {"postgresql_partition_by": "RANGE (day)"},
    )


class UsageEventId(Base):
    """The idempotency key of usage events: an event id is stored (and counted) once per account, whatever
    occurred_at a replay carries (migration 0020)."""

    __tablename__ = "usage_event_ids"

    partner_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    day: Mapped[date] = mapped_column(Date)  # the day (so the partition) the event is stored under


class UsageStats:
    """What an aggregate row keeps for (account, metric, period), so that every aggregation — sum, count,
    max, latest — can be answered from it (unique counts come from usage_distinct)."""

    qty_sum: Mapped[Decimal] = mapped_column(TOTAL)
    events: Mapped[int] = mapped_column(BigInteger)
    qty_max: Mapped[Decimal] = mapped_column(QUANTITY)
    last_at: Mapped[datetime] = mapped_column()
    last_event_id: Mapped[str] = mapped_column(String(100))
    last_qty: Mapped[Decimal] = mapped_column(QUANTITY)


class UsageDaily(UsageStats, Base):
    """Usage per customer account, metric and UTC day."""

    __tablename__ = "usage_daily"

    partner_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    metric: Mapped[str] = mapped_column(ForeignKey("metrics.key"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    # unique_count metrics: distinct property values seen on this day.
    distinct_values: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __table_args__ = (
        ForeignKeyConstraint(["partner_id", "account_id"], ["customer_accounts.partner_id", "customer_accounts.id"],
                             name="fk_usage_daily_account"),
        # dashboards always name the metrics they read (migration 0008)
        Index("ix_usage_daily_partner_metric_day", "partner_id", "metric", "day"),
        Index("ix_usage_daily_metric_day", "metric", "day"),
    )


class UsageMonthly(UsageStats, Base):
    """Usage per customer account, metric and calendar month (UTC): the rollup for long ranges."""

    __tablename__ = "usage_monthly"

    partner_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    metric: Mapped[str] = mapped_column(ForeignKey("metrics.key"), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)

    __table_args__ = (
        ForeignKeyConstraint(["partner_id", "account_id"], ["customer_accounts.partner_id", "customer_accounts.id"],
                             name="fk_usage_monthly_account"),
        Index("ix_usage_monthly_partner_metric_month", "partner_id", "metric", "month"),
        Index("ix_usage_monthly_metric_month", "metric", "month"),
    )


class UsagePartnerDaily(Base):
    """Additive usage (sum of quantities, number of events) per partner, metric and UTC day: partner and
    platform totals of sum/count metrics without reading every account's rows (migration 0008)."""

    __tablename__ = "usage_partner_daily"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    metric: Mapped[str] = mapped_column(ForeignKey("metrics.key"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True, index=True)
    qty_sum: Mapped[Decimal] = mapped_column(TOTAL)
    events: Mapped[int] = mapped_column(BigInteger)


class UsagePartnerMonthly(Base):
    """Additive usage per partner, metric and calendar month (UTC)."""

    __tablename__ = "usage_partner_monthly"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    metric: Mapped[str] = mapped_column(ForeignKey("metrics.key"), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True, index=True)
    qty_sum: Mapped[Decimal] = mapped_column(TOTAL)
    events: Mapped[int] = mapped_column(BigInteger)


class UsageDistinct(Base):
    """Distinct property values per account, unique_count metric and day (exact distinct counts)."""

    __tablename__ = "usage_distinct"

    partner_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    metric: Mapped[str] = mapped_column(String(40), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    value: Mapped[str] = mapped_column(Text, primary_key=True)

    __table_args__ = (
        # distinct counts read (partner, metric, account, value) in this order: a sorted index-only scan
        Index("ix_usage_distinct_count_order", "partner_id", "metric", "account_id", "value", "day"),
        # the days of a range's partial months (migration 0026)
        Index("ix_usage_distinct_metric_day", "metric", "day"),
        Index("ix_usage_distinct_partner_metric_day", "partner_id", "metric", "day"),
    )


class UsagePeriodLock(Base):
    """A period whose statement is final: later events for it need a correction."""

    __tablename__ = "usage_period_locks"

    partner_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    period_end: Mapped[date] = mapped_column(Date)
    finalised_at: Mapped[datetime] = mapped_column(server_default=func.now())
    statement_ref: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        ForeignKeyConstraint(["partner_id", "account_id"], ["customer_accounts.partner_id", "customer_accounts.id"],
                             name="fk_usage_period_locks_account"),
        CheckConstraint("period_end >= period_start", name="period_order"),
    )


BUILTIN_METRICS: list[dict] = [
    # key, name, unit, aggregation, property, counts_as_active
    dict(key="documents", name="Processed documents", unit="documents", aggregation="sum", property=None,
         counts_as_active=True),
    dict(key="pages", name="Pages", unit="pages", aggregation="sum", property=None, counts_as_active=True),
    dict(key="credits", name="Credits", unit="credits", aggregation="sum", property=None, counts_as_active=False),
    dict(key="messages", name="Messages sent", unit="messages", aggregation="sum", property=None,
         counts_as_active=True),
    dict(key="api_requests", name="API requests", unit="requests", aggregation="count", property=None,
         counts_as_active=False),
    dict(key="data_mb", name="Stored data (peak)", unit="MB", aggregation="max", property=None,
         counts_as_active=False),
    dict(key="recipients", name="Unique recipients", unit="recipients", aggregation="unique_count",
         property="recipient", counts_as_active=False),
    dict(key="keywords", name="Tracked keywords", unit="keywords", aggregation="latest", property=None,
         counts_as_active=False),
    dict(key="active_clients", name="Active clients", unit="clients", aggregation="latest", property=None,
         counts_as_active=False),
]


# Closed months' distinct counts (migration 0021). A unique_count metric's value over a range is the number of
# distinct property values per account, which cannot be added up from days or months. These rollups make it
# exact and history-size independent for whole months:
NEVER = date(1, 1, 1)  # prev_month of a value's first month ever


class UsageDistinctMonthly(Base):
    """The months in which each distinct property value of an account's unique_count metric occurred."""

    __tablename__ = "usage_distinct_monthly"

    partner_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    metric: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    value: Mapped[str] = mapped_column(Text, primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)


class UsageDistinctGaps(Base):
    """Per account, metric and month: how many of the month's distinct values occurred last before in
    `prev_month` (NEVER: first time). The distinct count over whole months [m1, m2] is then the sum of
    value_count over month in [m1, m2] and prev_month < m1: a few rows per account, whatever the history."""

    __tablename__ = "usage_distinct_gaps"

    partner_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    metric: Mapped[str] = mapped_column(String(40), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    prev_month: Mapped[date] = mapped_column(Date, primary_key=True)
    account_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    value_count: Mapped[int] = mapped_column(BigInteger)


class UsagePartnerDistinctGaps(Base):
    """usage_distinct_gaps summed over the partner's accounts: partner and platform distinct totals."""

    __tablename__ = "usage_partner_distinct_gaps"

    partner_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    metric: Mapped[str] = mapped_column(String(40), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    prev_month: Mapped[date] = mapped_column(Date, primary_key=True)
    value_count: Mapped[int] = mapped_column(BigInteger)


# Latest quantities and distinct values "as of" now (migration 0027): the day each last occurred (and, for
# distinct values, first occurred), per account and summed per partner. A range ending after every event of its
# scope (a dashboard range ending today), or for distinct counts starting before every one, is answered from
# these few rows per partner (core.usage.reports); ingestion keeps them (core.usage.aggregates).


class UsageLatest(Base):
    """Each account's latest event of each latest metric (later = greater (last_at, last_event_id))."""

    __tablename__ = "usage_latest"

    partner_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    metric: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_day: Mapped[date] = mapped_column(Date)
    last_at: Mapped[datetime] = mapped_column()
    last_event_id: Mapped[str] = mapped_column(Text)
    last_qty: Mapped[Decimal] = mapped_column(QUANTITY)

    __table_args__ = (Index("ix_usage_latest_metric_day", "metric", "last_day"),)


class UsagePartnerLatestDays(Base):
    """usage_latest summed per partner, metric and the day of the accounts' latest events."""

    __tablename__ = "usage_partner_latest_days"

    partner_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    metric: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_day: Mapped[date] = mapped_column(Date, primary_key=True)
    qty_sum: Mapped[Decimal] = mapped_column(TOTAL)
    accounts: Mapped[int] = mapped_column(BigInteger)


class UsageDistinctSpan(Base):
    """The first and the last day each distinct property value of an account's unique_count metric occurred."""

    __tablename__ = "usage_distinct_span"

    partner_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    metric: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(Text, primary_key=True)
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)


class _AccountDays:
    """Per account and unique_count metric: how many distinct values occurred last (or first) on each day."""

    partner_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    metric: Mapped[str] = mapped_column(String(40), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    pairs: Mapped[int] = mapped_column(BigInteger)


class _PartnerDays:
    """The same summed per partner."""

    partner_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    metric: Mapped[str] = mapped_column(String(40), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    pairs: Mapped[int] = mapped_column(BigInteger)


class UsageDistinctLastDays(_AccountDays, Base):
    __tablename__ = "usage_distinct_last_days"
    __table_args__ = (Index("ix_usage_distinct_last_days_metric_day", "metric", "day"),)


class UsagePartnerDistinctLastDays(_PartnerDays, Base):
    __tablename__ = "usage_partner_distinct_last_days"


class UsageDistinctFirstDays(_AccountDays, Base):
    __tablename__ = "usage_distinct_first_days"
    __table_args__ = (Index("ix_usage_distinct_first_days_metric_day", "metric", "day"),)


class UsagePartnerDistinctFirstDays(_PartnerDays, Base):
    __tablename__ = "usage_partner_distinct_first_days"


class MetricDimension(Base):
    """An event property of a metric that a price may depend on (a dimension: messages by `country`), declared
    in the catalogue so that ingestion keeps exact per-value aggregates for it (usage_dimension_daily,
    migration 0022). Dimensions need a sum or count metric. Built-in rows ship with the migration; platform
    admins declare more (core.usage.dimensions.declare_dimension, which backfills the stored events)."""

    __tablename__ = "metric_dimensions"

    metric: Mapped[str] = mapped_column(ForeignKey("metrics.key"), primary_key=True)
    property: Mapped[str] = mapped_column(String(60), primary_key=True)
    label: Mapped[str] = mapped_column(String(100))
    builtin: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")

    __table_args__ = (reference_data("NOT builtin"),)


class UsageDimensionDaily(Base):
    """Usage per customer account, metric, declared dimension, property value and UTC day (sum of quantities,
    number of events), kept exactly consistent with the raw events by ingestion, in the same transaction;
    events awaiting a correction are left out, as from every aggregate. Events without the property have no row
    (they are the charge's "other values")."""

    __tablename__ = "usage_dimension_daily"

    partner_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    metric: Mapped[str] = mapped_column(String(40), primary_key=True)
    property: Mapped[str] = mapped_column(String(60), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)  # before value: a period is one range scan
    value: Mapped[str] = mapped_column(Text, primary_key=True)
    qty_sum: Mapped[Decimal] = mapped_column(TOTAL)
    events: Mapped[int] = mapped_column(BigInteger)
    # No foreign key, like usage_distinct: written only by ingestion, which validated the account.
