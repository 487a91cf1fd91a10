"""Shared page plumbing: the engine, the logged-in actor, role checks and running a user action.

Pages stay thin: read widgets, call core, render. No SQL and no money arithmetic here.
"""

from __future__ import annotations

import gc
import re
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from core.accounts import impersonation
from core.accounts.actor import Actor, bind_actor
from core.accounts.auth import REMEMBER_FOR, load_actor, logout, resume
from core.accounts.impersonation import RESUME_FOR, impersonated_actor, read_resume_token, resume_token
from core.accounts.permissions import allowed
from core.bootstrap import bootstrap
from core.errors import DomainError, NotFound, PermissionDenied, ValidationError
from db.engine import app_url, bind_scope, make_engine, normalise_url, partner_scope, unit_of_work
from db.pool import ping_when_idle

T = TypeVar("T")

# Every character that means something to Streamlit's Markdown (CommonMark + GFM + its own :colour[...],
# :emoji: and $latex$ extensions). A backslash before ASCII punctuation always renders the character itself.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~:$=&^\"'/])")


# Another tenant's id and an id that does not exist get the same answer (no probing of ids).
NOT_AVAILABLE = "This record does not exist, or you do not have access to it."


def user_message(exc: DomainError) -> str:
    """The message shown for a refused action or read, escaped for Markdown."""
    if isinstance(exc, NotFound | PermissionDenied):
        return md_escape(NOT_AVAILABLE)
    return md_escape(exc)


_AUTOLINK = re.compile(r"(?i)(?:[a-z][a-z0-9+.-]*:/|www\.)")


def md_escape(value: object) -> str:
    """User text (names, labels, messages that quote input) made safe for any Streamlit call that renders
    Markdown: st.markdown/write/title/header/caption/warning/info/error/success/toast, widget and metric
    labels, expander and dialog titles. The text shows exactly as typed, on one line, and can never become
    a link, an image, HTML, emphasis, a colour directive or an icon. Use it on every user string; never
    build Markdown from user text without it."""
    text = "" if value is None else str(value)
    text = " ".join(text.splitlines())  # no line structure (headings, lists, code blocks) from user text
    # GFM turns any http://... or www.... in the text into a link, escapes or not: an invisible word joiner
    # after the scheme (or "www") keeps it text.
    text = _AUTOLINK.sub(lambda m: m.group(0)[:-1] + "\u2060" + m.group(0)[-1], text)
    return _MD_SPECIAL.sub(r"\\\1", text)


plain = md_escape  # short alias for f-strings

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

APP_PAGE_PATHS = tuple(dict.fromkeys(path for _, path, _, _, _ in PAGES))  # every page behind the login

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
    # the least-privilege role (db/roles.py); idle connections are checked at checkout, busy ones not (db/pool.py)
    return ping_when_idle(make_engine(app_url(normalise_url(url) if url else None), pool_pre_ping=False))


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


def client_address() -> str | None:
    """The client's address for login throttling: the TCP peer (st.context.ip_address; None on localhost),
    or, when the peer is a trusted reverse proxy (RC_TRUSTED_PROXIES, comma-separated), the address that
    proxy appended last to X-Forwarded-For. See docs/deployment.md."""
    import os

    try:
        peer = st.context.ip_address or "127.0.0.1"
        headers = st.context.headers
    except Exception:  # no browser connection (tests, bare mode)
        return None
    if not isinstance(peer, str):  # AppTest has no real connection
        return None
    trusted = {p.strip() for p in os.environ.get("RC_TRUSTED_PROXIES", "").split(",") if p.strip()}
    forwarded = headers.get("X-Forwarded-For") if headers else None
    forwarded = forwarded if isinstance(forwarded, str) else None
    if peer in trusted and forwarded:
        return forwarded.split(",")[-1].strip()[:64] or peer
    return None if peer == "127.0.0.1" else peer


