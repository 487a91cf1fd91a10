"""ORM models: settlement of partner-paid usage as it is recorded."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Date, ForeignKey, ForeignKeyConstraint, Integer, String, func
from sqlalchemy.orm import Mapped, mapped_column

from db.base import MONEY, QUANTITY, Base


class UsageSettlement(Base):
    """How much of a customer's month has been settled by its partner so far (credits drawn from the
    prepaid wallet, money charged on demand). Each new batch settles only the difference between the
    month-to-date rating and these figures, so the sum of the draws/charges equals the month's usage price.
    One row per (customer, month, mode start): a mode change mid-month starts a new row."""

    __tablename__ = "usage_settlements"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    account_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    mode_from: Mapped[date] = mapped_column(Date, primary_key=True)
    mode: Mapped[str] = mapped_column(String(20))
    currency: Mapped[str] = mapped_column(String(3))
    baseline_credits: Mapped[Decimal] = mapped_column(QUANTITY, default=0, server_default="0")
    baseline_amount: Mapped[Decimal] = mapped_column(MONEY, default=0, server_default="0")
    credits_settled: Mapped[Decimal] = mapped_column(QUANTITY, default=0, server_default="0")
    amount_settled: Mapped[Decimal] = mapped_column(MONEY, default=0, server_default="0")
    settlements: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())

    __table_args__ = (
        ForeignKeyConstraint(["partner_id", "account_id"], ["customer_accounts.partner_id", "customer_accounts.id"],
                             name="fk_usage_settlements_account"),
    )
