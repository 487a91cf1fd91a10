"""Domain errors. Pages catch these and show their message; nothing is written when one is raised."""

from __future__ import annotations


class DomainError(Exception):
    """Base class of every error a user may see."""


class ValidationError(DomainError):
    """Bad input. `errors` maps a field name to a message shown next to that field."""

    def __init__(self, errors: dict[str, str] | str, field: str = "_form"):
        if isinstance(errors, str):
            errors = {field: errors}
        self.errors: dict[str, str] = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" if k != "_form" else v for k, v in self.errors.items()))


class PermissionDenied(DomainError):
    """The acting user may not do this (wrong role or another tenant's record)."""


class NotFound(DomainError):
    """The record does not exist (or is not visible to the actor)."""


class Conflict(DomainError):
    """The change conflicts with the current state (duplicate, wrong status, ...)."""


class AuthError(DomainError):
    """Login failed. The message is deliberately the same for unknown e-mail and wrong password."""


class Throttled(AuthError):
    """Too many failed logins for this e-mail address; try again later."""

    def __init__(self, retry_after_s: int):
        self.retry_after_s = retry_after_s
        super().__init__(f"Too many failed attempts. Try again in {retry_after_s} seconds.")
