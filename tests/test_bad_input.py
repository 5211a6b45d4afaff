"""Bad input gets a clear 422 problem and changes nothing."""

from __future__ import annotations

import pytest

from factories import make_account
from tests_support import balances, event

BAD_AMOUNTS = [-1, 0, 1.5, 1.0, "100", True, False, None, 10**15 + 1, [1], {"v": 1}]


@pytest.fixture
def acct(db):
    return make_account(db, cash=1_000)["id"]


@pytest.mark.parametrize("amount", BAD_AMOUNTS, ids=repr)
def test_a_bad_deposit_amount_is_a_422_and_nothing_changes(api, db, acct, amount):
    r = api.finance.post(
        f"/v1/accounts/{acct}/deposits", json={"amount": amount, "payment_reference": "p"}
    )
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "validation_error"
    assert "amount" in r.json()["detail"]
    assert balances(db, acct)["cash"] == 1_000


@pytest.mark.parametrize("amount", BAD_AMOUNTS, ids=repr)
def test_a_bad_spend_amount_refuses_the_whole_batch(api, db, acct, amount):
    good = event("good", acct, 10)
    bad = event("bad", acct, 10) | {"amount": amount}
    r = api.ingest.post("/v1/spend", json={"events": [good, bad]})
    assert r.status_code == 422
    assert balances(db, acct)["cash"] == 1_000


def test_the_largest_amount_is_accepted(api, db, acct):
    r = api.finance.post(
        f"/v1/accounts/{acct}/deposits", json={"amount": 10**15, "payment_reference": "p"}
    )
    assert r.status_code == 201


def test_nan_and_infinity_are_refused(api, db, acct):
    for raw in ("NaN", "Infinity", "1e3"):
        r = api.finance.client.post(
            f"/v1/accounts/{acct}/deposits",
            content=f'{{"amount": {raw}, "payment_reference": "p"}}',
            headers={
                "Authorization": f"Bearer {api.finance.key}",
                "Content-Type": "application/json",
            },
        )
        assert r.status_code == 422, raw
    assert balances(db, acct)["cash"] == 1_000


@pytest.mark.parametrize(
    "when", ["2026-12-01T12:00:00", "2026-12-01", "yesterday", "2026-13-01T00:00:00Z", 1764590400]
)
def test_a_time_without_offset_or_not_rfc3339_is_refused(api, db, acct, when):
    r = api.ingest.post(
        "/v1/spend", json={"events": [event("e", acct, 10) | {"occurred_at": when}]}
    )
    assert r.status_code == 422
    assert balances(db, acct)["cash"] == 1_000


@pytest.mark.parametrize("currency", ["XXY", "usd", "US", "", 840, None])
def test_an_unknown_currency_is_refused(api, currency):
    r = api.admin.post("/v1/accounts", json={"name": "x", "currency": currency})
    assert r.status_code == 422


def test_a_spend_event_in_an_unknown_currency_is_refused(api, db, acct):
    r = api.ingest.post("/v1/spend", json={"events": [event("e", acct, 10, currency="ABC")]})
    assert r.status_code == 422
    assert balances(db, acct)["cash"] == 1_000


def test_malformed_json_is_a_422_problem(api, acct):
    r = api.finance.client.post(
        f"/v1/accounts/{acct}/deposits",
        content=b"{not json",
        headers={"Authorization": f"Bearer {api.finance.key}", "Content-Type": "application/json"},
    )
    assert r.status_code == 422
    assert r.json()["code"] == "validation_error"


def test_unknown_fields_are_refused_not_ignored(api, db, acct):
    r = api.finance.post(
        f"/v1/accounts/{acct}/deposits",
        json={"amount": 5, "payment_reference": "p", "cash_available": 10**9},
    )
    assert r.status_code == 422
    assert balances(db, acct)["cash"] == 1_000
