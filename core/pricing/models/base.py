"""The charge-model plug-in interface and its registry.

A charge model is one class (one module in this package) that says everything about itself:
  * `fields`: its fields (name, human label, kind, required, help): validation and the plan builder's form;
  * `validate()`: extra rules beyond the per-field checks;
  * `price()`: the UNROUNDED amount and the explanation pieces (structured parts, core.pricing.explain);
  * `describe()`: the price in plain English for plan descriptions;
  * `templates`: its explanation templates in every statement language (en, de, nb);
  * `breakpoints()`: quantities where its price changes slope (the lab's break-even search);
  * `alert_threshold()`: a quantity whose crossing raises an alert (threshold model).
The engine, plan validation, plan descriptions, the lab and the Pricing page ask the registry (`get_model`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Context, Decimal, localcontext
from typing import Any, ClassVar, NamedTuple, TypeVar

from ..checks import Problems, check_dec, check_tiers
from ..explain import Part, register_templates, render_parts
from ..spec import ChargeSpec, Tier
from ..usage import RatingError, Usage

__all__ = ["CTX", "ZERO", "Field", "ChargeModel", "Priced", "register", "get_model", "registered", "exact",
           "priced", "req", "req_tiers"]

ZERO = Decimal(0)
# Precision of every pricing computation: exact for any product of a plan value (at most 10 decimals) and a
# usage quantity (at most usage.MAX_DIGITS significant digits), so each line is rounded once, at the end.
CTX = Context(prec=1000)
_F = TypeVar("_F", bound=Callable[..., object])


def exact(fn: _F) -> _F:
    """Run with the fixed high-precision decimal context (independent of the caller's context)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with localcontext(CTX):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


class Priced(NamedTuple):
    amount: Decimal  # unrounded
    items: tuple[tuple[Part, ...], ...] = ()  # the explanation pieces, structured (see core.pricing.explain)

    @property
    def parts(self) -> tuple[str, ...]:
        """The explanation pieces in English, e.g. ("1,000 × 0.10", "200 × 0.08") (rendered on demand)."""
        return tuple(render_parts(i, "en") for i in self.items)


def priced(amount: Decimal, items: Sequence[Sequence[Part]]) -> Priced:
    return Priced(amount, tuple(tuple(i) for i in items))


@dataclass(frozen=True)
class Field:
    """A model field as plain data (the Pricing page renders it; validation checks it).

    kind: "money" (a price or fee), "quantity" (units, may be fractional), "count" (whole number of events),
    "percent" (0–100), "tiers" (a list of tiers).
    """

    name: str
    label: str
    kind: str
    required: bool = True
    help: str = ""


def req(v: Decimal | None, what: str) -> Decimal:
    """A required field of a validated spec (narrows the Optional for the type checker)."""
    if v is None:
        raise RatingError(f"{what} is missing (the plan was not validated)")
    return v


def req_tiers(v: Any) -> tuple[Tier, ...]:
    if not isinstance(v, tuple):
        raise RatingError("tiers are missing (the plan was not validated)")
    return v


def quantity(q: Decimal) -> Decimal:
    if isinstance(q, (float, bool)):
        raise TypeError("quantity must be a Decimal, not a float")
    v = q if isinstance(q, Decimal) else Decimal(q)
    if not v.is_finite() or v < 0:
        raise ValueError(f"quantity must be a finite number >= 0, got {q}")
    return v + 0  # -0 -> 0


class ChargeModel:
    """Base class of a charge model. Subclasses set the class attributes and implement `price`/`describe`."""

    name: ClassVar[str]
    title: ClassVar[str]  # human name, e.g. "Graduated tiers"
    summary: ClassVar[str]  # one plain-language sentence
    order: ClassVar[int] = 100  # position in lists (the plan builder's model choice)
    fields: ClassVar[tuple[Field, ...]] = ()
    templates: ClassVar[Mapping[str, Mapping[str, str]]] = {}
    credits_allowed: ClassVar[bool] = True  # may convert usage to credits first (credit_rate)
    # groups of fields of which a price uses one (allowance: overage price or overage tiers): a dimension value
    # that sets one of a group drops the charge's others
    alternatives: ClassVar[tuple[tuple[str, ...], ...]] = ()

    def validate(self, c: ChargeSpec, p: Problems, path: str, need: bool) -> None:
        """Check the model's fields; `need` is False for wallet-settled charges (fields optional then)."""
        for f in self.fields:
            value = c.field(f.name)
            fp = f"{path}.{f.name}"
            required = need and f.required
            what = f.name.replace("_", " ")
            if f.kind == "tiers":
                check_tiers(p, fp, value, required=required)
            elif f.kind == "count":
                if value is not None and (not isinstance(value, Decimal) or value != value.to_integral_value()):
                    p.add(fp, f"{what} must be a whole number, got {value}")
                else:
                    check_dec(p, fp, value, required=required, what=what)
            else:
                check_dec(p, fp, value, required=required, what=what,
                          maximum=Decimal(100) if f.kind == "percent" else None)
        if not self.credits_allowed and c.credit_rate is not None:
            p.add(f"{path}.credit_rate", f"the {self.name} model cannot convert usage to credits")
        self.check(c, p, path, need)

    def check(self, c: ChargeSpec, p: Problems, path: str, need: bool) -> None:
        """Rules across fields (override)."""

    def price(self, c: ChargeSpec, q: Decimal, usage: Usage) -> Priced:
        """Price quantity q (usage converted to credits when the charge has a credit rate)."""
        raise NotImplementedError

    def describe(self, c: ChargeSpec) -> str:
        raise NotImplementedError

    def breakpoints(self, c: ChargeSpec) -> list[Decimal]:
        return []

    def alert_threshold(self, c: ChargeSpec) -> Decimal | None:
        return None

    def needs_count(self, c: ChargeSpec) -> bool:
        """True when pricing needs the number of events (Usage.count), not just the aggregate."""
        return False

    def needs_events(self, c: ChargeSpec) -> bool:
        """True when pricing needs the individual event values (Usage.events), not just the aggregate."""
        return False

    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


_REGISTRY: dict[str, ChargeModel] = {}


def register(cls: type[ChargeModel]) -> type[ChargeModel]:
    """Class decorator: add a charge model (and its explanation templates) to the registry."""
    if cls.name in _REGISTRY:
        raise ValueError(f"charge model {cls.name!r} is registered twice")
    register_templates(cls.templates)
    _REGISTRY[cls.name] = cls()
    return cls


def get_model(name: object) -> ChargeModel:
    """The registered model of that name; KeyError (with the known names) for anything else."""
    if isinstance(name, str) and name in _REGISTRY:
        return _REGISTRY[name]
    raise KeyError(f"unknown charge model {name!r}; known: {', '.join(m.name for m in registered())}")


def registered() -> tuple[ChargeModel, ...]:
    return tuple(sorted(_REGISTRY.values(), key=lambda m: (m.order, m.name)))
