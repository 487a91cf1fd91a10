"""The charge models: one module per model, each registering one `ChargeModel` class (see base.py).

Every module of this package whose name does not start with "_" (and is not `base`) is imported here, so
adding a model means adding one module (plus its tests and its section in docs/pricing.md).
The original pricing functions (price_per_unit, price_graduated, ...) stay importable from here.
"""

from __future__ import annotations

import importlib
import pkgutil

from ._tiers import price_graduated, price_volume, tier_for, tier_lower
from .base import ChargeModel, Field, Priced, get_model, register, registered

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _info.name.startswith("_") and _info.name != "base":
        importlib.import_module(f"{__name__}.{_info.name}")

from .allowance import price_allowance  # noqa: E402
from .package import price_package  # noqa: E402
from .per_unit import price_per_unit  # noqa: E402
from .percentage import price_percentage  # noqa: E402
from .threshold import price_threshold, threshold_crossed  # noqa: E402

MODELS: tuple[str, ...] = tuple(m.name for m in registered())

__all__ = [
    "MODELS", "ChargeModel", "Field", "Priced", "get_model", "register", "registered",
    "price_per_unit", "price_graduated", "price_volume", "price_package", "price_allowance", "price_threshold",
    "price_percentage", "threshold_crossed", "tier_for", "tier_lower",
]
