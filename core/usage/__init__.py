"""Usage metering: the metric catalogue (metrics), the one ingestion path with its validation and
aggregates (ingest), CSV parsing (csv_import), the dashboard queries (reports) and the import command (cli).

May import: core.accounts, core.errors, core.validation, db. Never core.billing: billing listens to
ingestion through the hooks that core.bootstrap registers.
"""