def log_out(actor: Actor | None = None, *, audited: bool = True) -> None:
    """End the session, and the remembered login of this browser (server-side and its cookie); audited."""
    cookie = st.session_state.get("remember_token") or _cookie()
    if cookie or (actor is not None and audited):
        with unit_of_work(engine()) as s:
            if actor is not None:
                bind_actor(s, actor)  # row-level security (a cookie binds its own tenant)
            logout(s, actor if audited else None, cookie)
    brand = st.session_state.get("brand_slug")  # the login page keeps the partner's brand for its clients
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    if brand:
        st.session_state["brand_slug"] = brand
    st.session_state["go_home"] = True
    st.session_state["cookie_op"] = ("clear", None)
    st.session_state["imp_cookie_op"] = ("clear", None)
    st.session_state["_resume_tried"] = True  # the browser still sends the old cookie until it reloads


def _cookie(name: str = REMEMBER_COOKIE) -> str | None:
    try:
        return st.context.cookies.get(name)
    except Exception:  # no browser connection (tests, bare mode)
        return None


IMPERSONATION_COOKIE = "rc_imp"  # "Log in as" survives a reload (core.accounts.impersonation.resume_token)


def render_cookie_ops() -> None:
    """Set or clear the remembered-login cookie and the "Log in as" cookie in the browser (a script in the
    page; the values are opaque tokens from core.accounts.auth.remember / impersonation.resume_token, URL-safe
    base64, hex and digits only)."""
    secure = "; Secure" if str(getattr(st.context, "url", "") or "").startswith("https:") else ""
    scripts = []
    for state_key, name, max_age in (("cookie_op", REMEMBER_COOKIE, int(REMEMBER_FOR.total_seconds())),
                                     ("imp_cookie_op", IMPERSONATION_COOKIE, int(RESUME_FOR.total_seconds()))):
        op = st.session_state.pop(state_key, None)
        if op is None:
            continue
        kind, value = op
        if kind == "set" and value and all(c.isalnum() or c in "._-" for c in value):
            cookie = f"{name}={value}; Path=/; Max-Age={max_age}; SameSite=Strict{secure}"
        else:
            cookie = f"{name}=; Path=/; Max-Age=0; SameSite=Strict{secure}"
        scripts.append(f"document.cookie = {cookie!r};")
    if scripts:
        st.html(f"<script>{' '.join(scripts)}</script>", unsafe_allow_javascript=True)


# Enter in a date field applies it: the date input commits what was typed only when it loses focus, so on
# Enter the calendar that typing opened is closed (Escape), the field is left and, inside a form (the usage pages'
# custom range), the form is submitted. Installed
# once per browser page; plain text, no user data.
_ENTER_APPLIES_DATES = """<script>
if (!window.__rcEnterDates) {
  window.__rcEnterDates = true;
  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter' || !e.target.closest) return;
    const field = e.target.closest('[data-testid="stDateInput"]');
    if (!field) return;
    e.preventDefault();
    // close the calendar that typing opened, as Escape does (leaving the field alone leaves it open over the page)
    e.target.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape', code: 'Escape', bubbles: true, cancelable: true}));
    if (document.activeElement) document.activeElement.blur();
    const form = field.closest('[data-testid="stForm"]');
    const submit = form && form.querySelector('[data-testid="stBaseButton-secondaryFormSubmit"], '
      + '[data-testid="stBaseButton-primaryFormSubmit"], button[kind*="FormSubmit"]');
    if (submit) setTimeout(() => submit.click(), 150);
  }, true);
}
</script>"""


_HEX = re.compile(r"#[0-9a-f]{6}")


def brand_css(primary: str | None, sidebar: str | None) -> str:
    """The partner's colours over the app's theme (white label): primary buttons, links, the selected page,
    focus rings and checkboxes in `primary`; the sidebar's background in `sidebar`. Only #rrggbb values (checked
    again here) reach the style sheet."""
    rules = []
    if primary and _HEX.fullmatch(primary):
        rules.append(
            f'[data-testid="stBaseButton-primary"], [data-testid="stBaseButton-primaryFormSubmit"] '
            f'{{background-color: {primary} !important; border-color: {primary} !important;}}'
            f' .stApp a, [data-testid="stMarkdownContainer"] a {{color: {primary};}}'
            f' [data-testid="stSidebarNav"] a[aria-current="page"] span {{color: {primary} !important;}}'
            f' [data-testid="stTab"][aria-selected="true"] p {{color: {primary};}}'
            f' [data-baseweb="tab-highlight"] {{background-color: {primary} !important;}}'
            f' h1 {{color: {primary};}}')
    if sidebar and _HEX.fullmatch(sidebar):
        rules.append(f'[data-testid="stSidebar"] {{background-color: {sidebar} !important;}}')
    return f"<style>{' '.join(rules)}</style>" if rules else ""


