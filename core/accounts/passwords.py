"""Password hashing (argon2id through passlib's CryptContext, from libpass) and the password policy."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from passlib.context import CryptContext

from core.errors import Throttled

MIN_LENGTH = 12
MAX_LENGTH = 256

# Argon2id parameters: OWASP's recommended configuration m=19 MiB, t=2, p=1 (Password Storage Cheat Sheet).
# A check costs about 30 ms of one core and 19 MiB, so 20 people logging in at once on 2 cores wait well under a
# second. Hashes made with other parameters (the earlier m=64 MiB, t=3, p=4, which cost ~10x as much: 20
# logins at once took 13 s) still verify, and are rehashed to these parameters on the next successful login
# (verify_and_update; core.accounts.auth.authenticate stores the new hash).
OWASP = {"argon2__memory_cost": 19456, "argon2__rounds": 2, "argon2__parallelism": 1}
PREVIOUS = {"argon2__memory_cost": 65536, "argon2__rounds": 3, "argon2__parallelism": 4}  # before issue 18
PROFILES = {
    "default": OWASP,
    "previous": PREVIOUS,  # only to make hashes as they were stored before (tests, benchmarks)
    # For the test suite only (RC_PASSWORD_PROFILE=fast): same algorithm, cheaper parameters.
    "fast": {"argon2__memory_cost": 1024, "argon2__rounds": 1, "argon2__parallelism": 1},
}


@lru_cache(maxsize=4)
def context(profile: str | None = None) -> CryptContext:
    profile = profile or os.environ.get("RC_PASSWORD_PROFILE", "default")
    return CryptContext(schemes=["argon2"], deprecated="auto", argon2__type="ID", **PROFILES[profile])


# Each argon2id check takes 19 MiB and about 30 ms of a core (a hash with the previous parameters, until it is
# rehashed: 64 MiB and ~300 ms). At most MAX_CONCURRENT checks run at once in a process (the app serves every
# browser session from threads of one process); a check that waits longer than WAIT_S for a slot is refused
# as "busy" instead of piling up memory.
MAX_CONCURRENT = int(os.environ.get("RC_MAX_PASSWORD_CHECKS", "2"))
WAIT_S = float(os.environ.get("RC_PASSWORD_CHECK_WAIT_S", "10"))
_slots = threading.BoundedSemaphore(MAX_CONCURRENT)


class Busy(Throttled):
    """Too many password checks are running right now."""

    def __init__(self, retry_after_s: int = 5):
        super().__init__(retry_after_s)
        self.args = (f"The server is busy checking other logins. Try again in {retry_after_s} seconds.",)


def limit_concurrency(max_concurrent: int, wait_s: float) -> None:
    """Change the limit (tests; a deployment sets RC_MAX_PASSWORD_CHECKS / RC_PASSWORD_CHECK_WAIT_S)."""
    global _slots, MAX_CONCURRENT, WAIT_S
    MAX_CONCURRENT, WAIT_S = max_concurrent, wait_s
    _slots = threading.BoundedSemaphore(max_concurrent)


@contextmanager
def _slot() -> Iterator[None]:
    slots = _slots
    if not slots.acquire(timeout=WAIT_S):
        raise Busy()
    try:
        yield
    finally:
        slots.release()


def hash_password(password: str) -> str:
    with _slot():
        return context().hash(password)


def verify_and_update(password: str, password_hash: str) -> tuple[bool, str | None]:
    """(valid, new_hash): new_hash is set when the stored hash used outdated parameters."""
    with _slot():
        try:
            return context().verify_and_update(password, password_hash)
        except (ValueError, TypeError):
            return False, None


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return context().hash("timing-equaliser-not-a-password")


def burn_verify(password: str) -> None:
    """Spend the same time as a real verification (for unknown e-mail addresses)."""
    dummy = _dummy_hash()
    with _slot():
        context().verify(password, dummy)


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # 30,000 most common passwords

    return frozenset(FREQUENCY_LISTS["passwords"])


def password_problem(password: str, email: str | None = None) -> str | None:
    """Why this password is refused, or None. Length 12..256, no composition rules, common ones refused."""
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    lowered = password.lower()
    if len(set(lowered)) <= 2:
        return "This password is too easy to guess."
    common = _common_passwords()
    core_part = re.sub(r"[\d\W_]+$", "", lowered)  # "password1234!" -> "password"
    if lowered in common or (core_part and core_part in common and len(core_part) >= 4):
        return "This password is one of the most common passwords; choose another."
    if re.fullmatch(r"(0123456789|1234567890|abcdefghijkl|qwertyuiop)+.*", lowered):
        return "This password is too easy to guess."
    if email:
        local = email.split("@", 1)[0].lower()
        if len(local) >= 4 and local in lowered and len(lowered) - len(local) < 6:
            return "Do not base the password on your e-mail address."
    return None
