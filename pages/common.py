"""Shared page plumbing: the engine, the logged-in actor, role checks and running a user action.

Pages stay thin: read widgets, call core, render. No SQL and no money arithmetic here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from core.accounts.actor import Actor
from core.accounts.auth import REMEMBER_FOR, forget, load_actor, resume
from core.accounts.impersonation import impersonated_actor
from core.accounts.permissions import allowed
from core.bootstrap import bootstrap
from core.errors import DomainError, ValidationError
from db.engine import make_engine, unit_of_work

T = TypeVar("T")

AUTH_KEYS = ("auth_partner_id", "auth_user_id", "auth_version")

# The navigation: (section, script, title, icon, action the role must allow; None = every logged-in user).
# Home.py shows a page only when the role allows its action; each page checks again with require().
PAGES: list[tuple[str, str, str, str, str | None]] = [
    ("Home", "pages/overview.py", "Overview", ":material/home:", None),
    ("Customers", "pages/customers.py", "Customers", ":material/apartment:", "account.create"),
    ("Customers", "pages/users.py", "Users & roles", ":material/group:", "user.list"),
    # -- usage pages (issue 4) --
    ("Usage", "pages/usage_dashboard.py", "Usage overview", ":material/monitoring:", "usage.view"),
    ("Usage", "pages/usage_account.py", "Customer usage", ":material/query_stats:", "usage.view"),
    ("Usage", "pages/usage_import.py", "Import usage", ":material/upload_file:", "usage.import"),

    # -- pricing pages (issue 3) --
    ("Billing", "pages/pricing.py", "Pricing", ":material/sell:", "plan.view"),
    # -- two price layers (issue 10) --
    ("Billing", "pages/ratecards.py", "Rate cards", ":material/price_change:", "ratecard.view"),
    ("Billing", "pages/money.py", "Money", ":material/savings:", "margin.view"),

    # -- billing pages (issue 5) --
    ("Billing", "pages/wallet.py", "Credits wallet", ":material/account_balance_wallet:", "wallet.view"),
    ("Billing", "pages/billing_modes.py", "Billing modes", ":material/payments:", "billing.manage"),

    # -- statements pages (issue 5) --
    ("Billing", "pages/statements.py", "Statements", ":material/receipt_long:", "statement.view"),

    # -- lab pages (issue 6) --
    ("Billing", "pages/lab.py", "Billing-model lab", ":material/science:", "plan.manage"),

    # -- integrations (issue 17) --
    ("Integrations", "pages/api_keys.py", "API keys", ":material/key:", "apikey.manage"),
    ("Integrations", "pages/webhooks.py", "Webhooks & automation", ":material/webhook:", "webhook.manage"),

    ("Administration", "pages/partners.py", "Partners", ":material/handshake:", "partner.list"),
    ("Administration", "pages/audit.py", "Audit log", ":material/history:", "audit.view"),
    ("Account", "pages/profile.py", "My profile", ":material/person:", None),
]

PUBLIC_PAGES = [
    ("pages/login.py", "Log in", ":material/login:"),
    ("pages/signup.py", "Sign up", ":material/person_add:"),
]


# A customer sees one account: the customer drill-down is their usage page, the partner overview is not shown.
CUSTOMER_VIEW = {"pages/usage_dashboard.py": None, "pages/usage_account.py": "Usage"}


def visible_pages(actor: Actor) -> list[tuple[str, str, str, str]]:
    """The pages this actor's role may open, in navigation order."""
    out = []
    for section, path, title, icon, action in PAGES:
        if action is not None and not allowed(actor, action):
            continue
        if actor.account_id is not None and path in CUSTOMER_VIEW:
            if CUSTOMER_VIEW[path] is None:
                continue
            title = CUSTOMER_VIEW[path]
        out.append((section, path, title, icon))
    return out


@st.cache_resource(show_spinner=False)
def _engine(url: str | None) -> Engine:
    bootstrap()  # the usage hooks, once per process (idempotent)
    return make_engine(url)


def engine() -> Engine:
    import os

    return _engine(os.environ.get("DATABASE_URL"))


REMEMBER_COOKIE = "rc_remember"


def log_in(actor: Actor, remember_token: str | None = None, *, go_home: bool = True) -> None:
    st.session_state["auth_partner_id"] = actor.partner_id
    st.session_state["auth_user_id"] = actor.user_id
    st.session_state["auth_version"] = actor.session_version
    if go_home:
        st.session_state["go_home"] = True
    if remember_token:
        st.session_state["cookie_op"] = ("set", remember_token)
        # kept for log-out: the browser only sends a cookie set now with its next connection
        st.session_state["remember_token"] = remember_token


def log_out() -> None:
    """End the session, and the remembered login of this browser (server-side and its cookie)."""
    cookie = st.session_state.get("remember_token") or _cookie()
    if cookie:
        with unit_of_work(engine()) as s:
            forget(s, cookie)
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    st.session_state["go_home"] = True
    st.session_state["cookie_op"] = ("clear", None)
    st.session_state["_resume_tried"] = True  # the browser still sends the old cookie until it reloads


