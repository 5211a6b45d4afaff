"""An account's history: every ledger transaction, newest first, paged, scoped to its business."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from adledger.service import credits, expiry, refunds
from adledger.service.uow import Database
from conftest import T0
from factories import deposit, grant, make_account
from tests_support import event

DAY = timedelta(days=1)


def url(account_id: str, **query: object) -> str:
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    return f"/v1/accounts/{account_id}/transactions" + (f"?{qs}" if qs else "")


def spend(api, account_id, amount, event_id, campaign_id=None):
    r = api.ingest.post(
        "/v1/spend",
        json={"events": [event(event_id, account_id, amount, campaign_id=campaign_id)]},
    )
    assert r.json()["results"][0]["status"] == "applied", r.text


def test_history_lists_every_kind_of_transaction_newest_first(api, db, clock):
    acct = make_account(db)
    dep = deposit(db, acct["id"], amount=10_000, reference="pay_42")
    spent = grant(db, acct["id"], amount=1_000, expires_at=T0 + DAY, reason="welcome")
    voided = grant(db, acct["id"], amount=2_000, days=30, priority=90)
    held = db.run(refunds.request_refund, acct["id"], amount=300, requested_by="key_a")
    db.run(refunds.cancel_refund, held["id"], actor_key_id="key_a")
    paid = db.run(refunds.request_refund, acct["id"], amount=200, requested_by="key_a")
    db.run(refunds.approve_refund, paid["id"], actor_key_id="key_b")
    db.run(refunds.settle_refund, paid["id"], actor_key_id="key_b")
    db.run(credits.void_credit, voided["id"], reason="granted by mistake")
    spend(api, acct["id"], 1_500, "ev-1")  # 1,000 of credit, then 500 of cash
    expiring = grant(db, acct["id"], amount=400, expires_at=T0 + DAY)
    clock.advance(days=1)
    db.run(expiry.run_expiry)

    r = api.finance.get(url(acct["id"]))

    assert r.status_code == 200
    page = r.json()
    assert page["has_more"] is False and page["next_cursor"] is None
    items = page["data"]
    assert [t["kind"] for t in items] == [
        "expiry",
        "credit_grant",
        "spend",
        "void",
        "refund_payout",
        "refund_hold",
        "refund_release",
        "refund_hold",
        "credit_grant",
        "credit_grant",
        "deposit",
    ]
    ids = [t["id"] for t in items]
    assert ids == sorted(ids, reverse=True) and all(i.startswith("txn_") for i in ids)
    assert items[0]["created_at"] == "2026-12-02T12:00:00Z"
    by_kind = {t["kind"]: t for t in reversed(items)}  # the newest of each kind wins
    assert by_kind["deposit"] | {"id": None} == {
        "id": None,
        "kind": "deposit",
        "created_at": "2026-12-01T12:00:00Z",
        "cash_delta": 10_000,
        "credit_delta": 0,
        "lot_id": None,
        "event_id": None,
        "refund_id": None,
        "deposit_id": dep["id"],
        "description": "Deposit pay_42",
    }
    assert (by_kind["spend"]["cash_delta"], by_kind["spend"]["credit_delta"]) == (-500, -1_000)
    assert (by_kind["spend"]["event_id"], by_kind["spend"]["lot_id"]) == ("ev-1", spent["id"])
    assert (by_kind["void"]["lot_id"], by_kind["void"]["credit_delta"]) == (voided["id"], -2_000)
    assert "granted by mistake" in by_kind["void"]["description"]
    assert (by_kind["expiry"]["lot_id"], by_kind["expiry"]["credit_delta"]) == (
        expiring["id"],
        -400,
    )
    assert by_kind["refund_release"]["refund_id"] == held["id"]
    assert by_kind["refund_release"]["cash_delta"] == 300
    assert by_kind["refund_payout"]["refund_id"] == paid["id"]
    assert by_kind["refund_payout"]["cash_delta"] == 0  # paid out of held cash
    assert by_kind["refund_hold"]["cash_delta"] == -200


def test_history_shows_clawed_back_and_forfeited_credit_of_a_closing_refund(api, db, clock):
    closing = Database(replace(db.settings, refund_closes_account=True), clock, db.engine)
    acct = make_account(db)
    dep = deposit(db, acct["id"], amount=10_000)
    bonus = db.run(
        credits.grant_credit,
        acct["id"],
        amount=1_000,
        expires_at=T0 + 30 * DAY,
        reason="deposit bonus",
        source="deposit_bonus",
        deposit_id=dep["id"],
    )
    manual = grant(db, acct["id"], amount=500)
    rf = closing.run(refunds.request_refund, acct["id"], amount=10_000, requested_by="key_a")
    closing.run(refunds.approve_refund, rf["id"], actor_key_id="key_b")
    closing.run(refunds.settle_refund, rf["id"], actor_key_id="key_b")

    items = api.finance.get(url(acct["id"], limit=3)).json()["data"]

    assert [(t["kind"], t["lot_id"], t["credit_delta"]) for t in items] == [
        ("forfeit", manual["id"], -500),
        ("refund_payout", None, 0),
        ("clawback", bonus["id"], -1_000),
    ]
    assert items[2]["refund_id"] == rf["id"]


def test_history_pages_with_a_cursor_without_gaps_or_repeats(api, db):
    acct = make_account(db)
    for i in range(7):
        deposit(db, acct["id"], amount=100 + i, reference=f"pay_{i}")

    seen, cursor, sizes = [], None, []
    while True:
        r = api.finance.get(
            url(acct["id"], limit=3, **({"starting_after": cursor} if cursor else {}))
        )
        assert r.status_code == 200
        page = r.json()
        sizes.append(len(page["data"]))
        seen += [t["cash_delta"] for t in page["data"]]
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        cursor = page["next_cursor"]
        assert cursor == page["data"][-1]["id"]

    assert sizes == [3, 3, 1]
    assert seen == [106, 105, 104, 103, 102, 101, 100]


def test_a_page_of_exactly_the_rest_says_there_is_no_more(api, db):
    acct = make_account(db)
    for i in range(2):
        deposit(db, acct["id"], amount=100 + i)
    page = api.finance.get(url(acct["id"], limit=2)).json()
    assert (len(page["data"]), page["has_more"], page["next_cursor"]) == (2, False, None)


def test_history_can_be_narrowed_to_one_kind(api, db):
    acct = make_account(db, cash=1_000)
    grant(db, acct["id"], amount=500)
    spend(api, acct["id"], 100, "ev-1")
    spend(api, acct["id"], 100, "ev-2")

    data = api.finance.get(url(acct["id"], kind="spend")).json()["data"]

    assert [t["event_id"] for t in data] == ["ev-2", "ev-1"]
    assert api.finance.get(url(acct["id"], kind="void")).json()["data"] == []


def test_history_shows_only_this_accounts_transactions(api, db):
    mine = make_account(db, cash=1_000)
    make_account(db, cash=2_000)
    data = api.finance.get(url(mine["id"])).json()["data"]
    assert [t["cash_delta"] for t in data] == [1_000]


def test_an_empty_history_is_an_empty_page(api, db):
    acct = make_account(db)
    assert api.finance.get(url(acct["id"])).json() == {
        "data": [],
        "has_more": False,
        "next_cursor": None,
    }


# --- who may read it ----------------------------------------------------------------------------


def test_an_advertiser_reads_its_own_accounts_history(api, db):
    acct = make_account(db, cash=1_000)
    r = api.advertiser(acct["business_id"]).get(url(acct["id"]))
    assert r.status_code == 200
    assert [t["kind"] for t in r.json()["data"]] == ["deposit"]


def test_another_business_cannot_tell_that_the_account_exists(api, db):
    acct = make_account(db, cash=1_000)
    stranger = api.advertiser(make_account(db)["business_id"])

    hidden = stranger.get(url(acct["id"]))
    missing = stranger.get(url("acct_nope"))

    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["code"] == missing.json()["code"] == "account_not_found"


def test_history_of_an_unknown_account_is_404(api):
    r = api.admin.get(url("acct_nope"))
    assert r.status_code == 404
    assert r.json()["code"] == "account_not_found"


def test_history_needs_a_key(api, db):
    acct = make_account(db)
    assert api.client.get(url(acct["id"])).status_code == 401
    bad = api.client.get(url(acct["id"]), headers={"Authorization": "Bearer adl_wrong"})
    assert bad.status_code == 401


def test_an_ingest_key_may_not_read_history(api, db):
    acct = make_account(db)
    r = api.ingest.get(url(acct["id"]))
    assert r.status_code == 403
    assert r.json()["code"] == "forbidden"


@pytest.mark.parametrize(
    "query", [{"limit": 0}, {"limit": 501}, {"limit": -1}, {"limit": "abc"}, {"kind": "payout"}]
)
def test_a_bad_history_query_is_422(api, db, query):
    acct = make_account(db)
    r = api.finance.get(url(acct["id"], **query))
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("limit", [1, 500])
def test_limits_at_the_edges_are_accepted(api, db, limit):
    acct = make_account(db, cash=1_000)
    assert api.finance.get(url(acct["id"], limit=limit)).status_code == 200