def enter_applies_dates() -> None:
    """Make Enter in any date field apply it (see _ENTER_APPLIES_DATES)."""
    with st.sidebar:
        st.html(_ENTER_APPLIES_DATES, unsafe_allow_javascript=True)


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
        _resume_impersonation(actor, cookie)
    else:
        st.session_state["cookie_op"] = ("clear", None)


# The actor read by this script run, keyed by an object Streamlit makes anew for every run (the run context's
# fragment coordinator): the router and the page's require() share one read per click instead of two.
_RUN_ACTOR: weakref.WeakKeyDictionary[object, tuple[tuple, Actor]] = weakref.WeakKeyDictionary()


def _this_run() -> object | None:
    """An object that lives exactly as long as this script run; None outside a Streamlit run."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx(suppress_warning=True)
    return getattr(ctx, "parallel_coordinator", None) if ctx is not None else None


def _resume_impersonation(staff: Actor, remember_cookie: str) -> None:
    """A reload during "Log in as": resume it from this browser's signed, short-lived token (audited), with
    the customer "Back" returns to; an invalid or expired token is cleared."""
    token = _cookie(IMPERSONATION_COOKIE)
    if not token:
        return
    found = read_resume_token(remember_cookie, token)
    target = None
    if found is not None:
        with unit_of_work(engine()) as s:
            bind_actor(s, staff)  # row-level security: the staff member's own scope
            target = impersonation.resume(s, staff, found[0], found[1])
    if target is None:
        st.session_state["imp_cookie_op"] = ("clear", None)
        return
    st.session_state["auth_impersonating"] = (target.partner_id, target.user_id)
    st.session_state["impersonation_from"] = found[2] if found else None


def current_actor() -> Actor | None:
    """The logged-in user, re-read from the database once per rerun (so deactivation bites at the next click).

    While impersonating ("Log in as"), the actor is the customer's Manager with the staff member attached
    as impersonator; if either loses access, impersonation ends."""
    if st.session_state.get("auth_user_id") is None:
        _resume_remembered()
    pid, uid = st.session_state.get("auth_partner_id"), st.session_state.get("auth_user_id")
    state = (pid, uid, st.session_state.get("auth_version"), st.session_state.get("auth_impersonating"))
    run = _this_run()
    memo = _RUN_ACTOR.get(run) if run is not None else None
    if memo is not None and memo[0] == state:
        return memo[1]
    actor = None
    if pid is not None and uid is not None:
        with Session(engine()) as s:
            bind_scope(s, partner_scope(int(pid)))  # row-level security: the logged-in user's tenant
            actor = load_actor(s, int(pid), int(uid), st.session_state.get("auth_version"))
            imp = st.session_state.get("auth_impersonating")
            if actor is not None and imp:
                bind_scope(s, partner_scope(int(imp[0])))  # the impersonated Manager's tenant
                target = impersonated_actor(s, actor, imp[0], imp[1])
                if target is None:
                    st.session_state.pop("auth_impersonating", None)
                    st.session_state["flash"] = ("warning", "“Log in as” ended: access is no longer allowed.")
                else:
                    actor = target
        if actor is None:
            log_out(audited=False)
            st.session_state["flash"] = ("warning", "Your session has ended. Please log in again.")
        elif run is not None:
            _RUN_ACTOR[run] = ((pid, uid, state[2], st.session_state.get("auth_impersonating")), actor)
    return actor


def start_impersonation(target: Actor, came_from: tuple[int, int] | None = None) -> None:
    """Start "Log in as"; `came_from` is the customer (partner_id, account_id) that "Back" returns to."""
    st.session_state["auth_impersonating"] = (target.partner_id, target.user_id)
    st.session_state["impersonation_from"] = came_from
    st.session_state["go_home"] = True
    remembered = st.session_state.get("remember_token") or _cookie()
    if remembered:  # a reload resumes it (without a remembered login, a reload logs out anyway)
        st.session_state["imp_cookie_op"] = ("set", resume_token(remembered, target, came_from))


def end_impersonation() -> None:
    """End "Log in as" and go back to the customer it was started from (Customers page), else home."""
    st.session_state.pop("auth_impersonating", None)
    st.session_state["imp_cookie_op"] = ("clear", None)
    came_from = st.session_state.pop("impersonation_from", None)
    if came_from:
        st.session_state["return_to_customer"] = tuple(came_from)
        st.session_state["go_to"] = "pages/customers.py"
    else:
        st.session_state["go_home"] = True


def _through_the_router() -> None:
    """A new browser session opened at a page's address (a shared link, a reload) runs that page file alone
    (Streamlit's pages/ folder), without the router. Remember where it was headed, with its query (the
    range), and go through the router: it logs the user in (or resumes the remembered login) and comes
    back here inside the navigation."""
    if st.session_state.get("_routed"):
        return
    import inspect
    from pathlib import Path

    page = next((Path(f.filename).stem for f in inspect.stack()
                 if Path(f.filename).parent.name == "pages" and Path(f.filename).stem != "common"), None)
    if page is None:
        return
    st.session_state["after_login"] = (page, st.query_params.to_dict())
    try:
        st.switch_page("Home.py", query_params=st.query_params.to_dict())
    except st.errors.StreamlitAPIException:  # run without the app around it (tests of one page alone)
        st.session_state.pop("after_login", None)


def require(action: str | None = None) -> Actor:
    """Stop the page unless a user is logged in and (when given) their role allows `action` somewhere."""
    _through_the_router()
    actor = current_actor()
    if actor is None:
        st.warning("Please log in.")
        st.stop()
    if action is not None and not allowed(actor, action):
        st.error("You do not have access to this page.")
        st.stop()
    return actor  # type: ignore[return-value]


def run_action(fn: Callable[..., T], *args: Any, success: str | None = None, form: str | None = None,
               **kwargs: Any) -> T | None:
    """Run one core service in one transaction. Domain errors are shown (field errors are returned in
    st.session_state['field_errors'] for the form to show next to its fields) and nothing is written.

    `form` names the form the action came from: its field errors show there only (not under another form
    that happens to use the same field names), and `keep_open(form)` tells its expander to stay open.
    A success message is shown once, as a banner after the rerun (no toast on top of it)."""
    st.session_state["field_errors"] = {}
    st.session_state["field_errors_form"] = form
    try:
        with unit_of_work(engine()) as s:
            result = fn(_scoped(s, args, kwargs), *args, **kwargs)
    except ValidationError as exc:
        # Rerun so that each message shows next to its field (forms render before their submit is handled).
        st.session_state["field_errors"] = exc.errors
        if form is not None:
            st.session_state[f"_open_{form}"] = True
        st.session_state["flash"] = ("error", exc.errors.get("_form") or "Please correct the fields marked below.")
        st.rerun()
    except DomainError as exc:
        st.error(user_message(exc))
        return None
    if success:
        st.session_state["flash"] = ("success", success)
    return result


def form_errors(form: str | None = None) -> dict[str, str]:
    """The field errors of the last refused action, if it came from `form` (or from no named form)."""
    errors = st.session_state.get("field_errors") or {}
    owner = st.session_state.get("field_errors_form")
    if form is not None and owner is not None and owner != form:
        return {}
    return errors


def form_expander(label: str, form: str, *, icon: str | None = None, expanded: bool = False):
    """The expander holding `form`, keyed so that its open/closed state lives in the session: a banner
    above it or a rerun never collapses it, and after a refused submit it opens (the messages next to the
    fields are visible)."""
    key = f"exp_{form}"
    if st.session_state.pop(f"_open_{form}", False):
        st.session_state[key] = True
    elif key not in st.session_state:
        st.session_state[key] = expanded
    return st.expander(label, icon=icon, key=key, on_change="rerun")


def clear_widgets(*keys: str) -> None:
    """Empty a form after a successful create (so a second click does not create a duplicate)."""
    for key in keys:
        st.session_state.pop(key, None)


def read(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a read-only core query in its own short session. Domain errors propagate (a page may catch
    them); one that no page catches is shown as its message by the router (Home.py), never as a crash."""
    with Session(engine(), expire_on_commit=False) as s:
        return fn(_scoped(s, args, kwargs), *args, **kwargs)


