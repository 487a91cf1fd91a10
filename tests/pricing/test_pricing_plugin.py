"""Issue 13, "Done when": adding a charge model touches one module (plus its tests and docs). A model defined the
way a new module in core/pricing/models/ defines one — a registered ChargeModel class, nothing else — is stored,
validated, overridden, rated, explained in every statement language, described in plans, offered by the plan
builder's form and priced by its calculator, and compared by the lab, with no other file changed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import ROUND_CEILING, Decimal
from decimal import Decimal as D

import pytest

from core.billing import plan_builder
from core.billing.describe import describe_spec
from core.lab.compare import LabModel, reprice
from core.pricing import (
    PlanValidationError,
    apply_overrides,
    explain,
    plan_from_dict,
    plan_to_dict,
    rate_plan,
)
from core.pricing.explain import part
from core.pricing.models import base
from core.pricing.models.base import ChargeModel, Field, Priced, exact, priced, register, req
from core.pricing.money import format_price, format_quantity
from core.pricing.spec import ChargeSpec
from core.pricing.usage import Usage

APR1, APR30 = date(2024, 4, 1), date(2024, 4, 30)


class Stairstep(ChargeModel):
    """What a new module would hold: a flat price per started step of usage."""

    name = "stairstep_test"
    title = "Stairstep (test)"
    summary = "A flat price for each started step of usage."
    fields = (Field("step", "Units per step", "quantity"), Field("step_price", "Price per step", "money"))
    templates = {lang: {"stairstep_steps": "{steps:q} × {price:p}"} for lang in ("en", "de", "nb")}

    @exact
    def price(self, c: ChargeSpec, q: Decimal, usage: Usage) -> Priced:
        step, price = req(c.param("step"), "step"), req(c.param("step_price"), "step price")
        steps = (q / step).to_integral_value(rounding=ROUND_CEILING)
        return priced(steps * price, [[part("stairstep_steps", steps=steps, price=price)]])

    def describe(self, c: ChargeSpec) -> str:
        return f"{format_price(req(c.param('step_price'), 'p'))} per started {format_quantity(req(c.param('step'), 's'))}"


@pytest.fixture
def stairstep() -> Iterator[None]:
    register(Stairstep)
    try:
        yield
    finally:
        base._REGISTRY.pop(Stairstep.name, None)


PLAN = {"currency": "EUR", "charges": [{"id": "s", "metric": "pages", "model": "stairstep_test", "step": "1000",
                                        "step_price": "4.00", "label": "Pages"}]}


def test_a_model_registered_from_its_own_module_works_everywhere(stairstep):
    spec = plan_from_dict(PLAN)
    assert plan_to_dict(spec)["charges"][0]["step"] == "1000"  # the stored form keeps its own fields
    r = rate_plan(spec, {"pages": D(2500)}, APR1, APR30)
    assert (r.total, r.lines[0].explanation) == (D("12.00"), "2,500 pages: 3 × 4.00")
    for lang in ("de", "nb"):
        assert explain(r.lines[0], lang)
    assert describe_spec(spec)[0]["price"] == "4.00 per started 1,000"
    cheaper = apply_overrides(spec, {"charges.s.step_price": "3.50"})
    assert rate_plan(cheaper, {"pages": D(2500)}, APR1, APR30).total == D("10.50")
    with pytest.raises(PlanValidationError, match="step"):
        plan_from_dict({**PLAN, "charges": [{**PLAN["charges"][0], "step": None}]})
    # the plan builder's form and calculator
    charge = plan_builder.charge_from_form(cid="s", metric="pages", model="stairstep_test",
                                           values={"step": "1000", "step_price": "4.00"}, tiers={}, unit="", label="",
                                           settle="money", credit_rate=None, min_amount=None)
    calc = plan_builder.calculate({"currency": "EUR", "charges": [charge], "fees": []},
                                  plan_builder.CalculatorInput({"pages": "1001"}, {}, {}, {}))
    assert calc.total == D("8.00")
    # the lab
    result = reprice({APR1: {"pages": D(2500)}}, [LabModel("Current", spec, True)])
    assert result.models[0].total == D("12.00")
