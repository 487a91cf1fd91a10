"""All ORM models. Importing this package registers every table on `Base.metadata`.

Every tenant-owned table carries `partner_id` and its primary key starts with it, so the schema can be
distributed by tenant on Citus. Global lookup tables (partners, login_directory, login_throttle) are
small reference tables.
"""

from db.base import Base

# Domain model modules register their tables on import (each owns its own file and migration).
from db.models import (  # noqa: E402,F401
    billing,
    integration,
    ratecards,
    scenarios,
    sessions,
    settlement,
    statements,
    usage,
    wallet,
)
from db.models.accounts import (
    AuditEntry,
    CustomerAccount,
    LoginDirectory,
    LoginThrottle,
    Partner,
    User,
)

__all__ = [
    "AuditEntry",
    "Base",
    "CustomerAccount",
    "LoginDirectory",
    "LoginThrottle",
    "Partner",
    "User",
]
