"""The lab compares charges priced per value of an event property value by value (issue 13)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from core.lab.compare import LabModel, reprice
from core.pricing import Usage, plan_from_dict

JAN, FEB = date(2024, 1, 1), date(2024, 2, 1)


def sms(name: str, no: str, default: str) -> LabModel:
    spec = plan_from_dict({"currency": "EUR", "charges": [
        {"id": "sms", "metric": "messages", "model": "per_unit", "unit_price": default, "label": "SMS",
         "dimension": "country", "dimension_prices": [{"value": "NO", "label": "Norway", "unit_price": no}]}]})
    return LabModel(name, spec, name == "Current")


def test_models_compared_per_value_with_the_usage_detail():
    usage = {JAN: {"messages": D(1000)}, FEB: {"messages": D(500)}}
    detail = {JAN: {"messages": Usage(D(1000), by_value={"country": {"NO": D(600), "SE": D(400)}})},
              FEB: {"messages": Usage(D(500), by_value={"country": {"NO": D(500)}})}}
    result = reprice(usage, [sms("Current", "0.05", "0.08"), sms("Cheaper Norway", "0.04", "0.09")], detail=detail)
    current, other = result.models
    assert current.per_value == {"SMS – Norway": D("55.00"), "SMS – other values": D("32.00")}
    assert other.per_value == {"SMS – Norway": D("44.00"), "SMS – other values": D("36.00")}
    assert (current.total, other.total) == (D("87.00"), D("80.00"))


def test_without_detail_everything_is_priced_at_the_default():
    result = reprice({JAN: {"messages": D(1000)}}, [sms("Current", "0.05", "0.08")])
    assert result.models[0].per_value == {"SMS – other values": D("80.00")}
