"""Declarative base with a naming convention, so Alembic migrations get stable constraint names."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import ClassVar

from sqlalchemy import MetaData, Numeric, Table
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Money columns: NUMERIC, never float. 20 digits before the point is plenty; unit prices keep 10 decimals.
MONEY = Numeric(20, 4)
UNIT_PRICE = Numeric(24, 10)
QUANTITY = Numeric(24, 6)


def reference_data(added_rows: str | None = None) -> dict:
    """Table options (the last item of __table_args__) marking a table whose rows are reference data shipped by
    migrations. `added_rows`: a WHERE clause matching the rows added later (they are not reference data), or
    None when every row is. Test suites and benchmarks keep reference data when they empty the database."""
    return {"info": {"reference_data": True, "added_rows": added_rows}}


class Base(DeclarativeBase):
    # Every model here maps one Table (SQLAlchemy types __table__ as the wider FromClause): core code uses
    # Model.__table__ with insert(), update() and .c directly.
    __table__: ClassVar[Table]
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: TIMESTAMP(timezone=True),
        Decimal: Numeric(24, 10),
        dict: JSONB,
    }
