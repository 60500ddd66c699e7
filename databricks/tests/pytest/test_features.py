"""Tests of churn.features, run by the run_pytest notebook.

The notebook puts the folder that holds ``churn/`` on sys.path and sets CHURN_DATA_DIR to the
test data folder; without it the data is looked up next to this folder (``../data``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from churn.features import (
    MODEL_FEATURES,
    Customer,
    build_features,
    charge_per_call,
    load_customers,
    parse_customer,
    tenure_bucket,
)

DATA_DIR = Path(os.environ.get("CHURN_DATA_DIR") or Path(__file__).resolve().parent.parent / "data")

VALID_ROW = {
    "customer_id": " C9001 ",
    "tenure_months": "14",
    "monthly_charges": "79.50",
    "support_calls": "3",
    "churned": "1",
}


def test_parse_customer_converts_strings_to_typed_values() -> None:
    customer = parse_customer(VALID_ROW)

    assert customer == Customer("C9001", 14, 79.5, 3, True)


def test_parse_customer_treats_missing_label_as_unknown() -> None:
    row = {key: value for key, value in VALID_ROW.items() if key != "churned"}

    assert parse_customer(row).churned is None


def test_parse_customer_rejects_missing_field() -> None:
    row = {**VALID_ROW, "support_calls": "  "}

    with pytest.raises(ValueError, match="missing field 'support_calls'"):
        parse_customer(row)


def test_parse_customer_rejects_malformed_and_negative_numbers() -> None:
    with pytest.raises(ValueError, match="tenure_months must be a whole number"):
        parse_customer({**VALID_ROW, "tenure_months": "fourteen"})
    with pytest.raises(ValueError, match="monthly_charges must not be negative"):
        parse_customer({**VALID_ROW, "monthly_charges": "-1"})
    with pytest.raises(ValueError, match="churned must be 0 or 1"):
        parse_customer({**VALID_ROW, "churned": "yes"})


def test_tenure_bucket_boundaries() -> None:
    buckets = [tenure_bucket(months) for months in (0, 11, 12, 23, 24, 47, 48, 120)]

    assert buckets == ["0-11", "0-11", "12-23", "12-23", "24-47", "24-47", "48+", "48+"]


def test_charge_per_call_is_smoothed_for_zero_calls() -> None:
    assert charge_per_call(90.0, 0) == 90.0
    assert charge_per_call(90.0, 2) == 30.0


def test_build_features_has_model_inputs_and_derived_features() -> None:
    features = build_features(parse_customer(VALID_ROW))

    assert set(MODEL_FEATURES) <= features.keys()
    assert features["tenure_bucket"] == "12-23"
    assert features["charge_per_call"] == 19.88


def test_test_data_loads_and_is_valid() -> None:
    customers = load_customers(DATA_DIR / "customers.csv")

    assert len(customers) == 20
    assert len({customer.customer_id for customer in customers}) == 20
    assert all(customer.churned is not None for customer in customers)
