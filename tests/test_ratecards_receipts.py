"""Receipts for on-demand charges (issue 10, item 7): every approved on-demand charge of a partner-paid client's
usage (the rate card's amount, charged to the partner's card) gets a receipt from the platform to the partner,
numbered in the platform's own unbroken series (`OD-{year}-{n:06d}`), as a PDF, like credit-purchase receipts."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.billing import receipts
from core.errors import PermissionDenied
from db.models.wallet import ChargeReceipt, PaymentCharge
from tests.test_ratecards import MAIL_PLAN, standard
from tests.test_ratecards_settlement import _assign, _mode, _record
from tests.wallet_helpers import setup_wallet
from tests.when import TODAY

pytestmark = pytest.mark.usefixtures("on_day")  # the receipts' year and the usage's day (tests/when.py)
YEAR = TODAY.year


def _on_demand(engine, world, t) -> None:
    setup_wallet(engine, t.staff, t.partner_id)  # gives the partner a card
    _assign(engine, t.staff, t.partner_id, t.account_id, MAIL_PLAN, f"mail{t.partner_id}")
    _mode(engine, t.staff, t.partner_id, t.account_id, "partner_on_demand", "block")


def test_each_on_demand_charge_gets_a_numbered_receipt_from_the_platform(world, engine):
    standard(engine, world.admin)
    a, b = world.a, world.b
    _on_demand(engine, world, a)
    _on_demand(engine, world, b)
    _record(engine, a.staff, a.partner_id, a.account_id, "recipients", 5000, "m-1")  # 5,250 credits × 0.01
    _record(engine, b.staff, b.partner_id, b.account_id, "recipients", 2000, "m-2")  # 2,100 credits × 0.01
    _record(engine, a.staff, a.partner_id, a.account_id, "recipients", 1000, "m-3")  # 1,050 credits × 0.01
    with Session(engine) as s:
        mine = receipts.list_charge_receipts(s, a.staff, a.partner_id)
        theirs = receipts.list_charge_receipts(s, b.staff, b.partner_id)
        # one series for the issuer (the platform), across its partners, in the order charged
        assert [(r.number, r.total, r.customer) for r in mine] == [
            (f"OD-{YEAR}-000003", D("10.50"), "Customer a1"), (f"OD-{YEAR}-000001", D("52.50"), "Customer a1")]
        assert [(r.number, r.total) for r in theirs] == [(f"OD-{YEAR}-000002", D("21.00"))]
        # one receipt per approved charge, for exactly its amount
        charged = s.scalars(select(PaymentCharge.amount).where(PaymentCharge.reason == "usage_on_demand",
                                                               PaymentCharge.status == "approved")).all()
        assert sorted(charged) == sorted(r.total for r in mine + theirs)
        row = s.get(ChargeReceipt, (a.partner_id, mine[-1].id))
        assert row.credits == D("5250") and row.net_amount + row.tax_amount == row.total == D("52.50")
        pdf = receipts.charge_receipt_pdf(s, a.staff, a.partner_id, mine[-1].id)
        assert pdf.startswith(b"%PDF") and len(pdf) > 500
        assert receipts.charge_receipt_pdf(s, world.admin, a.partner_id, mine[-1].id).startswith(b"%PDF")
        # another partner's staff, and the client's own people, never see them
        with pytest.raises(PermissionDenied):
            receipts.list_charge_receipts(s, b.staff, a.partner_id)
        with pytest.raises(PermissionDenied):
            receipts.charge_receipt_pdf(s, b.staff, a.partner_id, mine[-1].id)
        with pytest.raises(PermissionDenied):
            receipts.list_charge_receipts(s, a.users["manager"], a.partner_id)


def test_a_declined_charge_gets_no_receipt_and_a_replayed_batch_no_second_one(world, engine):
    from core.billing import payments

    standard(engine, world.admin)
    a = world.a
    _on_demand(engine, world, a)
    _record(engine, a.staff, a.partner_id, a.account_id, "recipients", 1000, "r-1")
    _record(engine, a.staff, a.partner_id, a.account_id, "recipients", 1000, "r-1")  # the same event again
    gw = payments.get_gateway()
    try:
        payments.set_gateway(_Declining())
        with pytest.raises(Exception):  # noqa: B017 - blocked: the batch is refused
            _record(engine, a.staff, a.partner_id, a.account_id, "recipients", 1000, "r-2")
    finally:
        payments.set_gateway(gw)
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(ChargeReceipt)) == 1


class _Declining:
    def charge(self, token, amount, currency, idempotency_key):
        from core.billing.payments import ChargeResult

        return ChargeResult(approved=False, gateway_ref=None, decline_reason="card declined")
