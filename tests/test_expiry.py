"""Credit expiry: due lots lose their remainder to breakage, once, and never in the future."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import text, update

from adledger.service import expiry, reports, verify
from adledger.service.spend import SpendEvent, post_spend
from adledger.storage.tables import lots
from conftest import T0
from factories import grant, make_account
from tests_support import balances, event

DAY = timedelta(days=1)
US = timedelta(microseconds=1)


def spend(api, account_id, amount, occurred_at, event_id):
    r = api.ingest.post(
        "/v1/spend", json={"events": [event(event_id, account_id, amount, occurred_at=occurred_at)]}
    )
    assert r.status_code == 200, r.text
    result = r.json()["results"][0]
    assert result["status"] == "applied", result
    return result


def run(api, as_of=None, caller=None):
    body = {} if as_of is None else {"as_of": as_of.isoformat()}
    return (caller or api.finance).post("/v1/expirations/run", json=body)


def history_kinds(api, account_id):
    r = api.finance.get(f"/v1/accounts/{account_id}/transactions")
    return [t["kind"] for t in r.json()["data"]]


# --- what expires -----------------------------------------------------------------------------


def test_a_due_lot_loses_its_unspent_remainder_to_breakage(api, db, clock):
    acct = make_account(db, cash=10_000)
    lot = grant(db, acct["id"], amount=5_000, expires_at=T0 + DAY)
    spend(api, acct["id"], 2_000, T0, "ev-1")
    clock.advance(days=1)

    r = run(api)

    assert r.status_code == 200
    assert r.json() == {
        "expired_lots": 1,
        "expired_amounts": {"USD": 3_000},
        "lapsed_redemptions": 0,
    }
    assert balances(db, acct["id"]) == {
        "cash": 10_000,
        "held": 0,
        "lots": {lot["id"]: (0, "expired")},
    }
    newest = api.finance.get(f"/v1/accounts/{acct['id']}/transactions").json()["data"][0]
    assert newest["kind"] == "expiry"
    assert newest["credit_delta"] == -3_000
    assert newest["cash_delta"] == 0
    assert newest["lot_id"] == lot["id"]


def test_running_expiry_twice_does_nothing_the_second_time(api, db, clock):
    acct = make_account(db)
    grant(db, acct["id"], amount=5_000, expires_at=T0 + DAY)
    clock.advance(days=2)

    assert run(api).json() == {
        "expired_lots": 1,
        "expired_amounts": {"USD": 5_000},
        "lapsed_redemptions": 0,
    }
    assert run(api).json() == {"expired_lots": 0, "expired_amounts": {}, "lapsed_redemptions": 0}
    assert history_kinds(api, acct["id"]) == ["expiry", "credit_grant"]


def test_a_lot_not_yet_due_keeps_its_credit(api, db, clock):
    acct = make_account(db)
    due = grant(db, acct["id"], amount=1_000, expires_at=T0 + DAY)
    later = grant(db, acct["id"], amount=2_000, expires_at=T0 + 3 * DAY)
    clock.advance(days=1)  # exactly the first lot's expires_at: it is due, the other is not

    assert run(api).json() == {
        "expired_lots": 1,
        "expired_amounts": {"USD": 1_000},
        "lapsed_redemptions": 0,
    }
    assert balances(db, acct["id"])["lots"] == {
        due["id"]: (0, "expired"),
        later["id"]: (2_000, "active"),
    }


def test_a_past_as_of_expires_only_the_lots_due_by_then(api, db, clock):
    acct = make_account(db)
    first = grant(db, acct["id"], amount=1_000, expires_at=T0 + DAY)
    second = grant(db, acct["id"], amount=2_000, expires_at=T0 + 3 * DAY)
    clock.advance(days=5)

    assert run(api, as_of=T0 + 2 * DAY).json() == {
        "expired_lots": 1,
        "expired_amounts": {"USD": 1_000},
        "lapsed_redemptions": 0,
    }
    assert balances(db, acct["id"])["lots"][second["id"]] == (2_000, "active")
    assert run(api).json() == {
        "expired_lots": 1,
        "expired_amounts": {"USD": 2_000},
        "lapsed_redemptions": 0,
    }
    assert balances(db, acct["id"])["lots"] == {
        first["id"]: (0, "expired"),
        second["id"]: (0, "expired"),
    }


def test_one_run_expires_lots_of_many_accounts_and_totals_them_by_currency(api, db, clock):
    usd = [make_account(db) for _ in range(3)]
    jpy = make_account(db, currency="JPY")
    for i, acct in enumerate(usd):
        grant(db, acct["id"], amount=100 * (i + 1), expires_at=T0 + DAY)
    grant(db, jpy["id"], amount=7_000, expires_at=T0 + DAY)
    grant(db, jpy["id"], amount=500, expires_at=T0 + 2 * DAY)
    clock.advance(days=2)

    assert run(api).json() == {
        "expired_lots": 5,
        "expired_amounts": {"JPY": 7_500, "USD": 600},
        "lapsed_redemptions": 0,
    }


def test_an_empty_lot_that_is_due_expires_without_a_transaction(api, db, clock):
    acct = make_account(db)
    lot = grant(db, acct["id"], amount=1_000, expires_at=T0 + DAY)
    spend(api, acct["id"], 1_000, T0, "ev-all")
    # Spend marks an emptied lot `used`; put it back to active-and-empty to exercise the rule.
    with db.engine.begin() as conn:
        conn.execute(update(lots).where(lots.c.id == lot["id"]).values(status="active"))
    clock.advance(days=1)

    assert run(api).json() == {
        "expired_lots": 1,
        "expired_amounts": {"USD": 0},
        "lapsed_redemptions": 0,
    }
    assert balances(db, acct["id"])["lots"] == {lot["id"]: (0, "expired")}
    assert history_kinds(api, acct["id"]) == ["spend", "credit_grant"]


def test_used_voided_and_expired_lots_are_left_alone(api, db, clock):
    acct = make_account(db, cash=1_000)
    used = grant(db, acct["id"], amount=500, expires_at=T0 + DAY)
    spend(api, acct["id"], 500, T0, "ev-used")
    clock.advance(days=2)
    run(api)

    assert run(api).json()["expired_lots"] == 0
    assert balances(db, acct["id"])["lots"] == {used["id"]: (0, "used")}


# --- the boundary: a lot funds spend that occurred strictly before expires_at -----------------


def test_spend_one_microsecond_before_expires_at_is_funded_by_the_lot(api, db, clock):
    acct = make_account(db, cash=10_000)
    lot = grant(db, acct["id"], amount=5_000, expires_at=T0 + DAY)
    clock.advance(days=1)  # the lot is due, but no expiry run has taken it yet

    result = spend(api, acct["id"], 700, T0 + DAY - US, "ev-just-before")

    assert result["credit_used"] == 700
    assert result["lots"] == [{"lot_id": lot["id"], "amount": 700}]


def test_spend_at_expires_at_is_not_funded_by_the_lot(api, db, clock):
    acct = make_account(db, cash=10_000)
    grant(db, acct["id"], amount=5_000, expires_at=T0 + DAY)
    clock.advance(days=1)

    result = spend(api, acct["id"], 700, T0 + DAY, "ev-at-expiry")

    assert (result["credit_used"], result["cash_used"], result["lots"]) == (0, 700, [])


def test_expired_credit_cannot_fund_later_spend(api, db, clock):
    acct = make_account(db, cash=10_000)
    grant(db, acct["id"], amount=5_000, expires_at=T0 + DAY)
    clock.advance(days=1)
    run(api)

    # Even spend that occurred inside the lot's window but arrives after the run finds no credit.
    late = spend(api, acct["id"], 700, T0 + DAY - US, "ev-late")
    assert (late["credit_used"], late["cash_used"]) == (0, 700)
    assert balances(db, acct["id"])["cash"] == 9_300


# --- after expiry: balances, the report and the ledger ------------------------------------------


def test_after_expiry_the_report_moves_credit_from_outstanding_to_expired(api, db, clock):
    acct = make_account(db, cash=10_000)
    grant(db, acct["id"], amount=5_000, expires_at=T0 + DAY)
    grant(db, acct["id"], amount=1_000, expires_at=T0 + 10 * DAY)
    spend(api, acct["id"], 2_000, T0, "ev-1")
    before = api.finance.get("/v1/reports/liabilities?currency=USD").json()
    clock.advance(days=1)
    run(api)

    after = api.finance.get("/v1/reports/liabilities?currency=USD").json()
    assert (before["credit_outstanding"], before["credit_expired"]) == (4_000, 0)
    assert (after["credit_outstanding"], after["credit_expired"]) == (1_000, 3_000)
    assert after["credit_granted"] == 6_000
    assert after["credit_used"] == 2_000
    assert after["cash_available"] == before["cash_available"] == 10_000
    assert db.read(verify.verify_ledger) == []


# --- how it is run ------------------------------------------------------------------------------


def test_the_sweeper_can_run_expiry_with_no_arguments(db, clock):
    acct = make_account(db)
    grant(db, acct["id"], amount=5_000, expires_at=T0 + DAY)
    clock.advance(days=1)

    assert db.run(expiry.run_expiry) == {
        "expired_lots": 1,
        "expired_amounts": {"USD": 5_000},
        "lapsed_redemptions": 0,
    }
    assert db.run(expiry.run_expiry) == {
        "expired_lots": 0,
        "expired_amounts": {},
        "lapsed_redemptions": 0,
    }


def test_a_run_without_a_body_uses_now(api, db, clock):
    acct = make_account(db)
    grant(db, acct["id"], amount=5_000, expires_at=T0 + DAY)
    clock.advance(days=1)

    r = api.admin.post("/v1/expirations/run")

    assert r.status_code == 200
    assert r.json()["expired_lots"] == 1


def test_concurrent_runs_expire_each_lot_exactly_once(db, clock):
    accts = [make_account(db) for _ in range(10)]
    for acct in accts:
        grant(db, acct["id"], amount=100, expires_at=T0 + DAY)
    clock.advance(days=1)
    results: list[dict] = []

    def worker() -> None:
        results.append(db.run(expiry.run_expiry))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()

    assert sum(r["expired_lots"] for r in results) == 10
    assert sum(r["expired_amounts"].get("USD", 0) for r in results) == 1_000
    assert db.read(verify.verify_ledger) == []
    assert db.read(reports.liabilities, "USD")["credit_expired"] == 1_000


def test_expiry_and_spend_in_one_batch_never_both_take_the_same_credit(db, clock):
    acct = make_account(db, cash=10_000)
    grant(db, acct["id"], amount=5_000, expires_at=T0 + DAY)
    clock.advance(days=1)
    events = [SpendEvent(f"ev-{i}", acct["id"], 100, T0 + DAY - US) for i in range(20)]

    def spender() -> None:
        for ev in events:
            db.run(post_spend, [ev])

    th = threading.Thread(target=spender)
    th.start()
    expired = db.run(expiry.run_expiry)
    th.join()

    used = db.read(reports.liabilities, "USD")["credit_used"]
    assert used + expired["expired_amounts"]["USD"] == 5_000
    assert db.read(verify.verify_ledger) == []


def test_due_lots_are_found_through_the_partial_index(db, backend):
    query = expiry.due_lots_query(T0)
    with db.engine.connect() as conn:
        sql = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
        if backend == "sqlite":
            plan = " ".join(str(r) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
        else:
            conn.execute(text("SET LOCAL enable_seqscan = off"))
            plan = " ".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {sql}"))
        conn.rollback()
    assert "ix_lots_active_expiry" in plan


# --- refusals -----------------------------------------------------------------------------------


def test_as_of_in_the_future_is_refused_and_nothing_expires(api, db, clock):
    acct = make_account(db)
    lot = grant(db, acct["id"], amount=5_000, expires_at=T0 + DAY)

    r = run(api, as_of=T0 + 2 * DAY)

    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "as_of_in_future"
    assert balances(db, acct["id"])["lots"] == {lot["id"]: (5_000, "active")}


@pytest.mark.parametrize(
    "body",
    [
        {"as_of": "2026-11-30T12:00:00"},  # no offset
        {"as_of": "yesterday"},
        {"as_of": 1_700_000_000},
        {"as_off": "2026-11-30T12:00:00Z"},
    ],
)
def test_a_malformed_run_request_is_422(api, body):
    r = api.finance.post("/v1/expirations/run", json=body)
    assert r.status_code == 422
    assert r.json()["code"] == "validation_error"


def test_an_expiry_run_needs_a_key(api):
    assert api.client.post("/v1/expirations/run", json={}).status_code == 401


@pytest.mark.parametrize("role", ["ingest", "advertiser"])
def test_only_finance_and_admin_may_run_expiry(api, db, role):
    biz = make_account(db)["business_id"]
    caller = api.advertiser(biz) if role == "advertiser" else api.ingest
    r = run(api, caller=caller)
    assert r.status_code == 403
    assert r.json()["code"] == "forbidden"


def test_an_unknown_expiry_path_is_404(api):
    assert api.finance.post("/v1/expirations/run/now", json={}).status_code == 404


def test_a_repeated_run_with_the_same_idempotency_key_answers_the_first_result(api, db, clock):
    acct = make_account(db)
    grant(db, acct["id"], amount=5_000, expires_at=T0 + DAY)
    clock.advance(days=1)
    headers = {"Idempotency-Key": "sweep-1"}

    first = api.finance.post("/v1/expirations/run", json={}, headers=headers)
    again = api.finance.post("/v1/expirations/run", json={}, headers=headers)

    assert first.status_code == again.status_code == 200
    assert (
        again.json()
        == first.json()
        == {"expired_lots": 1, "expired_amounts": {"USD": 5_000}, "lapsed_redemptions": 0}
    )
