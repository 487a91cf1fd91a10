"""Credit purchases, intent before money (issue 11; see docs/wallet.md "Purchases").

1. A purchase intent (credits, price, gateway key) is written and COMMITTED in its own transaction.
2. The gateway is called outside any transaction and outside the wallet lock.
3. The answer settles the intent exactly once, in its own transaction: approved -> charge, ledger entry
   (linked to the intent, and through it to the draw that triggered an automatic purchase), paid lot,
   receipt; declined -> charge row, back-off state and ONE notice. The guard is the intent's status
   (`pending` -> `credited` / `declined` under its row lock), so a retry or a reconciliation settles nothing
   twice.
4. Whatever dies in between leaves a `pending` intent: `core.billing.reconcile.reconcile` asks the gateway
   by key.

Keys: `purchase:{partner}:{form key}:{attempt}` for manual purchases (a new attempt after a decline), and
`auto-buy:{wallet}:{attempt}` for automatic ones, with an attempt counter that is never reset; a retry of
the same attempt reuses its key. Automatic purchases run in a background thread started by the draw
(:func:`set_runner` replaces it), so draws never wait for the gateway.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from core.accounts import audit
from core.accounts.actor import Actor
from core.accounts.permissions import authorize
from core.billing import receipts
from core.billing.payments import (
    ChargeResult,
    IdempotencyKeyReused,
    PaymentDeclined,
    engine_of,
    get_gateway,
)
from core.billing.wallet_base import (
    AUTO_BUY_BACKOFF,
    AUTO_BUY_MAX_ATTEMPTS,
    S,
    W,
    after_credit_in,
    credits_value,
    default_method,
    insert_entry,
    lock_wallet,
    price_steps,
    quote_from_steps,
    set_wallet,
    utcnow,
    wallet_row,
)
from core.billing.wallet_lots import add_lot
from core.errors import NotFound, ValidationError
from core.notify import outbox as notify
from core.pricing.money import format_money, format_quantity
from db.engine import tenant_session
from db.models.wallet import PaymentCharge, PaymentMethod, PurchaseIntent, WalletRefund

log = logging.getLogger(__name__)
I = PurchaseIntent.__table__  # noqa: E741
CH = PaymentCharge.__table__
RF = WalletRefund.__table__

# Test seam: called as FAULT_HOOK(stage, session) at the start of a settlement transaction
# (stage 'approved' / 'declined'), e.g. to kill that backend in a fault test.
FAULT_HOOK: Callable[[str, Session], None] | None = None


# ---------------------------------------------------------------- running intents in the background

def _thread_runner(engine: Engine, intent_id: tuple[int, int], now: datetime) -> None:
    th = threading.Thread(target=_run_quietly, args=(engine, intent_id, now), daemon=True,
                          name=f"purchase-{intent_id[1]}")
    with _threads_lock:
        _threads.append(th)
    th.start()


_threads: list[threading.Thread] = []
_threads_lock = threading.Lock()
_runner: Callable[[Engine, tuple[int, int], datetime], None] = _thread_runner


def _run_quietly(engine: Engine, intent_id: tuple[int, int], now: datetime) -> None:
    try:
        run_intent(engine, intent_id, now)
    except Exception:  # noqa: BLE001 - the intent stays pending; reconcile settles it
        log.exception("purchase intent %s left pending", intent_id)


def set_runner(runner: Callable[[Engine, tuple[int, int], datetime], None] | None) -> None:
    """How a draw starts an automatic purchase: default a background thread; None restores it. A runner
    that does nothing leaves the intent pending for reconcile (the periodic job)."""
    global _runner
    _runner = runner or _thread_runner


def wait_for_purchases(timeout: float = 60) -> bool:
    """Join the background purchase threads started so far (tests, benchmarks, process exit). Returns False
    when some are still running after `timeout` seconds (their intents stay pending for reconcile)."""
    deadline = time.monotonic() + timeout
    while True:
        with _threads_lock:
            pending = [t for t in _threads if t.is_alive()]
            _threads[:] = pending
        if not pending:
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        pending[0].join(left)


# A short-lived process (a CLI import) lets its purchases finish before it exits.
atexit.register(wait_for_purchases, 30)


# ---------------------------------------------------------------- the intent

def intent_row(session: Session, intent_id: tuple[int, int], *, lock: bool = False) -> Any:
    q = select(I).where(I.c.partner_id == intent_id[0], I.c.id == intent_id[1])
    row = session.execute(q.with_for_update() if lock else q).first()
    if row is None:
        raise NotFound(f"Purchase intent {intent_id[1]} does not exist.")
    return row


def _new_intent(session: Session, w: Any, kind: str, base_key: str, attempt: int, key: str, credits: Decimal,
                method: Any, now: datetime, **extra: Any) -> tuple[int, int]:
    q = quote_from_steps(price_steps(session, w.partner_id, w.currency), credits, w.currency)
    intent_id = session.execute(I.insert().values(
        partner_id=w.partner_id, wallet_id=w.id, kind=kind, status="pending", base_key=base_key, attempt=attempt,
        idempotency_key=key, credits=q.credits, amount=q.amount, currency=q.currency,
        price_per_credit=q.price_per_credit, method_id=method.id if method else None, requested_at=now, **extra,
    ).returning(I.c.id)).scalar_one()
    return (w.partner_id, intent_id)


def _token(engine: Engine, intent: Any) -> str | None:
    if intent.method_id is None:
        return None
    with tenant_session(engine, intent.partner_id) as s:
        return s.scalar(select(PaymentMethod.token).where(PaymentMethod.partner_id == intent.partner_id,
                                                          PaymentMethod.id == intent.method_id))


def run_intent(engine: Engine, intent_id: tuple[int, int], now: datetime, *, token: str | None = None) -> str:
    """Charge a pending intent (with its own key) and settle it. Returns the intent's final status."""
    with tenant_session(engine, intent_id[0]) as s:
        intent = intent_row(s, intent_id)
    if intent.status != "pending":
        return intent.status
    token = token or _token(engine, intent)
    if token is None:
        result = ChargeResult(False, None, "No payment method on file.")
    else:
        result = get_gateway().charge(token, intent.amount, intent.currency, intent.idempotency_key)
    return settle(engine, intent_id, result, now)


