"""Refunds of prepaid funds through the HTTP API, on SQLite and PostgreSQL.

A refund holds its amount at once, waits for a second pair of eyes, and is then paid out or given
back. Credit is never refunded.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from adledger.config import Settings
from adledger.domain.errors import (
    InsufficientRefundableFunds,
    InvalidRefundTransition,
    RecentSpend,
)
from adledger.domain.ids import new_id
from adledger.domain.ledger import Book, Kind, Leg, Transaction
from adledger.http.app import create_app
from adledger.http.encoding import rfc3339
from adledger.service import accounts, credits, refunds
from adledger.service.uow import Database
from adledger.storage.postings import Posting, post
from adledger.storage.tables import entries, lots, transactions
from adledger.storage.tables import refunds as refunds_table
from factories import deposit, grant, make_account, make_business

# --- helpers ----------------------------------------------------------------------------------


def funded(api, *, cash=10_000, **kw):  # type: ignore[no-untyped-def]
    """An account with `cash` deposited, and an advertiser key of its business."""
    acct = make_account(api.db, cash=cash, **kw)
    return acct, api.advertiser(acct["business_id"])


def balance(api, account_id):  # type: ignore[no-untyped-def]
    r = api.finance.get(f"/v1/accounts/{account_id}/balance")
    assert r.status_code == 200, r.text
    return r.json()


def spend(api, account_id, amount):  # type: ignore[no-untyped-def]
    event = {
        "event_id": new_id("ev"),
        "account_id": account_id,
        "amount": amount,
        "occurred_at": rfc3339(api.db.clock.now()),
    }
    r = api.ingest.post("/v1/spend", json={"events": [event]})
    assert r.status_code == 200, r.text
    return r.json()["results"][0]


def ask(caller, account_id, amount=4_000, **kw):  # type: ignore[no-untyped-def]
    return caller.post(f"/v1/accounts/{account_id}/refunds", json={"amount": amount, **kw})


def requested(caller, account_id, amount=4_000):  # type: ignore[no-untyped-def]
    r = ask(caller, account_id, amount)
    assert r.status_code == 201, r.text
    return r.json()


def assert_problem(r, status, code):  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == code
    assert r.json()["status"] == status


def owe(db, account_id, amount):  # type: ignore[no-untyped-def]
    """Put the account in debt, as a reversed deposit that cash did not cover would."""

    def work(uow):  # type: ignore[no-untyped-def]
        acct = accounts.lock_account(uow, account_id)
        txn = Transaction(
            Kind.DEPOSIT_REVERSAL,
            (Leg(Book.DEBT, -amount), Leg(Book.PAYMENTS, amount)),
            "test: reversed payment",
        )
        post(uow.conn, [Posting(new_id("txn"), account_id, acct.currency, uow.now, txn)])

    db.run(work)


def close(db, account_id):  # type: ignore[no-untyped-def]
    from adledger.storage.tables import accounts as accounts_table

    db.run(
        lambda uow: uow.conn.execute(
            update(accounts_table).where(accounts_table.c.id == account_id).values(status="closed")
        )
    )


def ledger_sums(db, account_id):  # type: ignore[no-untyped-def]
    """The cash and held books summed from their entries (what the stored balances must equal)."""

    def work(uow):  # type: ignore[no-untyped-def]
        rows = uow.conn.execute(
            select(entries.c.book, func.sum(entries.c.amount))
            .where(entries.c.account_id == account_id)
            .group_by(entries.c.book)
        ).all()
        return {book: int(total) for book, total in rows}

    return db.read(work)


def kinds(db, refund_id):  # type: ignore[no-untyped-def]
    def work(uow):  # type: ignore[no-untyped-def]
        query = (
            select(transactions.c.kind)
            .where(transactions.c.refund_id == refund_id)
            .order_by(transactions.c.id)
        )
        return [k for (k,) in uow.conn.execute(query)]

    return db.read(work)


# --- requesting -------------------------------------------------------------------------------


def test_a_refund_holds_the_cash_at_once(api):
    acct, advertiser = funded(api, cash=10_000)
    r = ask(advertiser, acct["id"], 4_000, reason="campaign ended")
    assert r.status_code == 201, r.text
    refund = r.json()
    assert refund["id"].startswith("rf_")
    assert refund | {"id": None} == {
        "id": None,
        "account_id": acct["id"],
        "currency": "USD",
        "amount": 4_000,
        "status": "pending",
        "reason": "campaign ended",
        "requested_at": "2026-12-01T12:00:00Z",
        "requested_by": advertiser.key_id,
        "decided_at": None,
        "decided_by": None,
        "decision_reason": None,
        "completed_at": None,
    }
    bal = balance(api, acct["id"])
    assert bal["cash"] == {"available": 6_000, "held": 4_000, "debt": 0}
    assert bal["refundable"] == 6_000
    assert kinds(api.db, refund["id"]) == ["refund_hold"]
    assert api.finance.get(f"/v1/refunds/{refund['id']}").json() == refund


def test_held_cash_cannot_be_spent(api):
    acct, advertiser = funded(api, cash=10_000)
    requested(advertiser, acct["id"], 8_000)
    result = spend(api, acct["id"], 5_000)
    assert (result["cash_used"], result["unfunded"]) == (2_000, 3_000)
    bal = balance(api, acct["id"])
    assert bal["cash"] == {"available": 0, "held": 8_000, "debt": 0}
    assert bal["depleted"] is True


def test_finance_and_admin_may_request_a_refund_too(api):
    acct, _ = funded(api, cash=10_000)
    assert requested(api.finance, acct["id"], 1_000)["requested_by"] == api.finance.key_id
    assert requested(api.admin, acct["id"], 1_000)["requested_by"] == api.admin.key_id
    assert balance(api, acct["id"])["cash"] == {"available": 8_000, "held": 2_000, "debt": 0}


def test_the_whole_available_cash_can_be_refunded_but_not_a_cent_more(api):
    acct, advertiser = funded(api, cash=10_000)
    r = ask(advertiser, acct["id"], 10_001)
    assert_problem(r, 409, "insufficient_refundable_funds")
    assert r.json()["refundable"] == 10_000
    assert "$100.01" in r.json()["detail"] and "$100.00" in r.json()["detail"]
    assert requested(advertiser, acct["id"], 10_000)["amount"] == 10_000
    assert_problem(ask(advertiser, acct["id"], 1), 409, "insufficient_refundable_funds")


def test_credit_is_never_refunded(api):
    acct, advertiser = funded(api, cash=1_000)
    grant(api.db, acct["id"], amount=50_000)
    assert_problem(ask(advertiser, acct["id"], 2_000), 409, "insufficient_refundable_funds")
    assert balance(api, acct["id"])["cash"] == {"available": 1_000, "held": 0, "debt": 0}


def test_a_refund_is_refused_within_the_quiet_period_after_spend(api, clock):
    acct, advertiser = funded(api, cash=10_000)
    spend(api, acct["id"], 1_000)
    r = ask(advertiser, acct["id"], 1_000)
    assert_problem(r, 409, "recent_spend")
    assert r.json()["refunds_open_at"] == "2026-12-01T15:00:00Z"
    assert "within the last 3 hours" in r.json()["detail"]
    assert "from 1 Dec 2026 at 15:00 UTC" in r.json()["detail"]
    clock.advance(hours=2, minutes=59)
    assert_problem(ask(advertiser, acct["id"], 1_000), 409, "recent_spend")
    clock.advance(minutes=1)
    assert requested(advertiser, acct["id"], 9_000)["amount"] == 9_000


def test_the_quiet_period_follows_the_setting(api, clock, database_url):
    acct, _ = funded(api, cash=10_000)
    spend(api, acct["id"], 1_000)
    short = Database(Settings(database_url=database_url, refund_quiet_period_seconds=600), clock)
    try:
        with pytest.raises(RecentSpend):
            short.run(refunds.request_refund, acct["id"], amount=100, requested_by="key_x")
        clock.advance(minutes=10)
        assert (
            short.run(refunds.request_refund, acct["id"], amount=100, requested_by="key_x")[
                "status"
            ]
            == "pending"
        )
    finally:
        short.dispose()


def test_a_suspended_account_cannot_ask_for_a_refund(api):
    acct, advertiser = funded(api, cash=10_000)
    api.db.run(accounts.suspend_account, acct["id"])
    assert_problem(ask(advertiser, acct["id"]), 409, "account_not_in_good_standing")


def test_an_account_in_debt_cannot_ask_for_a_refund(api):
    acct, advertiser = funded(api, cash=10_000)
    owe(api.db, acct["id"], 2_500)
    r = ask(advertiser, acct["id"])
    assert_problem(r, 409, "account_not_in_good_standing")
    assert r.json()["debt"] == 2_500
    assert "$25.00" in r.json()["detail"]


def test_a_closed_account_cannot_ask_for_a_refund(api):
    acct, advertiser = funded(api, cash=10_000)
    close(api.db, acct["id"])
    assert_problem(ask(advertiser, acct["id"]), 409, "account_closed")


def test_the_refusals_are_checked_in_the_contracts_order(api):
    acct, advertiser = funded(api, cash=10_000)
    spend(api, acct["id"], 1_000)  # recent spend ...
    owe(api.db, acct["id"], 100)  # ... and debt ...
    assert_problem(ask(advertiser, acct["id"], 10**9), 409, "account_not_in_good_standing")
    close(api.db, acct["id"])  # ... and closed: closed wins
    assert_problem(ask(advertiser, acct["id"], 10**9), 409, "account_closed")


@pytest.mark.parametrize(
    "body",
    [
        {"amount": 10.5},
        {"amount": "100"},
        {"amount": True},
        {"amount": 0},
        {"amount": -5},
        {"amount": 10**15 + 1},
        {},
        {"amount": 100, "currency": "USD"},
        {"amount": 100, "reason": ""},
    ],
)
def test_a_malformed_refund_request_is_refused_with_422(api, body):
    acct, advertiser = funded(api, cash=10_000)
    r = advertiser.post(f"/v1/accounts/{acct['id']}/refunds", json=body)
    assert_problem(r, 422, "validation_error")
    assert balance(api, acct["id"])["cash"] == {"available": 10_000, "held": 0, "debt": 0}


def test_a_refund_for_an_unknown_account_is_404(api):
    assert_problem(ask(api.finance, "acct_nope"), 404, "account_not_found")


# --- who may do what --------------------------------------------------------------------------


def test_an_advertiser_of_another_business_never_sees_the_account_or_its_refunds(api):
    acct, advertiser = funded(api, cash=10_000)
    refund = requested(advertiser, acct["id"])
    stranger = api.advertiser(make_business(api.db, name="Other")["id"])
    assert_problem(ask(stranger, acct["id"]), 404, "account_not_found")
    assert_problem(stranger.get(f"/v1/refunds/{refund['id']}"), 404, "refund_not_found")
    assert_problem(stranger.post(f"/v1/refunds/{refund['id']}/cancel"), 404, "refund_not_found")
    assert_problem(stranger.get(f"/v1/accounts/{acct['id']}/refunds"), 404, "account_not_found")
    assert stranger.get("/v1/refunds").json()["data"] == []
    assert api.finance.get(f"/v1/refunds/{refund['id']}").json()["status"] == "pending"


def test_an_advertiser_may_not_decide_or_settle_a_refund(api):
    acct, advertiser = funded(api, cash=10_000)
    refund = requested(api.finance, acct["id"])
    for action, body in [
        ("approve", None),
        ("reject", {"reason": "no"}),
        ("settle", None),
        ("fail", None),
    ]:
        r = advertiser.post(f"/v1/refunds/{refund['id']}/{action}", json=body)
        assert_problem(r, 403, "forbidden")


def test_an_ingest_key_may_not_touch_refunds(api):
    acct, _ = funded(api, cash=10_000)
    refund = requested(api.finance, acct["id"])
    assert_problem(ask(api.ingest, acct["id"]), 403, "forbidden")
    assert_problem(api.ingest.get("/v1/refunds"), 403, "forbidden")
    assert_problem(api.ingest.get(f"/v1/refunds/{refund['id']}"), 403, "forbidden")
    assert_problem(api.ingest.get(f"/v1/accounts/{acct['id']}/refunds"), 403, "forbidden")
    assert_problem(api.ingest.post(f"/v1/refunds/{refund['id']}/cancel"), 403, "forbidden")


def test_every_refund_endpoint_wants_a_key(api):
    acct, _ = funded(api, cash=10_000)
    refund = requested(api.finance, acct["id"])
    c = api.client
    for r in [
        c.post(f"/v1/accounts/{acct['id']}/refunds", json={"amount": 1}),
        c.get("/v1/refunds"),
        c.get(f"/v1/refunds/{refund['id']}"),
        c.get(f"/v1/accounts/{acct['id']}/refunds"),
        *(
            c.post(f"/v1/refunds/{refund['id']}/{a}")
            for a in ("approve", "reject", "cancel", "settle", "fail")
        ),
        c.get(f"/v1/refunds/{refund['id']}", headers={"Authorization": "Bearer adl_wrong"}),
    ]:
        assert_problem(r, 401, "unauthorized")


# --- the lifecycle ----------------------------------------------------------------------------


def test_a_refund_can_never_be_approved_with_the_key_that_requested_it(api):
    acct, _ = funded(api, cash=10_000)
    refund = requested(api.finance, acct["id"])
    r = api.finance.post(f"/v1/refunds/{refund['id']}/approve")
    assert_problem(r, 403, "self_approval_forbidden")
    assert api.finance.get(f"/v1/refunds/{refund['id']}").json()["status"] == "pending"
    other = api.caller("finance", name="second approver")
    r = other.post(f"/v1/refunds/{refund['id']}/approve", json={"reason": "checked"})
    assert r.status_code == 200, r.text
    assert r.json() | {"id": None} == refund | {
        "id": None,
        "status": "approved",
        "decided_at": "2026-12-01T12:00:00Z",
        "decided_by": other.key_id,
        "decision_reason": "checked",
    }


def test_an_approved_refund_is_paid_out_when_settled(api, clock):
    acct, advertiser = funded(api, cash=10_000)
    refund = requested(advertiser, acct["id"], 4_000)
    assert api.finance.post(f"/v1/refunds/{refund['id']}/approve").status_code == 200
    clock.advance(days=2)
    r = api.admin.post(f"/v1/refunds/{refund['id']}/settle")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "paid"
    assert r.json()["completed_at"] == "2026-12-03T12:00:00Z"
    assert r.json()["decided_by"] == api.finance.key_id
    bal = balance(api, acct["id"])
    assert bal["cash"] == {"available": 6_000, "held": 0, "debt": 0}
    assert bal["depleted"] is False
    assert kinds(api.db, refund["id"]) == ["refund_hold", "refund_payout"]
    sums = ledger_sums(api.db, acct["id"])
    assert sums[Book.CASH] == 6_000 and sums.get(Book.HELD, 0) == 0


def test_a_rejected_refund_gives_the_cash_back(api):
    acct, advertiser = funded(api, cash=10_000)
    refund = requested(advertiser, acct["id"], 4_000)
    assert_problem(api.finance.post(f"/v1/refunds/{refund['id']}/reject"), 422, "validation_error")
    r = api.finance.post(f"/v1/refunds/{refund['id']}/reject", json={"reason": "fraud check"})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["decision_reason"]) == ("rejected", "fraud check")
    assert balance(api, acct["id"])["cash"] == {"available": 10_000, "held": 0, "debt": 0}
    assert kinds(api.db, refund["id"]) == ["refund_hold", "refund_release"]


def test_the_requesting_business_may_cancel_a_pending_refund(api):
    acct, advertiser = funded(api, cash=10_000)
    refund = requested(advertiser, acct["id"], 4_000)
    colleague = api.advertiser(acct["business_id"])
    r = colleague.post(f"/v1/refunds/{refund['id']}/cancel", json={"reason": "changed my mind"})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["decided_by"]) == ("canceled", colleague.key_id)
    assert balance(api, acct["id"])["cash"] == {"available": 10_000, "held": 0, "debt": 0}


def test_staff_may_cancel_a_pending_refund(api):
    acct, advertiser = funded(api, cash=10_000)
    refund = requested(advertiser, acct["id"], 4_000)
    assert api.admin.post(f"/v1/refunds/{refund['id']}/cancel").json()["status"] == "canceled"


def test_a_failed_payout_gives_the_cash_back(api):
    acct, advertiser = funded(api, cash=10_000)
    refund = requested(advertiser, acct["id"], 4_000)
    api.finance.post(f"/v1/refunds/{refund['id']}/approve")
    r = api.finance.post(f"/v1/refunds/{refund['id']}/fail", json={"reason": "card expired"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "failed"
    assert balance(api, acct["id"])["cash"] == {"available": 10_000, "held": 0, "debt": 0}
    assert kinds(api.db, refund["id"]) == ["refund_hold", "refund_release"]


@pytest.mark.parametrize(
    "steps, action",
    [
        ([], "settle"),
        ([], "fail"),
        (["approve"], "approve"),
        (["approve"], "cancel"),
        (["approve"], "reject"),
        (["cancel"], "approve"),
        (["approve", "settle"], "fail"),
        (["approve", "fail"], "settle"),
    ],
)
def test_a_step_the_lifecycle_does_not_allow_is_refused_with_409(api, steps, action):
    acct, advertiser = funded(api, cash=10_000)
    refund = requested(advertiser, acct["id"], 4_000)
    for step in steps:
        assert api.admin.post(f"/v1/refunds/{refund['id']}/{step}").status_code == 200
    before = balance(api, acct["id"])["cash"]
    body = {"reason": "x"} if action == "reject" else None
    r = api.admin.post(f"/v1/refunds/{refund['id']}/{action}", json=body)
    assert_problem(r, 409, "invalid_refund_transition")
    assert balance(api, acct["id"])["cash"] == before


def test_an_unknown_refund_is_404(api):
    assert_problem(api.finance.get("/v1/refunds/rf_nope"), 404, "refund_not_found")
    assert_problem(api.finance.post("/v1/refunds/rf_nope/approve"), 404, "refund_not_found")


def test_a_repeated_request_with_the_same_idempotency_key_holds_once(api):
    acct, advertiser = funded(api, cash=10_000)
    headers = {"Idempotency-Key": "refund-1"}
    first = advertiser.post(
        f"/v1/accounts/{acct['id']}/refunds", json={"amount": 3_000}, headers=headers
    )
    again = advertiser.post(
        f"/v1/accounts/{acct['id']}/refunds", json={"amount": 3_000}, headers=headers
    )
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert balance(api, acct["id"])["cash"] == {"available": 7_000, "held": 3_000, "debt": 0}
    other = advertiser.post(
        f"/v1/accounts/{acct['id']}/refunds", json={"amount": 2_000}, headers=headers
    )
    assert_problem(other, 422, "idempotency_key_reused")


# --- lists ------------------------------------------------------------------------------------


def test_refunds_are_listed_newest_first_by_status_and_page(api):
    acct, advertiser = funded(api, cash=10_000)
    made = [requested(advertiser, acct["id"], 1_000) for _ in range(3)]
    api.finance.post(f"/v1/refunds/{made[0]['id']}/approve")
    page = api.finance.get("/v1/refunds", params={"limit": 2}).json()
    assert [r["id"] for r in page["data"]] == [made[2]["id"], made[1]["id"]]
    assert page["has_more"] is True
    rest = api.finance.get(
        "/v1/refunds", params={"limit": 2, "starting_after": page["next_cursor"]}
    ).json()
    assert ([r["id"] for r in rest["data"]], rest["has_more"], rest["next_cursor"]) == (
        [made[0]["id"]],
        False,
        None,
    )
    approved = api.finance.get("/v1/refunds", params={"status": "approved"}).json()["data"]
    assert [r["id"] for r in approved] == [made[0]["id"]]
    pending = api.finance.get(f"/v1/accounts/{acct['id']}/refunds?status=pending").json()
    assert [r["id"] for r in pending["data"]] == [made[2]["id"], made[1]["id"]]


def test_an_advertiser_lists_only_its_own_businesss_refunds(api):
    acct, advertiser = funded(api, cash=10_000)
    other, other_advertiser = funded(api, cash=10_000)
    mine = requested(advertiser, acct["id"], 1_000)
    theirs = requested(other_advertiser, other["id"], 1_000)
    assert [r["id"] for r in advertiser.get("/v1/refunds").json()["data"]] == [mine["id"]]
    assert [
        r["id"] for r in advertiser.get(f"/v1/accounts/{acct['id']}/refunds").json()["data"]
    ] == [mine["id"]]
    listed = {r["id"] for r in api.finance.get("/v1/refunds").json()["data"]}
    assert listed == {mine["id"], theirs["id"]}


@pytest.mark.parametrize("query", ["status=done", "limit=0", "limit=501", "limit=x"])
def test_a_bad_list_query_is_refused_with_422(api, query):
    acct, advertiser = funded(api, cash=10_000)
    assert api.finance.get(f"/v1/refunds?{query}").status_code == 422
    assert advertiser.get(f"/v1/accounts/{acct['id']}/refunds?{query}").status_code == 422


# --- closing the account, and clawing back deposit bonuses ------------------------------------


def test_a_paid_refund_leaves_the_account_open_by_default(api):
    acct, advertiser = funded(api, cash=10_000)
    lot = grant(api.db, acct["id"], amount=3_000)
    refund = requested(advertiser, acct["id"], 10_000)
    api.finance.post(f"/v1/refunds/{refund['id']}/approve")
    api.finance.post(f"/v1/refunds/{refund['id']}/settle")
    assert api.finance.get(f"/v1/accounts/{acct['id']}").json()["status"] == "active"
    bal = balance(api, acct["id"])
    assert bal["credit"]["available"] == 3_000
    assert bal["credit"]["lots"][0]["id"] == lot["id"]


def test_a_paid_refund_closes_the_account_and_forfeits_its_credit_when_configured(
    clock, database_url
):
    closing = Database(Settings(database_url=database_url, refund_closes_account=True), clock)
    try:
        with TestClient(create_app(db=closing, migrate=False)) as client:
            from conftest import Api

            api = Api(client, closing)
            acct, advertiser = funded(api, cash=10_000)
            lots_granted = [grant(closing, acct["id"], amount=a) for a in (3_000, 2_000)]
            spend(api, acct["id"], 500)  # spent from the first lot: what was spent stays spent
            clock.advance(hours=3)
            warning = "A paid refund also closes the account and forfeits all of its credit."
            assert warning in balance(api, acct["id"])["explanation"]
            refund = requested(advertiser, acct["id"], 10_000)
            api.finance.post(f"/v1/refunds/{refund['id']}/approve")
            assert api.finance.get(f"/v1/accounts/{acct['id']}").json()["status"] == "active"
            r = api.finance.post(f"/v1/refunds/{refund['id']}/settle")
            assert r.json()["status"] == "paid"
            assert api.finance.get(f"/v1/accounts/{acct['id']}").json()["status"] == "closed"
            bal = balance(api, acct["id"])
            assert bal["cash"] == {"available": 0, "held": 0, "debt": 0}
            assert bal["credit"] == {"available": 0, "lots": []}
            assert "closed" in bal["explanation"]
            closed = [_lot(closing, lot["id"]) for lot in lots_granted]
            assert [(lot.status, lot.remaining) for lot in closed] == [("forfeited", 0)] * 2
            sums = ledger_sums(closing, acct["id"])
            assert sums[Book.CREDIT] == 0
            assert sums[Book.FORFEITED] == 4_500
            assert_problem(ask(advertiser, acct["id"], 1), 409, "account_closed")
    finally:
        closing.dispose()


def _bonus(db, account_id, deposit_id, amount):  # type: ignore[no-untyped-def]
    return db.run(
        credits.grant_credit,
        account_id,
        amount=amount,
        expires_at=db.clock.now() + timedelta(days=30),
        reason="deposit bonus",
        source="deposit_bonus",
        deposit_id=deposit_id,
    )


def _lot(db, lot_id):  # type: ignore[no-untyped-def]
    return db.read(lambda uow: uow.conn.execute(select(lots).where(lots.c.id == lot_id)).one())


def test_a_paid_refund_claws_back_deposit_bonus_in_proportion_rounded_up(api):
    acct, advertiser = funded(api, cash=0)
    dep = deposit(api.db, acct["id"], amount=30_000)
    lot = _bonus(api.db, acct["id"], dep["id"], 1_000)
    assert "deposit-bonus credit" in balance(api, acct["id"])["explanation"]
    refund = requested(advertiser, acct["id"], 10_000)
    api.finance.post(f"/v1/refunds/{refund['id']}/approve")
    assert _lot(api.db, lot["id"]).remaining == 1_000  # nothing is taken before payment
    api.finance.post(f"/v1/refunds/{refund['id']}/settle")
    assert _lot(api.db, lot["id"]).remaining == 1_000 - 334  # a third of 1,000, rounded up
    assert kinds(api.db, refund["id"]) == ["refund_hold", "clawback", "refund_payout"]
    assert balance(api, acct["id"])["credit"]["available"] == 666


def test_refunding_every_bonus_earning_deposit_forfeits_the_whole_unspent_bonus(api):
    acct, advertiser = funded(api, cash=0)
    dep = deposit(api.db, acct["id"], amount=10_000)
    lot = _bonus(api.db, acct["id"], dep["id"], 1_000)
    deposit(api.db, acct["id"], amount=5_000, reference="pay_plain")  # earned no bonus
    refund = requested(advertiser, acct["id"], 15_000)
    api.finance.post(f"/v1/refunds/{refund['id']}/approve")
    api.finance.post(f"/v1/refunds/{refund['id']}/settle")
    row = _lot(api.db, lot["id"])
    assert (row.remaining, row.status) == (0, "forfeited")


def test_deposits_older_than_90_days_earn_no_clawback(api, clock):
    acct, advertiser = funded(api, cash=0)
    dep = deposit(api.db, acct["id"], amount=10_000)
    lot = _bonus(api.db, acct["id"], dep["id"], 1_000)
    clock.advance(days=91)
    refund = requested(advertiser, acct["id"], 10_000)
    api.finance.post(f"/v1/refunds/{refund['id']}/approve")
    api.finance.post(f"/v1/refunds/{refund['id']}/settle")
    assert _lot(api.db, lot["id"]).remaining == 1_000


def test_a_canceled_refund_claws_nothing_back(api):
    acct, advertiser = funded(api, cash=0)
    dep = deposit(api.db, acct["id"], amount=10_000)
    lot = _bonus(api.db, acct["id"], dep["id"], 1_000)
    refund = requested(advertiser, acct["id"], 10_000)
    advertiser.post(f"/v1/refunds/{refund['id']}/cancel")
    assert _lot(api.db, lot["id"]).remaining == 1_000


# --- concurrency ------------------------------------------------------------------------------


def _in_threads(n, fn):  # type: ignore[no-untyped-def]
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def run(i):  # type: ignore[no-untyped-def]
        barrier.wait()
        try:
            results[i] = fn(i)
        except Exception as exc:  # collected and checked by the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def test_sixteen_concurrent_refund_requests_never_hold_more_than_was_deposited(db):
    acct = make_account(db, cash=10_000)
    results = _in_threads(
        16,
        lambda i: db.run(refunds.request_refund, acct["id"], amount=1_000, requested_by=f"key_{i}"),
    )
    made = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, InsufficientRefundableFunds)]
    assert (len(made), len(refused)) == (10, 6), results
    row = db.read(accounts.load_account, acct["id"])
    assert (row.cash_available, row.cash_held) == (0, 10_000)
    assert row.cash_available + row.cash_held == 10_000
    sums = ledger_sums(db, acct["id"])
    assert (sums.get(Book.CASH, 0), sums[Book.HELD]) == (0, 10_000)


def test_an_approval_racing_a_cancel_lets_only_one_win(db):
    acct = make_account(db, cash=10_000)
    actions = [refunds.approve_refund, refunds.cancel_refund] * 4
    for _ in range(5):
        refund = db.run(refunds.request_refund, acct["id"], amount=1_000, requested_by="key_a")
        results = _in_threads(
            len(actions),
            lambda i, rid=refund["id"]: db.run(actions[i], rid, actor_key_id=f"key_{i}"),
        )
        won = [r for r in results if isinstance(r, dict)]
        lost = [r for r in results if isinstance(r, InvalidRefundTransition)]
        assert (len(won), len(lost)) == (1, len(actions) - 1), results
        final = db.read(refunds.get_refund, refund["id"])["status"]
        assert final == won[0]["status"]
    row = db.read(accounts.load_account, acct["id"])
    statuses = db.read(lambda uow: [s for (s,) in uow.conn.execute(select(refunds_table.c.status))])
    assert row.cash_held == 1_000 * statuses.count("approved")
    assert row.cash_available + row.cash_held == 10_000


@pytest.mark.parametrize(
    "action, body",
    [
        ("approve", {"note": "typo"}),
        ("cancel", {"reason": "x" * 501}),
        ("reject", {"reason": ""}),
        ("reject", {}),
    ],
)
def test_a_malformed_decision_is_refused_with_422_and_changes_nothing(api, action, body):
    acct, advertiser = funded(api, cash=10_000)
    refund = requested(advertiser, acct["id"], 4_000)
    assert_problem(
        api.admin.post(f"/v1/refunds/{refund['id']}/{action}", json=body), 422, "validation_error"
    )
    assert api.finance.get(f"/v1/refunds/{refund['id']}").json()["status"] == "pending"
