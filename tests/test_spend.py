"""Spend ingestion through POST /v1/spend: funding order, idempotency by event_id, rejections."""

from __future__ import annotations

from datetime import timedelta

import pytest

from factories import deposit, grant, make_account
from tests_support import at, balances, event


@pytest.fixture
def acct(db):
    return make_account(db, cash=10_000)["id"]


def spend(api, *events, expect=200):
    r = api.ingest.post("/v1/spend", json={"events": list(events)})
    assert r.status_code == expect, r.text
    return r.json()["results"] if expect == 200 else r.json()


def test_credit_is_spent_before_cash(api, db, acct):
    lot = grant(db, acct, amount=3_000)["id"]
    [res] = spend(api, event("e1", acct, 5_000))
    assert res == {
        "event_id": "e1",
        "status": "applied",
        "credit_used": 3_000,
        "cash_used": 2_000,
        "unfunded": 0,
        "lots": [{"lot_id": lot, "amount": 3_000}],
    }
    assert balances(db, acct) == {"cash": 8_000, "held": 0, "lots": {lot: (0, "used")}}


def test_spend_beyond_all_funds_is_unfunded_never_debt(api, db, acct):
    [res] = spend(api, event("e1", acct, 12_500))
    assert (res["credit_used"], res["cash_used"], res["unfunded"]) == (0, 10_000, 2_500)
    assert balances(db, acct)["cash"] == 0
    [res] = spend(api, event("e2", acct, 100))
    assert res["unfunded"] == 100


def test_campaign_scoped_credit_funds_only_its_campaign_and_comes_first(api, db, acct):
    general = grant(db, acct, amount=1_000, priority=0)["id"]
    scoped = grant(db, acct, amount=1_000, priority=90, campaign_id="cmp_A")["id"]
    [b] = spend(api, event("b", acct, 500, campaign_id="cmp_B"))
    assert b["lots"] == [{"lot_id": general, "amount": 500}]
    [a] = spend(api, event("a", acct, 1_200, campaign_id="cmp_A"))
    assert a["lots"] == [{"lot_id": scoped, "amount": 1_000}, {"lot_id": general, "amount": 200}]


def test_lots_are_used_by_priority_then_soonest_expiry(api, db, acct):
    late = grant(db, acct, amount=100, days=60)["id"]
    soon = grant(db, acct, amount=100, days=10)["id"]
    first = grant(db, acct, amount=100, days=90, priority=10)["id"]
    [res] = spend(api, event("e", acct, 250))
    assert res["lots"] == [
        {"lot_id": first, "amount": 100},
        {"lot_id": soon, "amount": 100},
        {"lot_id": late, "amount": 50},
    ]


def test_expired_credit_cannot_fund_later_spend(api, db, acct, clock):
    lot = grant(db, acct, amount=1_000, expires_at=clock.now() + timedelta(hours=1))
    expires = lot["expires_at"]
    clock.advance(hours=2)  # the events arrive late; no expiry run has happened yet
    [before] = spend(
        api, event("before", acct, 10, occurred_at=expires - timedelta(microseconds=1))
    )
    assert before["credit_used"] == 10
    [at_expiry] = spend(api, event("at", acct, 10, occurred_at=expires))
    assert at_expiry["credit_used"] == 0 and at_expiry["cash_used"] == 10


def test_credit_not_yet_effective_does_not_fund_spend(api, db, acct, clock):
    grant(db, acct, amount=1_000, effective_at=clock.now() + timedelta(hours=1), days=5)
    [res] = spend(api, event("e", acct, 10))
    assert res["credit_used"] == 0


def test_a_repeated_event_is_a_duplicate_with_the_first_result(api, db, acct):
    grant(db, acct, amount=300)
    [first] = spend(api, event("e1", acct, 500))
    [again] = spend(api, event("e1", acct, 500))
    assert again == first | {"status": "duplicate"}
    assert balances(db, acct)["cash"] == 9_800