def settle(engine: Engine, intent_id: tuple[int, int], result: ChargeResult, now: datetime) -> str:
    if result.approved:
        return credit_intent(engine, intent_id, result.gateway_ref, now)
    return decline_intent(engine, intent_id, result.decline_reason or "declined", now)


def _charge_values(intent: Any) -> dict[str, Any]:
    return dict(partner_id=intent.partner_id, method_id=intent.method_id, amount=intent.amount,
                currency=intent.currency, reason=intent.kind, credits=intent.credits,
                idempotency_key=intent.idempotency_key)


def credit_intent(engine: Engine, intent_id: tuple[int, int], gateway_ref: str | None, now: datetime) -> str:
    """Approved: in one transaction, exactly once (intent status guard): charge, ledger entry, lot, receipt."""
    with tenant_session(engine, intent_id[0]) as s, s.begin():
        if FAULT_HOOK is not None:
            FAULT_HOOK("approved", s)
        return _credit(s, intent_id, gateway_ref, now)


def _credit(s: Session, intent_id: tuple[int, int], gateway_ref: str | None, now: datetime) -> str:
    intent = intent_row(s, intent_id, lock=True)
    if intent.status != "pending":
        return intent.status
    w = lock_wallet(s, intent.partner_id)
    charge_id = s.execute(pg_insert(CH).values(status="approved", gateway_ref=gateway_ref, **_charge_values(intent))
                          .returning(CH.c.id)).scalar_one()
    auto = intent.kind == "auto_purchase"
    entry_id, balance = insert_entry(
        s, w, kind=intent.kind, credits=intent.credits, amount=intent.amount, currency=intent.currency,
        charge_id=charge_id, idempotency_key=intent.idempotency_key, intent_id=intent.id,
        created_by=intent.created_by,
        event_ref={"trigger_key": intent.trigger_key, "account_id": intent.trigger_account_id} if auto else None,
        reason=("Automatic purchase" if auto else "Purchase") + f": {format_quantity(intent.credits)} credits at "
               f"{intent.price_per_credit.normalize()} {intent.currency} each")
    add_lot(s, w, entry_id, balance, intent.credits, "paid", price_per_credit=intent.price_per_credit,
            currency=intent.currency)
    s.execute(update(I).where(I.c.partner_id == intent.partner_id, I.c.id == intent.id).values(
        status="credited", gateway_ref=gateway_ref, entry_id=entry_id, charge_id=charge_id, settled_at=now))
    receipts.issue_receipt(s, intent, entry_id, now.date())
    if auto:  # one purchase per depletion: armed again only if it lifted the balance above 0
        values: dict[str, Any] = {"auto_buy_count": w.auto_buy_count + 1, "auto_buy_armed": balance > 0}
        if w.low_balance_threshold is not None and balance >= w.low_balance_threshold:
            values["reminder_armed"] = True
        set_wallet(s, w, **values)
        s.execute(update(S).where(S.c.partner_id == w.partner_id, S.c.wallet_id == w.id).values(
            failures=0, next_retry_at=None, gave_up=False, last_error=None, updated_at=func.now()))
    else:
        after_credit_in(s, w, balance)
    return "credited"


