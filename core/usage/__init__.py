"""Usage metering: the metric catalogue (metrics), the one validation of events (validation), the one
ingestion path (ingest), period locks of finalised statements (periods), the exact period quantities billing
charges (aggregates), CSV parsing (csv_import), the dashboard queries (reports) and the import command (cli).

May import: core.accounts, core.errors, core.validation, db. Never core.billing: billing listens to
ingestion through the hooks that core.bootstrap registers.
"""