def _scoped(s: Session, args: tuple, kwargs: dict) -> Session:
    """Bind the session to the tenant of the actor the service is called with (row-level security): every page
    action goes through run_action or read, so no page can forget it."""
    actor = next((a for a in (*args, *kwargs.values()) if isinstance(a, Actor)), None)
    return bind_actor(s, actor) if actor is not None else s


def show_domain_error(exc: DomainError) -> None:
    """A domain error no page caught (a range that is too long, a record that is gone, no access)."""
    if isinstance(exc, ValidationError):
        st.error(md_escape(" ".join(str(m) for m in exc.errors.values())), icon=":material/error:")
    else:
        st.error(user_message(exc), icon=":material/error:")


def field_error(field: str, form: str | None = None) -> None:
    """Show the error for `field` (from the last run_action of `form`) right below its widget."""
    msg = form_errors(form).get(field)
    if msg:
        st.error(md_escape(msg), icon=":material/error:")


def show_flash() -> None:
    """The message left by the previous run (plain text, escaped here)."""
    flash = st.session_state.pop("flash", None)
    if flash:
        kind, msg = flash  # flash messages are plain text (they often quote names)
        getattr(st, kind)(md_escape(msg))


# st.date_input's format per language (its formats are day/month/year with "/", "-" or "."), as the app
# writes dates in that language (core.pricing.money.format_date): en_GB 30/11/2026, de and nb 30.11.2026.
DATE_INPUT_FORMATS = {"en": "DD/MM/YYYY", "de": "DD.MM.YYYY", "nb": "DD.MM.YYYY"}