def decline_intent(engine: Engine, intent_id: tuple[int, int], why: str, now: datetime) -> str:
    """Declined: charge row, and for an automatic purchase the back-off and ONE notice, in one transaction
    (the intent status guard makes a second settlement of the same attempt a no-op). No wallet lock."""
    with tenant_session(engine, intent_id[0]) as s, s.begin():
        s.execute(select(func.set_config("lock_timeout", "10s", True)))
        if FAULT_HOOK is not None:
            FAULT_HOOK("declined", s)
        return _decline(s, intent_id, why, now)


def _decline(s: Session, intent_id: tuple[int, int], why: str, now: datetime) -> str:
    intent = intent_row(s, intent_id, lock=True)
    if intent.status != "pending":
        return intent.status
    s.execute(update(I).where(I.c.partner_id == intent.partner_id, I.c.id == intent.id).values(
        status="declined", decline_reason=why, settled_at=now))
    if intent.method_id is not None:
        s.execute(pg_insert(CH).values(status="declined", decline_reason=why, **_charge_values(intent))
                  .on_conflict_do_nothing())
    if intent.kind == "auto_purchase":
        _record_auto_decline(s, intent, why, now)
    return "declined"


def _record_auto_decline(s: Session, intent: Any, why: str, now: datetime) -> None:
    state = s.execute(select(S).where(S.c.partner_id == intent.partner_id, S.c.wallet_id == intent.wallet_id)
                      .with_for_update()).first()
    failures = (state.failures if state else 0) + 1
    gave_up = failures >= AUTO_BUY_MAX_ATTEMPTS
    next_retry = None if gave_up else now + AUTO_BUY_BACKOFF[min(failures, len(AUTO_BUY_BACKOFF)) - 1]
    values = dict(failures=failures, next_retry_at=next_retry, last_error=why, gave_up=gave_up, updated_at=func.now())
    s.execute(pg_insert(S).values(partner_id=intent.partner_id, wallet_id=intent.wallet_id, **values)
              .on_conflict_do_update(index_elements=["partner_id", "wallet_id"], set_=values))
    money = format_money(intent.amount, intent.currency)
    what = f"The automatic purchase of {format_quantity(intent.credits)} credits ({money}) was declined"
    if gave_up:
        notify.notify(s, intent.partner_id, "auto_buy_failed", "Automatic credit purchase stopped",
                      f"{what} {failures} times ({why}). It will not be tried again until you buy credits or "
                      "update your payment method and settings.")
    else:
        notify.notify(s, intent.partner_id, "auto_buy_failed", "Automatic credit purchase declined",
                      f"{what}: {why} Attempt {failures} of {AUTO_BUY_MAX_ATTEMPTS}; the next attempt is not "
                      f"before {next_retry:%Y-%m-%d %H:%M} UTC.")


# ---------------------------------------------------------------- automatic purchases

def start_auto_buy(session: Session, w: Any, now: datetime, *, trigger_key: str | None = None,
                   account_id: int | None = None, run: bool = True) -> tuple[str, tuple[int, int] | None]:
    """Called under the wallet lock by a draw that needs an automatic purchase. Decides in its OWN committed
    transaction (never waiting for the gateway): 'pending' (an intent is open, or was just made and handed
    to the runner), 'waiting' (declined attempt, back-off not over), 'gave_up', or 'declined' (no card)."""
    early = _no_new_attempt(session, w, now)  # committed state, read without a second transaction
    if early is not None:
        return early
    engine = engine_of(session)
    with tenant_session(engine, w.partner_id) as s, s.begin():
        s.execute(select(func.set_config("lock_timeout", "10s", True)))
        if _wallet_row_visible(s, w) is False:
            return _auto_buy_in_session(session, w, now, trigger_key, account_id)
        state = s.execute(select(S).where(S.c.partner_id == w.partner_id, S.c.wallet_id == w.id)
                          .with_for_update()).first()
        open_id = s.execute(select(I.c.id).where(I.c.partner_id == w.partner_id, I.c.wallet_id == w.id,
                                                 I.c.kind == "auto_purchase", I.c.status == "pending")).scalar()
        if open_id is not None:
            return "pending", (w.partner_id, open_id)
        if state is not None and state.gave_up:
            return "gave_up", None
        if state is not None and state.next_retry_at is not None and state.next_retry_at > now:
            return "waiting", None
        attempt = (state.attempts if state else 0) + 1
        s.execute(pg_insert(S).values(partner_id=w.partner_id, wallet_id=w.id, attempts=attempt)
                  .on_conflict_do_update(index_elements=["partner_id", "wallet_id"],
                                         set_={"attempts": attempt, "updated_at": func.now()}))
        method = default_method(s, w.partner_id)
        intent_id = _new_intent(s, w, "auto_purchase", f"auto-buy:{w.id}", attempt, f"auto-buy:{w.id}:{attempt}",
                                w.auto_buy_credits, method, now, trigger_key=trigger_key,
                                trigger_account_id=account_id)
    if method is None:
        decline_intent(engine, intent_id, "No payment method on file.", now)
        return "declined", intent_id
    if run:
        _runner(engine, intent_id, now)
    return "pending", intent_id


