"""Explicit wiring: the one place that connects the packages' hooks.

Recording usage (core.usage.ingest.record_events) calls the functions in ``on_events_recorded`` inside the
ingestion transaction. Which functions those are is decided here, not by importing a module:

- threshold alerts (core.billing.alerts), and
- the settlement of partner-paid usage: prepaid credit draws and on-demand charges (core.billing.settlement).

Every entry point calls ``bootstrap()`` once before it records usage: the app (pages/common.py), the CLIs,
the seeds loader, the benchmarks and the test suite. Calling it again changes nothing.
"""

from __future__ import annotations

from core.billing import alerts, settlement
from core.usage import ingest

HOOKS = (alerts.on_events_recorded, settlement.on_events_recorded)


def bootstrap() -> None:
    """Register the usage hooks (idempotent), in a fixed order: threshold alerts, then settlement."""
    for hook in HOOKS:
        if hook not in ingest.on_events_recorded:
            ingest.on_events_recorded.append(hook)
