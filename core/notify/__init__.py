"""Notifications: the outbox of e-mails and its delivery through SMTP (outbox).

May import: core.accounts, core.errors, db.
"""
