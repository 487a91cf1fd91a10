"""Statements: their lifecycle from draft to final, void and credit note (lifecycle), the document's
languages and formats (i18n), PDF and CSV rendering (render) and the monthly command (cli).

May import: core.accounts, core.usage, core.billing, core.pricing, core.errors, db.
"""