def test_an_event_id_reused_with_other_fields_is_a_conflict(api, db, acct):
    spend(api, event("e1", acct, 500))
    [res] = spend(api, event("e1", acct, 501))
    assert res["status"] == "rejected" and res["code"] == "event_id_conflict"
    assert balances(db, acct)["cash"] == 9_500


def test_repeats_inside_one_batch_are_settled_too(api, db, acct):
    results = spend(api, event("x", acct, 100), event("x", acct, 100), event("x", acct, 999))
    assert [r["status"] for r in results] == ["applied", "duplicate", "rejected"]
    assert results[2]["code"] == "event_id_conflict"
    assert balances(db, acct)["cash"] == 9_900


def test_rejected_events_change_nothing_and_do_not_stop_the_others(api, db, acct, clock):
    closed = make_account(db)["id"]
    with db.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE accounts SET status='closed' WHERE id='{closed}'")
    results = spend(
        api,
        event("ok1", acct, 100),
        event("missing", "acct_nope", 100),
        event("closed", closed, 100),
        event("money", acct, 100, currency="EUR"),
        event("future", acct, 100, occurred_at=clock.now() + timedelta(minutes=6)),
        event("ok2", acct, 100, currency="USD", occurred_at=clock.now() + timedelta(minutes=4)),
    )
    assert [(r["status"], r.get("code")) for r in results] == [
        ("applied", None),
        ("rejected", "account_not_found"),
        ("rejected", "account_closed"),
        ("rejected", "currency_mismatch"),
        ("rejected", "occurred_in_future"),
        ("applied", None),
    ]
    assert balances(db, acct)["cash"] == 9_800


def test_a_rejected_event_may_be_sent_again_once_fixed(api, db, acct):
    [bad] = spend(api, event("e", acct, 100, currency="EUR"))
    assert bad["status"] == "rejected"
    [good] = spend(api, event("e", acct, 100))
    assert good["status"] == "applied"


def test_spend_on_a_suspended_account_is_still_recorded(api, db, acct):
    api.finance.post(f"/v1/accounts/{acct}/suspend")
    [res] = spend(api, event("late", acct, 100))
    assert res["status"] == "applied" and res["cash_used"] == 100


def test_results_come_back_in_the_order_sent_across_accounts(api, db, acct):
    other = make_account(db, cash=50)["id"]
    results = spend(api, *(event(f"e{i}", (acct, other)[i % 2], 10) for i in range(20)))
    assert [r["event_id"] for r in results] == [f"e{i}" for i in range(20)]
    assert balances(db, other)["cash"] == 0
    assert sum(r["unfunded"] for r in results) == 50


def test_a_batch_of_10000_events_is_accepted_and_10001_refused(api, db, acct):
    deposit(db, acct, amount=1_000_000)
    results = spend(api, *(event(f"b{i}", acct, 1) for i in range(10_000)))
    assert len(results) == 10_000 and {r["status"] for r in results} == {"applied"}
    refused = spend(api, *(event(f"c{i}", acct, 1) for i in range(10_001)), expect=422)
    assert refused["code"] == "validation_error"
    assert balances(db, acct)["cash"] == 1_000_000


def test_an_empty_batch_is_refused(api):
    assert spend(api, expect=422)["code"] == "validation_error"


@pytest.mark.parametrize("role", ["finance", "advertiser"])
def test_only_ingest_and_admin_keys_post_spend(api, db, acct, role):
    caller = api.caller(role, make_account(db)["business_id"] if role == "advertiser" else None)
    assert caller.post("/v1/spend", json={"events": [event("e", acct, 1)]}).status_code == 403
    assert api.admin.post("/v1/spend", json={"events": [event("e", acct, 1)]}).status_code == 200


def test_occurred_at_is_kept_to_the_microsecond(api, db, acct):
    when = at("2026-12-01T11:59:59.123456+02:00")
    [res] = spend(api, event("e", acct, 1, occurred_at=when))
    [dup] = spend(api, event("e", acct, 1, occurred_at=when))
    assert res["status"] == "applied" and dup["status"] == "duplicate"
