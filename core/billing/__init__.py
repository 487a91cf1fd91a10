"""Billing: price plans and their assignment (plans), plans in plain language (describe), rating a customer's
period (rating), who pays (modes), settling partner-paid usage as it arrives (settlement), the credits wallet
(wallet, with wallet_base, wallet_lots, wallet_reading), credit purchases as intents settled exactly once
(purchases, reconcile), purchase receipts (receipts), the payment gateway (payments) and threshold alerts
(alerts).

May import: core.accounts, core.usage, core.pricing, core.notify, core.errors, core.validation, db.
"""