def open_auto_purchase(session: Session, w: Any) -> int | None:
    """The wallet's automatic purchase still pending at the gateway, if any (committed state)."""
    return session.execute(select(I.c.id).where(I.c.partner_id == w.partner_id, I.c.wallet_id == w.id,
                                                I.c.kind == "auto_purchase", I.c.status == "pending")).scalar()


def _no_new_attempt(session: Session, w: Any, now: datetime) -> tuple[str, tuple[int, int] | None] | None:
    open_id = open_auto_purchase(session, w)
    if open_id is not None:
        return "pending", (w.partner_id, open_id)
    state = session.execute(select(S.c.gave_up, S.c.next_retry_at).where(S.c.partner_id == w.partner_id,
                                                                         S.c.wallet_id == w.id)).first()
    if state is not None and state.gave_up:
        return "gave_up", None
    if state is not None and state.next_retry_at is not None and state.next_retry_at > now:
        return "waiting", None
    return None


def _wallet_row_visible(s: Session, w: Any) -> bool:
    return s.execute(select(func.count()).select_from(W).where(W.c.partner_id == w.partner_id,
                                                               W.c.id == w.id)).scalar_one() > 0


def _auto_buy_in_session(session: Session, w: Any, now: datetime, trigger_key: str | None,
                         account_id: int | None) -> tuple[str, tuple[int, int] | None]:
    """The wallet was created in the caller's own, uncommitted transaction (a demo loader): nothing outside
    it can record an intent, so the purchase runs inside it — DEMO gateway only (it moves no money)."""
    if get_gateway().name != "demo":
        return "waiting", None
    state = session.execute(select(S).where(S.c.partner_id == w.partner_id, S.c.wallet_id == w.id)).first()
    attempt = (state.attempts if state else 0) + 1
    session.execute(pg_insert(S).values(partner_id=w.partner_id, wallet_id=w.id, attempts=attempt)
                    .on_conflict_do_update(index_elements=["partner_id", "wallet_id"], set_={"attempts": attempt}))
    method = default_method(session, w.partner_id)
    intent_id = _new_intent(session, w, "auto_purchase", f"auto-buy:{w.id}", attempt, f"auto-buy:{w.id}:{attempt}",
                            w.auto_buy_credits, method, now, trigger_key=trigger_key, trigger_account_id=account_id)
    res = (get_gateway().charge(method.token, intent_row(session, intent_id).amount, w.currency,
                                f"auto-buy:{w.id}:{attempt}") if method else ChargeResult(False, None, "No card."))
    if res.approved:
        _credit(session, intent_id, res.gateway_ref, now)
        return "purchased", intent_id
    _decline(session, intent_id, res.decline_reason or "declined", now)
    return "declined", intent_id


def retry_due_auto_purchases(session: Session, now: datetime) -> list[int]:
    """For the periodic job: retry declined automatic purchases whose back-off has passed on wallets that are
    still used up, without waiting for a draw. Charges synchronously (the caller is a worker, not a draw).
    Returns the partner ids whose purchase was credited. Internal (no actor)."""
    due = session.execute(select(S.c.partner_id).where(S.c.gave_up.is_(False), S.c.failures > 0,
                                                       S.c.next_retry_at <= now)
                          .order_by(S.c.partner_id)).scalars().all()
    engine = engine_of(session)
    bought = []
    for partner_id in due:
        w = wallet_row(session, partner_id)
        if w.auto_buy_credits is None or not w.auto_buy_armed or w.balance > 0:
            continue
        outcome, intent_id = start_auto_buy(session, w, now, run=False)
        if outcome == "pending" and intent_id and run_intent(engine, intent_id, now) == "credited":
            bought.append(partner_id)
    return bought


