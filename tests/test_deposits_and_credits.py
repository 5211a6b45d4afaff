"""Deposits and credit lots through the HTTP API, on both backends."""

from __future__ import annotations

from datetime import timedelta

import pytest

from factories import grant, make_account
from tests_support import balances, event


@pytest.fixture
def acct(db):
    return make_account(db)


def test_a_deposit_grows_cash_by_its_amount_and_records_tax_beside_it(api, db, acct):
    r = api.finance.post(
        f"/v1/accounts/{acct['id']}/deposits",
        json={"amount": 10_000, "tax": 1_500, "payment_reference": "ch_1"},
    )
    assert r.status_code == 201
    body = r.json()
    assert body["id"].startswith("dep_")
    assert (body["amount"], body["tax"], body["payment_reference"]) == (10_000, 1_500, "ch_1")
    assert balances(db, acct["id"])["cash"] == 10_000


def test_a_deposit_to_a_missing_or_closed_account_is_refused(api, db, acct):
    r = api.finance.post(
        "/v1/accounts/acct_nope/deposits", json={"amount": 1, "payment_reference": "p"}
    )
    assert r.status_code == 404 and r.json()["code"] == "account_not_found"
    with db.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE accounts SET status='closed' WHERE id='{acct['id']}'")
    r = api.finance.post(
        f"/v1/accounts/{acct['id']}/deposits", json={"amount": 1, "payment_reference": "p"}
    )
    assert r.status_code == 409 and r.json()["code"] == "account_closed"
    assert balances(db, acct["id"])["cash"] == 0


def test_granting_credit_makes_an_active_lot(api, db, acct, clock):
    expires = (clock.now() + timedelta(days=30)).isoformat()
    r = api.finance.post(
        f"/v1/accounts/{acct['id']}/credits",
        json={
            "amount": 5_000,
            "expires_at": expires,
            "reason": "welcome",
            "priority": 10,
            "campaign_id": "cmp_1",
        },
    )
    assert r.status_code == 201, r.text
    lot = r.json()
    assert lot["id"].startswith("lot_")
    assert lot | {"id": None, "created_at": None} == {
        "id": None,
        "account_id": acct["id"],
        "source": "manual",
        "original": 5_000,
        "remaining": 5_000,
        "effective_at": "2026-12-01T12:00:00Z",
        "expires_at": "2026-12-31T12:00:00Z",
        "priority": 10,
        "campaign_id": "cmp_1",
        "status": "active",
        "created_at": None,
    }


@pytest.mark.parametrize(
    "change",
    [
        {"expires_at": "2026-11-30T00:00:00Z"},  # before effective (now)
        {"effective_at": "2027-01-05T00:00:00Z", "expires_at": "2027-01-05T00:00:00Z"},
        {"expires_at": "2027-01-01T00:00:00"},  # no offset
        {"priority": 101},
        {"priority": -1},
        {"priority": 5.5},
        {"amount": 0},
        {"reason": ""},
        {"source": "coupon"},
    ],
)
def test_a_bad_grant_is_refused_and_nothing_changes(api, db, acct, change):
    body = {"amount": 100, "expires_at": "2027-01-01T00:00:00Z", "reason": "r"} | change
    r = api.finance.post(f"/v1/accounts/{acct['id']}/credits", json=body)
    assert r.status_code == 422, r.text
    assert balances(db, acct["id"])["lots"] == {}


def test_credits_list_filters_by_status(api, db, acct):
    keep = grant(db, acct["id"], amount=100)["id"]
    gone = grant(db, acct["id"], amount=100)["id"]
    assert api.finance.post(f"/v1/credits/{gone}/void", json={"reason": "error"}).status_code == 200
    all_lots = api.finance.get(f"/v1/accounts/{acct['id']}/credits").json()["data"]
    assert [lot["id"] for lot in all_lots] == [gone, keep]
    active = api.finance.get(f"/v1/accounts/{acct['id']}/credits?status=active").json()["data"]
    assert [lot["id"] for lot in active] == [keep]
    assert api.finance.get(f"/v1/accounts/{acct['id']}/credits?status=bogus").status_code == 422


def test_voiding_a_lot_removes_only_the_unspent_remainder(api, db, acct):
    lot = grant(db, acct["id"], amount=1_000)["id"]
    api.ingest.post("/v1/spend", json={"events": [event("e", acct["id"], 400)]})
    r = api.finance.post(f"/v1/credits/{lot}/void", json={"reason": "abuse"})
    assert r.status_code == 200
    assert (r.json()["remaining"], r.json()["status"], r.json()["original"]) == (0, "voided", 1_000)
    [later] = api.ingest.post("/v1/spend", json={"events": [event("f", acct["id"], 100)]}).json()[
        "results"
    ]
    assert later["credit_used"] == 0 and later["unfunded"] == 100
    again = api.finance.post(f"/v1/credits/{lot}/void", json={"reason": "again"})
    assert again.status_code == 409 and again.json()["code"] == "lot_not_active"
    assert api.finance.post("/v1/credits/lot_nope/void", json={"reason": "x"}).status_code == 404


def test_an_advertiser_reads_its_lots_but_cannot_grant_or_void(api, db, acct):
    lot = grant(db, acct["id"], amount=100)["id"]
    me = api.advertiser(acct["business_id"])
    assert me.get(f"/v1/accounts/{acct['id']}/credits").status_code == 200
    body = {"amount": 100, "expires_at": "2027-01-01T00:00:00Z", "reason": "r"}
    assert me.post(f"/v1/accounts/{acct['id']}/credits", json=body).status_code == 403
    assert me.post(f"/v1/credits/{lot}/void", json={"reason": "x"}).status_code == 403
    stranger = api.advertiser(make_account(db)["business_id"])
    assert stranger.get(f"/v1/accounts/{acct['id']}/credits").status_code == 404
