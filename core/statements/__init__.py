"""Statements: monthly statements, collective invoices and credit notes (see docs/statements.md).

- planning: which statements a partner's month has (plan_month, Key) and the month prefetched (MonthData);
- settings: the partner's statement settings (branding, language, tax rate, terms, number prefix);
- content: what a statement contains now (lines rated by the billing engine, totals);
- lifecycle: draft -> final (numbered, snapshot) -> void, credit notes;
- documents: a statement as a document for rendering; render: PDF and CSV; i18n: labels and formats;
- reading: listing, reading and exporting statements; cli: the monthly command.

May import: core.accounts, core.usage, core.billing, core.pricing, core.errors, db.
"""
