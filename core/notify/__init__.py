"""Notifications: the outbox of e-mails and its delivery through SMTP (outbox), and webhooks: partners'
endpoints, signed deliveries with back-off, the delivery log (webhooks).

May import: core.accounts, core.errors, db.
"""