def date_input_format(language: str = "en") -> str:
    """The `format` for every st.date_input of the app (one date format per language)."""
    return DATE_INPUT_FORMATS.get(language, DATE_INPUT_FORMATS["en"])


def pick_partner(actor: Actor, key: str, label: str = "Partner") -> int:
    """The partner selector of an admin page that works on one partner: resellers first, the platform's
    own ("Platform direct", usually empty) last, so the page opens on a partner with customers."""
    from core.accounts.accounts import list_partners

    partners = sorted(read(list_partners, actor), key=lambda p: (p.is_house, p.name.lower()))
    names = {p.id: p.name for p in partners}
    return st.selectbox(label, list(names), format_func=lambda i: plain(names[i]), key=key)


def money_format(currency: str) -> str:
    """A numeric column's format with the currency's minor unit (EUR 2 decimals, JPY 0, KWD 3)."""
    from core.pricing.money import CURRENCY_MINOR_UNITS

    return f"%,.{CURRENCY_MINOR_UNITS.get(currency, 2)}f"


def numeric(df, *cols: str):
    """Display only: Decimal columns as numbers (right-aligned, formatted by column_config); core rounded them.
    None (unknown) stays an empty cell."""
    import pandas as pd

    for col in cols:
        df[col] = pd.to_numeric(df[col], errors="coerce")
    return df


_startup_frozen = False


def freeze_startup_objects() -> None:
    """Once per server process, after its first script run: keep every object alive by then (the modules of
    Streamlit, pandas, plotly and SQLAlchemy, the app's own) out of the garbage collector's full passes
    (gc.freeze). A full pass then walks only what sessions allocated since: in a process with all of these
    loaded, such a pass took 60-90 ms and landed in whichever page run triggered it; the bench saw it as the
    p95 of the dashboard queries (docs/performance.md). Objects of later sessions are collected as before."""
    global _startup_frozen
    if not _startup_frozen:
        _startup_frozen = True
        gc.freeze()

