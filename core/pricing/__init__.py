"""Pure pricing / rating engine for the Reseller Console (stdlib only, Decimal money).

See docs/pricing.md for the semantics of every charge model. Modules: spec (dataclasses), validate, serialize
(stored JSON), overrides, models (one module per charge model, registered), engine (rate), whatif
(break_even), explain (statement languages), money.
"""

from .engine import (
    Alert,
    Line,
    Rating,
    RatingError,
    Segment,
    next_period,
    price_charge,
    rate,
    rate_plan,
    rating_to_dict,
    usage_of,
)
from .explain import LOCALES, TEMPLATES, explain, explain_label
from .models import (
    MODELS,
    ChargeModel,
    Field,
    Priced,
    get_model,
    price_allowance,
    price_graduated,
    price_package,
    price_per_unit,
    price_percentage,
    price_threshold,
    price_volume,
    registered,
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
from .overrides import apply_overrides
from .serialize import plan_to_dict
from .spec import (
    DISCOUNT_TARGETS,
    FEE_KINDS,
    SETTLE_MODES,
    TIMINGS,
    ChargeSpec,
    DimensionPrice,
    DiscountSpec,
    FeeSpec,
    PlanSpec,
    PlanValidationError,
    Tier,
)
from .usage import Usage
from .validate import dimension_variant, plan_from_dict, validate_plan
from .whatif import break_even

__all__ = [
    "Alert", "Line", "Rating", "RatingError", "Segment", "break_even", "next_period", "price_charge",
    "rate", "rate_plan", "rating_to_dict", "usage_of", "Usage", "LOCALES", "TEMPLATES", "explain", "explain_label",
    "MODELS", "ChargeModel", "Field", "get_model", "registered",
    "Priced", "price_allowance", "price_graduated", "price_package", "price_per_unit", "price_percentage",
    "price_threshold", "price_volume", "threshold_crossed", "tier_for",
    "CURRENCY_MINOR_UNITS", "UnknownCurrencyError", "format_money", "format_price", "format_quantity",
    "minor_unit", "round_money",
    "DISCOUNT_TARGETS", "DiscountSpec", "DimensionPrice", "FEE_KINDS", "SETTLE_MODES", "TIMINGS", "ChargeSpec",
    "FeeSpec", "PlanSpec", "PlanValidationError", "Tier", "apply_overrides", "dimension_variant", "plan_from_dict",
    "plan_to_dict", "validate_plan",
]
