"""Who is who and who may do what: partners, customer accounts and users (accounts), log-in and sessions
(auth, passwords), the acting user (actor), the permission matrix (permissions), "log in as" (impersonation)
and the audit log (audit).

May import: core.errors, core.validation, db. Everything else in core may import this package.
"""
