"""Explicit wiring: the one place that connects the packages' hooks.

Recording usage (core.usage.ingest.record_events) calls the functions in ``on_events_recorded`` inside the
ingestion transaction. Which functions those are is decided here, not by importing a module:

- threshold alerts (core.billing.alerts), and
- the settlement of partner-paid usage: prepaid credit draws and on-demand charges (core.billing.settlement).

Audited changes (core.accounts.audit.record) call the functions in ``on_recorded`` in the same transaction:
webhook events for created accounts and finalised statements (core.notify.webhooks.on_audit).

Every entry point calls ``bootstrap()`` once before it records usage: the app (pages/common.py), the CLIs,
the seeds loader, the benchmarks and the test suite. Calling it again changes nothing.
"""

from __future__ import annotations

from core.accounts import audit
from core.billing import alerts, settlement
from core.notify import webhooks
from core.usage import ingest

HOOKS = (alerts.on_events_recorded, settlement.on_events_recorded)
AUDIT_HOOKS = (webhooks.on_audit,)


def bootstrap() -> None:
    """Register the usage hooks (idempotent), in a fixed order: threshold alerts, then settlement; and the
    audit hooks (webhook events)."""
    for hook in HOOKS:
        if hook not in ingest.on_events_recorded:
            ingest.on_events_recorded.append(hook)
    for audit_hook in AUDIT_HOOKS:
        if audit_hook not in audit.on_recorded:
            audit.on_recorded.append(audit_hook)