def _cookie() -> str | None:
    try:
        return st.context.cookies.get(REMEMBER_COOKIE)
    except Exception:  # no browser connection (tests, bare mode)
        return None


def render_cookie_ops() -> None:
    """Set or clear the remembered-login cookie in the browser (a script in the page; the value is the
    opaque token from core.accounts.auth.remember, URL-safe base64 and digits only)."""
    op = st.session_state.pop("cookie_op", None)
    if op is None:
        return
    kind, value = op
    secure = "; Secure" if str(getattr(st.context, "url", "") or "").startswith("https:") else ""
    if kind == "set" and value and all(c.isalnum() or c in "._-" for c in value):
        max_age = int(REMEMBER_FOR.total_seconds())
        cookie = f"{REMEMBER_COOKIE}={value}; Path=/; Max-Age={max_age}; SameSite=Strict{secure}"
    else:
        cookie = f"{REMEMBER_COOKIE}=; Path=/; Max-Age=0; SameSite=Strict{secure}"
    st.html(f"<script>document.cookie = {cookie!r};</script>", unsafe_allow_javascript=True)


def _resume_remembered() -> None:
    """A new browser session (reload, new tab): log in from the remembered-login cookie, once."""
    if st.session_state.get("_resume_tried"):
        return
    st.session_state["_resume_tried"] = True
    cookie = _cookie()
    if not cookie:
        return
    with unit_of_work(engine()) as s:
        actor = resume(s, cookie)
    if actor is not None:
        log_in(actor, go_home=False)
        st.session_state["remember_token"] = cookie
    else:
        st.session_state["cookie_op"] = ("clear", None)


def current_actor() -> Actor | None:
    """The logged-in user, re-read from the database on every rerun (so deactivation bites at once).

    While impersonating ("Log in as"), the actor is the customer's Manager with the staff member attached
    as impersonator; if either loses access, impersonation ends."""
    if st.session_state.get("auth_user_id") is None:
        _resume_remembered()
    pid, uid = st.session_state.get("auth_partner_id"), st.session_state.get("auth_user_id")
    actor = None
    if pid is not None and uid is not None:
        with Session(engine()) as s:
            actor = load_actor(s, int(pid), int(uid), st.session_state.get("auth_version"))
            imp = st.session_state.get("auth_impersonating")
            if actor is not None and imp:
                target = impersonated_actor(s, actor, imp[0], imp[1])
                if target is None:
                    st.session_state.pop("auth_impersonating", None)
                    st.session_state["flash"] = ("warning", "“Log in as” ended: access is no longer allowed.")
                else:
                    actor = target
        if actor is None:
            log_out()
            st.session_state["flash"] = ("warning", "Your session has ended. Please log in again.")
    return actor


def start_impersonation(target: Actor) -> None:
    st.session_state["auth_impersonating"] = (target.partner_id, target.user_id)
    st.session_state["go_home"] = True


def end_impersonation() -> None:
    st.session_state.pop("auth_impersonating", None)
    st.session_state["go_home"] = True


def require(action: str | None = None) -> Actor:
    """Stop the page unless a user is logged in and (when given) their role allows `action` somewhere."""
    actor = current_actor()
    if actor is None:
        st.warning("Please log in.")
        st.stop()
    if action is not None and not allowed(actor, action):
        st.error("You do not have access to this page.")
        st.stop()
    return actor  # type: ignore[return-value]


def run_action(fn: Callable[..., T], *args: Any, success: str | None = None, **kwargs: Any) -> T | None:
    """Run one core service in one transaction. Domain errors are shown (field errors are returned in
    st.session_state['field_errors'] for the form to show next to its fields) and nothing is written."""
    st.session_state["field_errors"] = {}
    try:
        with unit_of_work(engine()) as s:
            result = fn(s, *args, **kwargs)
    except ValidationError as exc:
        # Rerun so that each message shows next to its field (forms render before their submit is handled).
        st.session_state["field_errors"] = exc.errors
        st.session_state["flash"] = ("error", exc.errors.get("_form") or "Please correct the highlighted fields.")
        st.rerun()
    except DomainError as exc:
        st.error(str(exc))
        return None
    if success:
        st.toast(success)
        st.session_state["flash"] = ("success", success)
    return result


def read(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a read-only core query in its own short session."""
    with Session(engine(), expire_on_commit=False) as s:
        return fn(s, *args, **kwargs)


def field_error(field: str) -> None:
    """Show the error for `field` (from the last run_action) right below its widget."""
    msg = st.session_state.get("field_errors", {}).get(field)
    if msg:
        st.markdown(f":red[{msg}]")


def show_flash() -> None:
    flash = st.session_state.pop("flash", None)
    if flash:
        kind, msg = flash
        getattr(st, kind)(msg)