# ---------------------------------------------------------------- manual purchases

def _open_attempt(s: Session, w: Any, base: str, c: Decimal, method: Any, now: datetime,
                  actor: Actor) -> tuple[tuple[int, int], int | None]:
    """The intent for this form key: the credited one (entry id given), the pending one (same attempt, same
    key), or a new attempt after a decline. The key reused for other credits is refused."""
    tries = s.execute(select(I).where(I.c.partner_id == w.partner_id, I.c.base_key == base)
                      .order_by(I.c.attempt).with_for_update()).all()
    if tries and tries[0].credits != c:
        raise IdempotencyKeyReused(f"This purchase form was already used to buy {format_quantity(tries[0].credits)} "
                                   f"credits, not {format_quantity(c)}. Reload the page to start a new purchase.")
    last = tries[-1] if tries else None
    if last is not None and last.status in ("credited", "pending"):
        return (w.partner_id, last.id), last.entry_id
    attempt = (last.attempt if last else 0) + 1
    return _new_intent(s, w, "purchase", base, attempt, f"{base}:{attempt}", c, method, now,
                       created_by=actor.user_id or None), None


def buy_credits(session: Session, actor: Actor, partner_id: int, credits: Any,
                idempotency_key: str | None = None, *, now: datetime | None = None,
                same_transaction: bool = False) -> int:
    """Buy credits at the volume-step price, charged to the default payment method; returns the ledger entry
    id. Intent before money: the intent commits first, the credit commits in its own transaction, so call
    this as its own unit of work (the wallet and the payment method committed before). A declined payment
    raises PaymentDeclined (the attempt is recorded); the same form key never charges twice, a new attempt
    after a decline gets a new gateway key, and the key reused for another number of credits is refused.

    `same_transaction=True` (demo loaders that create the partner in the same transaction) keeps intent,
    charge and credit in the caller's transaction; only allowed with the DEMO gateway, which moves no money."""
    authorize(actor, "wallet.manage", partner_id)
    c = credits_value(credits)
    if c != c.to_integral_value():
        raise ValidationError({"credits": "Credits are bought in whole numbers."})
    now = now or utcnow()
    w = wallet_row(session, partner_id)
    method = default_method(session, partner_id)
    if method is None:
        raise ValidationError({"credits": "Add a payment method before buying credits."})
    base = f"purchase:{partner_id}:{idempotency_key or uuid.uuid4().hex}"
    entry_id: int | None
    if same_transaction:
        if get_gateway().name != "demo":
            raise ValidationError({"credits": "Purchases inside another transaction are for the demo gateway only."})
        entry_id = _buy_in_session(session, w, base, c, method, now, actor)
    else:
        engine = engine_of(session)
        with tenant_session(engine, partner_id) as s, s.begin():
            intent_id, entry_id = _open_attempt(s, w, base, c, method, now, actor)
        if entry_id is None:
            run_intent(engine, intent_id, now, token=method.token)
            with tenant_session(engine, partner_id) as s:
                intent = intent_row(s, intent_id)
            _raise_if_declined(intent)
            entry_id = intent.entry_id
    audit.record(session, actor, partner_id=partner_id, action="buy_credits", entity="wallet", entity_id=w.id,
                 after={"credits": c, "entry_id": entry_id, "key": base})
    assert entry_id is not None
    return entry_id


def _raise_if_declined(intent: Any) -> None:
    if intent.status != "credited":
        raise PaymentDeclined(f"The payment of {format_money(intent.amount, intent.currency)} was declined: "
                              f"{intent.decline_reason} No credits were added.")


def _buy_in_session(session: Session, w: Any, base: str, c: Decimal, method: Any, now: datetime,
                    actor: Actor) -> int:
    intent_id, entry_id = _open_attempt(session, w, base, c, method, now, actor)
    if entry_id is not None:
        return entry_id
    intent = intent_row(session, intent_id)
    res = get_gateway().charge(method.token, intent.amount, intent.currency, intent.idempotency_key)
    if res.approved:
        _credit(session, intent_id, res.gateway_ref, now)
    else:
        _decline(session, intent_id, res.decline_reason or "declined", now)
    intent = intent_row(session, intent_id)
    _raise_if_declined(intent)
    return intent.entry_id
