# Frozen copy of core/pricing as of main c71bd06 (before the charge-model registry): the "old code path" of
# tests/pricing/test_pricing_migration.py. Never edit; delete once every stored plan has been re-rated.
"""Pure pricing / rating engine for the Reseller Console (stdlib only, Decimal money).

See docs/pricing.md for the semantics of every charge model.
"""

from .engine import (
    Alert,
    Line,
    Rating,
    RatingError,
    Segment,
    break_even,
    next_period,
    price_charge,
    rate,
    rate_plan,
    rating_to_dict,
)
from .explain import LOCALES, TEMPLATES, explain, explain_label
from .models import (
    Priced,
    price_allowance,
    price_graduated,
    price_package,
    price_per_unit,
    price_threshold,
    price_volume,
    threshold_crossed,
    tier_for,
)
from .money import (
    CURRENCY_MINOR_UNITS,
    UnknownCurrencyError,
    format_money,
    format_price,
    format_quantity,
    minor_unit,
    round_money,
)
from .spec import (
    DISCOUNT_TARGETS,
    FEE_KINDS,
    MODELS,
    SETTLE_MODES,
    TIMINGS,
    ChargeSpec,
    DiscountSpec,
    FeeSpec,
    PlanSpec,
    PlanValidationError,
    Tier,
    apply_overrides,
    plan_from_dict,
    plan_to_dict,
    validate_plan,
)

__all__ = [
    "Alert", "Line", "Rating", "RatingError", "Segment", "break_even", "next_period", "price_charge",
    "rate", "rate_plan", "rating_to_dict", "LOCALES", "TEMPLATES", "explain", "explain_label",
    "Priced", "price_allowance", "price_graduated", "price_package", "price_per_unit", "price_threshold",
    "price_volume", "threshold_crossed", "tier_for",
    "CURRENCY_MINOR_UNITS", "UnknownCurrencyError", "format_money", "format_price", "format_quantity",
    "minor_unit", "round_money",
    "DISCOUNT_TARGETS", "DiscountSpec", "FEE_KINDS", "MODELS", "SETTLE_MODES", "TIMINGS", "ChargeSpec", "FeeSpec", "PlanSpec",
    "PlanValidationError", "Tier", "apply_overrides", "plan_from_dict", "plan_to_dict", "validate_plan",
]
