"""ORM models: usage metering — the metrics catalogue, raw usage events, their aggregates and period locks.

Why the shapes are what they are (details in docs/performance.md):

- `usage_events` is the raw, append-only record. Its primary key (partner_id, account_id, event_id) IS the
  idempotency key: ingestion inserts a batch with a plain INSERT when none of its event ids is stored yet,
  otherwise with ON CONFLICT DO NOTHING, and aggregates only the rows that were really inserted, so a
  repeated (or concurrently repeated) batch never counts twice. The only other index is the history index
  (partner_id, account_id, day), migration 0011. It has no foreign
  keys on purpose: per-row referential-integrity triggers would roughly halve the ingestion rate, and the
  single ingestion path (core.usage.ingest.record_events) validates account and metric before writing.
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
    """One metered usage event, exactly as received (plus its UTC billing day)."""

    __tablename__ = "usage_events"

    partner_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    metric: Mapped[str] = mapped_column(String(40))
    quantity: Mapped[Decimal] = mapped_column(QUANTITY)
    occurred_at: Mapped[datetime] = mapped_column()
    # occurred_at's date in UTC: the day the event is billed on.
    day: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(60))
    properties: Mapped[dict | None] = mapped_column(JSONB)
    correction: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    recorded_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        # history paging, newest first (migration 0011: by day, then an incremental sort by time)
        Index("ix_usage_events_account_day", "partner_id", "account_id", "day"),
    )


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
