"""Idempotency-Key: same key and body → the first response again; another body → 422."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from factories import make_account
from tests_support import balances


@pytest.fixture
def acct(db):
    return make_account(db)["id"]


def test_the_same_key_and_body_give_the_first_response_and_one_effect(api, db, acct):
    body = {"amount": 500, "payment_reference": "ch_1"}
    key = {"Idempotency-Key": "dep-1"}
    first = api.finance.post(f"/v1/accounts/{acct}/deposits", json=body, headers=key)
    again = api.finance.post(f"/v1/accounts/{acct}/deposits", json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert balances(db, acct)["cash"] == 500


def test_the_same_key_with_another_body_is_refused(api, db, acct):
    key = {"Idempotency-Key": "dep-1"}
    api.finance.post(
        f"/v1/accounts/{acct}/deposits", json={"amount": 500, "payment_reference": "a"}, headers=key
    )
    r = api.finance.post(
        f"/v1/accounts/{acct}/deposits", json={"amount": 600, "payment_reference": "a"}, headers=key
    )
    assert r.status_code == 422 and r.json()["code"] == "idempotency_key_reused"
    assert balances(db, acct)["cash"] == 500


def test_keys_are_scoped_to_the_calling_api_key(api, db, acct):
    body = {"amount": 500, "payment_reference": "a"}
    key = {"Idempotency-Key": "same"}
    other = api.caller("finance", name="second")
    assert (
        api.finance.post(f"/v1/accounts/{acct}/deposits", json=body, headers=key).status_code == 201
    )
    assert other.post(f"/v1/accounts/{acct}/deposits", json=body, headers=key).status_code == 201
    assert balances(db, acct)["cash"] == 1_000


def test_a_refusal_is_stored_and_given_again(api, db, acct):
    key = {"Idempotency-Key": "sus"}
    first = api.finance.post(f"/v1/accounts/{acct}/reinstate", headers=key)
    assert first.status_code == 409
    api.finance.post(f"/v1/accounts/{acct}/suspend")
    again = api.finance.post(f"/v1/accounts/{acct}/reinstate", headers=key)
    assert again.status_code == 409 and again.json() == first.json()


def test_a_key_that_is_too_long_is_refused(api, acct):
    r = api.finance.post(f"/v1/accounts/{acct}/suspend", headers={"Idempotency-Key": "k" * 256})
    assert r.status_code == 422 and r.json()["code"] == "invalid_idempotency_key"


def test_concurrent_requests_with_one_key_have_one_effect(api, db, acct):
    body = {"amount": 700, "payment_reference": "ch_c"}
    barrier = threading.Barrier(16)

    def send(_: int):  # type: ignore[no-untyped-def]
        barrier.wait()
        return api.finance.post(
            f"/v1/accounts/{acct}/deposits", json=body, headers={"Idempotency-Key": "race"}
        )

    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(send, range(16)))
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, statuses
    created = [r.json() for r in responses if r.status_code == 201]
    assert created and all(c == created[0] for c in created)
    assert all(
        r.json()["code"] == "idempotency_key_in_use" for r in responses if r.status_code == 409
    )
    assert balances(db, acct)["cash"] == 700
