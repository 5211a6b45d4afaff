"""Businesses and accounts through the HTTP API, on both backends."""

from __future__ import annotations

import pytest


def test_finance_creates_a_business_and_an_account_in_one_currency(api):
    biz = api.finance.post("/v1/businesses", json={"name": "Acme"})
    assert biz.status_code == 201
    assert biz.json()["id"].startswith("biz_")
    r = api.finance.post(
        "/v1/accounts",
        json={
            "name": "Main",
            "currency": "JPY",
            "business_id": biz.json()["id"],
            "timezone": "Asia/Tokyo",
        },
    )
    assert r.status_code == 201
    body = r.json()
    assert body["id"].startswith("acct_")
    assert body | {"id": None, "created_at": None} == {
        "id": None,
        "name": "Main",
        "currency": "JPY",
        "business_id": biz.json()["id"],
        "timezone": "Asia/Tokyo",
        "status": "active",
        "created_at": None,
    }
    assert body["created_at"].endswith("Z")
    assert api.finance.get(f"/v1/accounts/{body['id']}").json() == body


def test_an_account_without_business_or_timezone_defaults_to_utc(api):
    r = api.admin.post("/v1/accounts", json={"name": "Solo", "currency": "USD"})
    assert r.status_code == 201
    assert r.json()["business_id"] is None
    assert r.json()["timezone"] == "UTC"


@pytest.mark.parametrize(
    "body, code",
    [
        ({"name": "x", "currency": "XYZ"}, "validation_error"),
        ({"name": "x", "currency": "usd"}, "validation_error"),
        ({"name": "x", "currency": "USD", "timezone": "Mars/Olympus"}, "invalid_timezone"),
        ({"name": "", "currency": "USD"}, "validation_error"),
        ({"currency": "USD"}, "validation_error"),
        ({"name": "x", "currency": "USD", "status": "closed"}, "validation_error"),
    ],
)
def test_a_bad_account_is_refused_and_nothing_is_created(api, body, code):
    r = api.admin.post("/v1/accounts", json=body)
    assert r.status_code == 422
    assert r.json()["code"] == code
    assert api.admin.get("/v1/accounts").json()["data"] == []


def test_an_account_for_an_unknown_business_is_404(api):
    r = api.admin.post(
        "/v1/accounts", json={"name": "x", "currency": "USD", "business_id": "biz_nope"}
    )
    assert r.status_code == 404
    assert r.json()["code"] == "business_not_found"


def test_accounts_list_newest_first_with_a_cursor(api):
    ids = [
        api.admin.post("/v1/accounts", json={"name": f"a{i}", "currency": "USD"}).json()["id"]
        for i in range(5)
    ]
    first = api.admin.get("/v1/accounts?limit=2").json()
    assert [a["id"] for a in first["data"]] == ids[::-1][:2]
    assert first["has_more"] is True
    second = api.admin.get(f"/v1/accounts?limit=2&starting_after={first['next_cursor']}").json()
    assert [a["id"] for a in second["data"]] == ids[::-1][2:4]
    last = api.admin.get(f"/v1/accounts?limit=2&starting_after={second['next_cursor']}").json()
    assert [a["id"] for a in last["data"]] == ids[:1]
    assert last["has_more"] is False and last["next_cursor"] is None


@pytest.mark.parametrize("limit", ["0", "501", "-1", "abc"])
def test_a_list_limit_outside_1_to_500_is_refused(api, limit):
    r = api.admin.get(f"/v1/accounts?limit={limit}")
    assert r.status_code == 422


def test_accounts_can_be_filtered_by_business(api):
    b1 = api.admin.post("/v1/businesses", json={"name": "One"}).json()["id"]
    b2 = api.admin.post("/v1/businesses", json={"name": "Two"}).json()["id"]
    a1 = api.admin.post("/v1/accounts", json={"name": "x", "currency": "USD", "business_id": b1})
    api.admin.post("/v1/accounts", json={"name": "y", "currency": "USD", "business_id": b2})
    listed = api.admin.get(f"/v1/accounts?business_id={b1}").json()["data"]
    assert [a["id"] for a in listed] == [a1.json()["id"]]


def test_an_advertiser_sees_only_its_own_business(api):
    b1 = api.admin.post("/v1/businesses", json={"name": "One"}).json()["id"]
    b2 = api.admin.post("/v1/businesses", json={"name": "Two"}).json()["id"]
    mine = api.admin.post("/v1/accounts", json={"name": "x", "currency": "USD", "business_id": b1})
    theirs = api.admin.post(
        "/v1/accounts", json={"name": "y", "currency": "USD", "business_id": b2}
    )
    me = api.advertiser(b1)
    assert [a["id"] for a in me.get("/v1/accounts").json()["data"]] == [mine.json()["id"]]
    assert me.get(f"/v1/accounts/{mine.json()['id']}").status_code == 200
    other = me.get(f"/v1/accounts/{theirs.json()['id']}")
    assert other.status_code == 404
    assert other.json()["code"] == "account_not_found"
    assert me.get(f"/v1/accounts?business_id={b2}").status_code == 403


def test_suspend_and_reinstate_an_account(api):
    acct = api.admin.post("/v1/accounts", json={"name": "x", "currency": "USD"}).json()["id"]
    r = api.finance.post(f"/v1/accounts/{acct}/suspend")
    assert r.status_code == 200 and r.json()["status"] == "suspended"
    again = api.finance.post(f"/v1/accounts/{acct}/suspend")
    assert again.status_code == 409
    assert again.json()["code"] == "invalid_account_transition"
    r = api.finance.post(f"/v1/accounts/{acct}/reinstate")
    assert r.status_code == 200 and r.json()["status"] == "active"
    assert api.finance.post(f"/v1/accounts/{acct}/reinstate").status_code == 409
    assert api.finance.post("/v1/accounts/acct_nope/suspend").status_code == 404


@pytest.mark.parametrize("role", ["ingest", "advertiser"])
def test_only_staff_create_or_suspend_accounts(api, role):
    biz = api.admin.post("/v1/businesses", json={"name": "One"}).json()["id"]
    acct = api.admin.post("/v1/accounts", json={"name": "x", "currency": "USD", "business_id": biz})
    caller = api.caller(role, biz if role == "advertiser" else None)
    assert caller.post("/v1/businesses", json={"name": "x"}).status_code == 403
    assert caller.post("/v1/accounts", json={"name": "x", "currency": "USD"}).status_code == 403
    assert caller.post(f"/v1/accounts/{acct.json()['id']}/suspend").status_code == 403
