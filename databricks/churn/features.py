"""Feature engineering for the churn model: typed customers from CSV rows, derived features.

Standard library only, so it imports on any cluster. The model itself is scored in R
(``churn/scoring.R``); this module prepares and validates its input.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "MODEL_FEATURES",
    "Customer",
    "build_features",
    "charge_per_call",
    "load_customers",
    "parse_customer",
    "tenure_bucket",
]

#: The model's input columns, in the order of its coefficients.
MODEL_FEATURES = ("tenure_months", "monthly_charges", "support_calls")
REQUIRED_FIELDS = ("customer_id", *MODEL_FEATURES)
MAX_TENURE_MONTHS = 600


@dataclass(frozen=True)
class Customer:
    customer_id: str
    tenure_months: int
    monthly_charges: float
    support_calls: int
    churned: bool | None = None


def _field(row: Mapping[str, str | None], name: str) -> str:
    value = row.get(name)
    if value is None or not value.strip():
        raise ValueError(f"missing field {name!r}")
    return value.strip()


def _non_negative_int(row: Mapping[str, str | None], name: str) -> int:
    text = _field(row, name)
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {text!r}") from None
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")
    return value


def _non_negative_float(row: Mapping[str, str | None], name: str) -> float:
    text = _field(row, name)
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {text!r}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")
    return value


def parse_customer(row: Mapping[str, str | None]) -> Customer:
    """Turn one CSV row (strings) into a validated :class:`Customer`.

    Raises ValueError naming the field when a value is missing, malformed or out of range.
    ``churned`` is optional (absent or empty for customers still to be scored).
    """
    tenure = _non_negative_int(row, "tenure_months")
    if tenure > MAX_TENURE_MONTHS:
        raise ValueError(f"tenure_months must be at most {MAX_TENURE_MONTHS}, got {tenure}")
    churned_text = (row.get("churned") or "").strip()
    if churned_text not in ("", "0", "1"):
        raise ValueError(f"churned must be 0 or 1, got {churned_text!r}")
    return Customer(
        customer_id=_field(row, "customer_id"),
        tenure_months=tenure,
        monthly_charges=_non_negative_float(row, "monthly_charges"),
        support_calls=_non_negative_int(row, "support_calls"),
        churned=None if churned_text == "" else churned_text == "1",
    )


def tenure_bucket(tenure_months: int) -> str:
    """Bucket a tenure: "0-11", "12-23", "24-47" or "48+" months."""
    if tenure_months < 0:
        raise ValueError(f"tenure_months must not be negative, got {tenure_months}")
    if tenure_months < 12:
        return "0-11"
    if tenure_months < 24:
        return "12-23"
    if tenure_months < 48:
        return "24-47"
    return "48+"


def charge_per_call(monthly_charges: float, support_calls: int) -> float:
    """Monthly charges per support call, smoothed by one call so that zero calls is defined."""
    if monthly_charges < 0 or support_calls < 0:
        raise ValueError("monthly_charges and support_calls must not be negative")
    return round(monthly_charges / (support_calls + 1), 2)


def build_features(customer: Customer) -> dict[str, float | int | str]:
    """The model's inputs plus the derived features, as one flat record."""
    return {
        "customer_id": customer.customer_id,
        "tenure_months": customer.tenure_months,
        "monthly_charges": customer.monthly_charges,
        "support_calls": customer.support_calls,
        "tenure_bucket": tenure_bucket(customer.tenure_months),
        "charge_per_call": charge_per_call(customer.monthly_charges, customer.support_calls),
    }


def load_customers(path: str | Path) -> list[Customer]:
    """Read and validate every row of a customers CSV file (header row required)."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [name for name in REQUIRED_FIELDS if name not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
        customers = []
        for line, row in enumerate(reader, start=2):
            try:
                customers.append(parse_customer(row))
            except ValueError as error:
                raise ValueError(f"{path}, line {line}: {error}") from None
    return customers
