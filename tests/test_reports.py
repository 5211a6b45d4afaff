"""The liabilities report: what the platform owes in one currency, and where granted credit went."""

from __future__ import annotations

from datetime import timedelta

import pytest

from adledger.service import credits, expiry, refunds, reports
from conftest import T0
from factories import grant, make_account
from tests_support import event

DAY = timedelta(days=1)
ZEROS = {
    "cash_available": 0,
    "cash_held": 0,
    "credit_outstanding": 0,
    "credit_granted": 0,
    "credit_used": 0,
    "credit_expired": 0,
    "credit_voided": 0,
    "credit_forfeited": 0,
    "overdelivery_written_off": 0,
}


def liabilities(api, currency="USD", caller=None):
    return (caller or api.finance).get(f"/v1/reports/liabilities?currency={currency}")


def spend(api, account_id, amount, event_id):
    r = api.ingest.post("/v1/spend", json={"events": [event(event_id, account_id, amount)]})
    assert r.json()["results"][0]["status"] == "applied", r.text


def test_a_currency_nobody_uses_owes_nothing(api):
    r = liabilities(api, "EUR")
    assert r.status_code == 200
    assert r.json() == {"currency": "EUR", **ZEROS}


def test_the_report_adds_up_cash_credit_and_the_credit_flows(api, db, clock):
    a = make_account(db, cash=10_000)
    b = make_account(db, cash=3_000)
    grant(db, a["id"], amount=4_000, days=30)
    voided = grant(db, a["id"], amount=1_500, days=30, priority=90)
    grant(db, b["id"], amount=2_000, expires_at=T0 + DAY)
    spend(api, a["id"], 4_000, "ev-a")  # the first lot, all of it
    spend(api, b["id"], 500, "ev-b")  # 500 of credit
    clock.advance(hours=4)  # past the refund quiet period
    held = db.run(refunds.request_refund, b["id"], amount=1_000, requested_by="key_b")
    db.run(credits.void_credit, voided["id"], reason="mistake")
    clock.advance(days=1)
    db.run(expiry.run_expiry)  # b's lot: 1,500 expires
    spend(api, b["id"], 2_500, "ev-over")  # 2,000 of cash, 500 unfunded

    r = liabilities(api)

    assert r.status_code == 200
    assert r.json() == {
        "currency": "USD",
        "cash_available": 10_000,
        "cash_held": 1_000,
        "credit_outstanding": 0,
        "credit_granted": 7_500,
        "credit_used": 4_500,
        "credit_expired": 1_500,
        "credit_voided": 1_500,
        "credit_forfeited": 0,
        "overdelivery_written_off": 500,
    }
    assert held["status"] == "pending"


def test_granted_credit_is_always_outstanding_used_expired_voided_or_forfeited(api, db, clock):
    acct = make_account(db, cash=1_000)
    grant(db, acct["id"], amount=700, expires_at=T0 + DAY)
    grant(db, acct["id"], amount=900, days=30)
    spend(api, acct["id"], 1_000, "ev-1")
    clock.advance(days=2)
    db.run(expiry.run_expiry)

    body = liabilities(api).json()

    assert body["credit_granted"] == 1_600
    assert body["credit_granted"] == (
        body["credit_outstanding"]
        + body["credit_used"]
        + body["credit_expired"]
        + body["credit_voided"]
        + body["credit_forfeited"]
    )


def test_each_currency_is_reported_on_its_own(api, db):
    usd = make_account(db, cash=1_000)
    jpy = make_account(db, currency="JPY", cash=50_000)
    grant(db, usd["id"], amount=300)
    grant(db, jpy["id"], amount=7_000)

    assert liabilities(api, "JPY").json() | {"currency": None} == {
        **ZEROS,
        "currency": None,
        "cash_available": 50_000,
        "credit_outstanding": 7_000,
        "credit_granted": 7_000,
    }
    assert liabilities(api, "USD").json()["cash_available"] == 1_000


def test_the_service_and_the_endpoint_agree(api, db):
    acct = make_account(db, cash=1_000)
    grant(db, acct["id"], amount=300)
    assert liabilities(api).json() == db.read(reports.liabilities, "USD")


def test_admin_may_read_the_report(api):
    assert liabilities(api, caller=api.admin).status_code == 200


# --- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["currency=XYZ", "currency=usd", "currency=", ""])
def test_an_unknown_or_missing_currency_is_422(api, query):
    r = api.finance.get(f"/v1/reports/liabilities?{query}")
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] in {"unknown_currency", "validation_error"}


def test_an_unknown_currency_names_its_code(api):
    assert liabilities(api, "XYZ").json()["code"] == "unknown_currency"


def test_the_report_needs_a_key(api):
    assert api.client.get("/v1/reports/liabilities?currency=USD").status_code == 401


@pytest.mark.parametrize("role", ["ingest", "advertiser"])
def test_only_finance_and_admin_may_read_the_report(api, db, role):
    caller = api.advertiser(make_account(db)["business_id"]) if role == "advertiser" else api.ingest
    r = liabilities(api, caller=caller)
    assert r.status_code == 403
    assert r.json()["code"] == "forbidden"


def test_an_unknown_report_is_404(api):
    assert api.finance.get("/v1/reports/assets?currency=USD").status_code == 404
