"""People in a scenario file: platform admins, partner staff and customer users, with e-mail addresses
unique across every file of the scenario and the database."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from core.accounts.passwords import password_problem
from core.validation import EMAIL_RE, normalise_email
from db.models import LoginDirectory
from seeds.scenario_checks import Check, table, text, unknown


class Seen:
    """E-mail addresses and partner names across all files of a scenario (and the database)."""

    def __init__(self, session: Session):
        self.session = session
        self.emails: dict[str, tuple[str, str, int | None]] = {}  # e-mail -> (file, path, line)
        self.partners: dict[str, str] = {}
        self.broken_plans: set[tuple[str, str]] = set()  # (partner name, code): reported once, no follow-ons


def _email(ck: Check, path: str, email: str, seen: Seen, password: str | None) -> str | None:
    if not EMAIL_RE.match(email):
        ck.fail(path, f"not a valid e-mail address: {email!r}")
        return None
    norm = normalise_email(email)
    if norm in seen.emails:
        f0, p0, l0 = seen.emails[norm]
        at = f"{f0}:{l0}" if l0 else f0
        ck.fail(path, f"duplicate e-mail {email!r} (also at {at}: {p0})")
    elif seen.session.get(LoginDirectory, norm) is not None:
        ck.fail(path, f"a user with e-mail {email!r} already exists in the database")
    else:
        seen.emails[norm] = (ck.file, path, ck.line(path))
    if password:
        problem = password_problem(password, email)
        if problem:
            ck.fail(path, f"the scenario password is refused for {email}: {problem}")
    return email


def person(ck: Check, path: str, raw: Any, seen: Seen, password: str | None,
           roles: tuple[str, ...] | None) -> dict[str, str] | None:
    u = table(ck, path, raw)
    unknown(ck, path, u, ("email", "name") + (("role",) if roles else ()))
    email = text(ck, f"{path}.email", u.get("email"))
    name = text(ck, f"{path}.name", u.get("name"))
    role = None
    if roles:
        role = u.get("role")
        if role not in roles:
            ck.fail(f"{path}.role", f"bad role {role!r}: use one of {', '.join(roles)}")
            role = None
    if email:
        email = _email(ck, f"{path}.email", email, seen, password)
    if email is None or name is None or (roles and role is None):
        return None
    return {"email": email, "name": name, **({"role": role} if role else {})}
