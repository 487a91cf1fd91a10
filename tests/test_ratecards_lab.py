"""The rate card as one plan spec (core.billing.ratecard_spec.cost_plan), for what-if comparisons. (The lab's
margin columns were dropped when main's lab changed: see the report of issue 10.)"""

from __future__ import annotations

from decimal import Decimal as D

from core.billing.ratecard_spec import card_from_dict, cost_plan
from tests.test_ratecards import STANDARD


def test_credit_rated_metrics_cost_their_credits_at_the_credit_price():
    cost = cost_plan(card_from_dict(STANDARD))
    assert cost.charge("credits_recipients").unit_price == D("0.0105")  # 1.05 credits × 0.01
