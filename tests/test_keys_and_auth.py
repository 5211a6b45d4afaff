"""API keys and roles: hashed at rest, shown once, revocable; 401/403/404 as the contract says."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from adledger.storage.tables import api_keys


def test_admin_makes_a_key_shown_once_and_stored_only_as_a_hash(api, db):
    r = api.admin.post("/v1/api-keys", json={"role": "finance", "name": "Fin"})
    assert r.status_code == 201
    made = r.json()
    assert set(made) == {"id", "key", "role", "name", "business_id", "created_at"}
    with db.engine.connect() as conn:
        stored = [tuple(row) for row in conn.execute(select(api_keys))]
    assert not any(made["key"] in str(value) for row in stored for value in row)
    fin = {"Authorization": f"Bearer {made['key']}"}
    assert api.client.get("/v1/accounts", headers=fin).status_code == 200


def test_an_advertiser_key_must_name_an_existing_business(api):
    r = api.admin.post("/v1/api-keys", json={"role": "advertiser", "name": "Adv"})
    assert r.status_code == 422
    r = api.admin.post(
        "/v1/api-keys", json={"role": "advertiser", "name": "Adv", "business_id": "biz_nope"}
    )
    assert r.status_code == 404
    biz = api.admin.post("/v1/businesses", json={"name": "One"}).json()["id"]
    r = api.admin.post("/v1/api-keys", json={"role": "advertiser", "name": "A", "business_id": biz})
    assert r.status_code == 201 and r.json()["business_id"] == biz


def test_a_revoked_key_gets_401_on_its_next_request(api):
    made = api.admin.post("/v1/api-keys", json={"role": "finance", "name": "Fin"}).json()
    headers = {"Authorization": f"Bearer {made['key']}"}
    assert api.client.get("/v1/accounts", headers=headers).status_code == 200
    r = api.admin.delete(f"/v1/api-keys/{made['id']}")
    assert r.status_code == 200 and r.json()["revoked_at"]
    after = api.client.get("/v1/accounts", headers=headers)
    assert after.status_code == 401
    assert after.json()["code"] == "unauthorized"
    assert api.admin.delete("/v1/api-keys/key_nope").status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer nope", "Basic abc", "adl_x"])
def test_no_key_or_a_bad_key_is_401(api, header):
    headers = {"Authorization": header} if header else {}
    r = api.client.get("/v1/accounts", headers=headers)
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert {"type", "title", "status", "detail", "code"} <= set(body)


@pytest.mark.parametrize("role", ["finance", "ingest"])
def test_only_admin_manages_keys(api, role):
    caller = api.caller(role)
    assert caller.post("/v1/api-keys", json={"role": "admin", "name": "x"}).status_code == 403
    assert caller.delete(f"/v1/api-keys/{api.admin.key_id}").status_code == 403


def test_an_ingest_key_may_only_post_spend(api):
    acct = api.admin.post("/v1/accounts", json={"name": "x", "currency": "USD"}).json()["id"]
    assert api.ingest.get(f"/v1/accounts/{acct}").status_code == 403
    assert api.ingest.get("/v1/accounts").status_code == 403
    assert (
        api.ingest.post(
            f"/v1/accounts/{acct}/deposits", json={"amount": 1, "payment_reference": "p"}
        ).status_code
        == 403
    )


def test_health_needs_no_key(api):
    assert api.client.get("/healthz").status_code == 200
