"""The balance (with its explanation) and withdrawal requests, through the HTTP API on both
backends."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select, update

from adledger.domain.ids import new_id
from adledger.domain.ledger import Book, Kind, Leg, Transaction
from adledger.http.encoding import dumps, rfc3339
from adledger.service import accounts
from adledger.service.balance import get_balance
from adledger.storage.postings import Posting, post
from adledger.storage.tables import accounts as accounts_table
from adledger.storage.tables import entries, transactions
from factories import grant, make_account, make_business

# --- helpers ----------------------------------------------------------------------------------


def funded(api, *, cash=10_000, **kw):  # type: ignore[no-untyped-def]
    acct = make_account(api.db, cash=cash, **kw)
    return acct, api.advertiser(acct["business_id"])


def balance(caller, account_id):  # type: ignore[no-untyped-def]
    r = caller.get(f"/v1/accounts/{account_id}/balance")
    assert r.status_code == 200, r.text
    return r.json()


def spend(api, account_id, amount, **kw):  # type: ignore[no-untyped-def]
    event_ = {
        "event_id": new_id("ev"),
        "account_id": account_id,
        "amount": amount,
        "occurred_at": rfc3339(api.db.clock.now()),
        **kw,
    }
    r = api.ingest.post("/v1/spend", json={"events": [event_]})
    assert r.status_code == 200, r.text
    return r.json()["results"][0]


def withdraw(caller, account_id, amount=5_000, **kw):  # type: ignore[no-untyped-def]
    return caller.post(f"/v1/accounts/{account_id}/withdrawals", json={"amount": amount}, **kw)


def assert_problem(r, status, code):  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == code


def owe(db, account_id, amount):  # type: ignore[no-untyped-def]
    def work(uow):  # type: ignore[no-untyped-def]
        acct = accounts.lock_account(uow, account_id)
        txn = Transaction(
            Kind.DEPOSIT_REVERSAL,
            (Leg(Book.DEBT, -amount), Leg(Book.PAYMENTS, amount)),
            "test: reversed payment",
        )
        post(uow.conn, [Posting(new_id("txn"), account_id, acct.currency, uow.now, txn)])

    db.run(work)


def set_status(db, account_id, status):  # type: ignore[no-untyped-def]
    db.run(
        lambda uow: uow.conn.execute(
            update(accounts_table).where(accounts_table.c.id == account_id).values(status=status)
        )
    )


def count_rows(db, table):  # type: ignore[no-untyped-def]
    return db.read(lambda uow: uow.conn.execute(select(func.count()).select_from(table)).scalar())


# --- the balance ------------------------------------------------------------------------------


def test_a_new_account_has_nothing_to_spend_and_is_depleted(api):
    acct, advertiser = funded(api, cash=0)
    assert balance(advertiser, acct["id"]) | {"explanation": None} == {
        "account_id": acct["id"],
        "currency": "USD",
        "as_of": "2026-12-01T12:00:00Z",
        "cash": {"available": 0, "held": 0, "debt": 0},
        "credit": {"available": 0, "lots": []},
        "spendable": 0,
        "refundable": 0,
        "withdrawable": 0,
        "depleted": True,
        "explanation": None,
    }


def test_the_balance_shows_cash_and_the_credit_usable_now(api, clock):
    acct, advertiser = funded(api, cash=12_000)
    later = grant(api.db, acct["id"], amount=3_000, days=60)
    soon = grant(api.db, acct["id"], amount=2_000, days=10)
    future = grant(
        api.db, acct["id"], amount=1_000, effective_at=clock.now() + timedelta(days=1), days=20
    )
    bal = balance(advertiser, acct["id"])
    assert bal["cash"] == {"available": 12_000, "held": 0, "debt": 0}
    assert bal["credit"]["available"] == 5_000  # the future lot is not usable yet
    assert [lot["id"] for lot in bal["credit"]["lots"]] == [soon["id"], future["id"], later["id"]]
    assert bal["credit"]["lots"][0] == json.loads(dumps(soon))
    assert (bal["spendable"], bal["refundable"], bal["withdrawable"]) == (17_000, 12_000, 0)
    assert bal["depleted"] is False


def test_credit_alone_keeps_an_account_from_being_depleted(api):
    acct, advertiser = funded(api, cash=0)
    grant(api.db, acct["id"], amount=700)
    bal = balance(advertiser, acct["id"])
    assert (bal["spendable"], bal["refundable"], bal["depleted"]) == (700, 0, False)


def test_spend_that_uses_everything_up_depletes_the_account(api):
    acct, advertiser = funded(api, cash=1_000)
    grant(api.db, acct["id"], amount=500)
    result = spend(api, acct["id"], 2_000)
    assert (result["credit_used"], result["cash_used"], result["unfunded"]) == (500, 1_000, 500)
    bal = balance(advertiser, acct["id"])
    assert (bal["spendable"], bal["depleted"]) == (0, True)
    assert bal["credit"]["lots"] == []  # a used-up lot is no longer active
    assert "depleted" in bal["explanation"]


def test_a_lot_past_its_expiry_is_listed_but_not_counted_until_the_expiry_run(api, clock):
    acct, advertiser = funded(api, cash=0)
    lot = grant(api.db, acct["id"], amount=900, days=1)
    clock.advance(days=1, hours=1)
    bal = balance(advertiser, acct["id"])
    assert bal["credit"]["available"] == 0
    assert [x["id"] for x in bal["credit"]["lots"]] == [lot["id"]]
    assert "$9.00 expired on 2 Dec 2026 at 12:00 UTC" in bal["explanation"]


def test_held_refunds_are_shown_and_not_refundable_again(api):
    acct, advertiser = funded(api, cash=10_000)
    for amount in (3_000, 1_000):
        r = advertiser.post(f"/v1/accounts/{acct['id']}/refunds", json={"amount": amount})
        assert r.status_code == 201
    bal = balance(advertiser, acct["id"])
    assert bal["cash"] == {"available": 6_000, "held": 4_000, "debt": 0}
    assert (bal["spendable"], bal["refundable"]) == (6_000, 6_000)
    assert "$40.00 is held for 2 refunds in progress" in bal["explanation"]


def test_the_explanation_uses_the_accounts_numbers_currency_and_time_zone(api):
    acct, advertiser = funded(api, cash=12_345, timezone="America/New_York")
    grant(api.db, acct["id"], amount=2_500, days=14)
    text = balance(advertiser, acct["id"])["explanation"]
    assert "Prepaid funds: $123.45 available." in text
    assert "You can ask for a refund of up to $123.45 now" in text
    assert "Promotional credit: $25.00 usable now" in text
    assert "$25.00 expires on 15 Dec 2026 at 07:00 EST" in text
    assert "can't be withdrawn, refunded or turned into cash" in text


def test_a_yen_account_is_explained_in_yen(api):
    acct, advertiser = funded(api, cash=50_000, currency="JPY", timezone="Asia/Tokyo")
    text = balance(advertiser, acct["id"])["explanation"]
    assert "¥50,000" in text


def test_nothing_is_refundable_within_the_quiet_period_after_spend(api, clock):
    acct, advertiser = funded(api, cash=10_000)
    spend(api, acct["id"], 1_000)
    bal = balance(advertiser, acct["id"])
    assert (bal["cash"]["available"], bal["refundable"]) == (9_000, 0)
    assert "Refunds open again at 1 Dec 2026 at 15:00 UTC" in bal["explanation"]
    clock.advance(hours=3)
    bal = balance(advertiser, acct["id"])
    assert bal["refundable"] == 9_000
    assert "refund of up to $90.00 now" in bal["explanation"]


@pytest.mark.parametrize(
    "arrange, says",
    [
        (lambda db, a: db.run(accounts.suspend_account, a), "while the account is suspended"),
        (lambda db, a: owe(db, a, 2_500), "owes $25.00 after a reversed payment"),
        (lambda db, a: set_status(db, a, "closed"), "This account is closed"),
    ],
    ids=["suspended", "in_debt", "closed"],
)
def test_nothing_is_refundable_from_an_account_not_in_good_standing(api, arrange, says):
    acct, advertiser = funded(api, cash=10_000)
    arrange(api.db, acct["id"])
    bal = balance(advertiser, acct["id"])
    assert (bal["cash"]["available"], bal["refundable"], bal["withdrawable"]) == (10_000, 0, 0)
    assert says in bal["explanation"]


def test_finance_and_admin_read_any_balance(api):
    acct, advertiser = funded(api, cash=10_000)
    mine = balance(advertiser, acct["id"])
    assert balance(api.finance, acct["id"]) == mine
    assert balance(api.admin, acct["id"]) == mine


def test_a_balance_is_hidden_from_other_businesses_and_ingest_keys(api):
    acct, _ = funded(api, cash=10_000)
    stranger = api.advertiser(make_business(api.db, name="Other")["id"])
    assert_problem(stranger.get(f"/v1/accounts/{acct['id']}/balance"), 404, "account_not_found")
    assert_problem(api.ingest.get(f"/v1/accounts/{acct['id']}/balance"), 403, "forbidden")
    assert_problem(api.client.get(f"/v1/accounts/{acct['id']}/balance"), 401, "unauthorized")
    assert_problem(api.finance.get("/v1/accounts/acct_nope/balance"), 404, "account_not_found")


def test_a_balance_read_is_one_statement_however_long_the_history(db):
    acct = make_account(db, cash=100_000)
    for _ in range(3):
        grant(db, acct["id"], amount=1_000)
    statements: list[str] = []

    def record(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        bal = db.read(get_balance, acct["id"])
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert len(statements) == 1, statements
    assert "entries" not in statements[0]
    assert bal["spendable"] == 103_000


def test_stored_balances_equal_the_sum_of_their_entries(api, clock):
    acct, advertiser = funded(api, cash=10_000)
    grant(api.db, acct["id"], amount=2_000)
    spend(api, acct["id"], 3_000)
    clock.advance(hours=3)
    r = advertiser.post(f"/v1/accounts/{acct['id']}/refunds", json={"amount": 4_000})
    assert r.status_code == 201
    bal = balance(advertiser, acct["id"])

    def sums(uow):  # type: ignore[no-untyped-def]
        rows = uow.conn.execute(
            select(entries.c.book, func.sum(entries.c.amount))
            .where(entries.c.account_id == acct["id"])
            .group_by(entries.c.book)
        )
        return {book: int(total) for book, total in rows}

    summed = api.db.read(sums)
    assert summed[Book.CASH] == bal["cash"]["available"] == 5_000
    assert summed[Book.HELD] == bal["cash"]["held"] == 4_000
    assert summed[Book.CREDIT] == bal["credit"]["available"] == 0


# --- withdrawals ------------------------------------------------------------------------------


def test_a_withdrawal_is_always_refused_with_the_accounts_numbers(api):
    acct, advertiser = funded(api, cash=12_000)
    grant(api.db, acct["id"], amount=4_000)
    before = (balance(advertiser, acct["id"]), count_rows(api.db, transactions))
    r = withdraw(advertiser, acct["id"], 16_000)
    assert_problem(r, 409, "withdrawal_not_supported")
    problem = r.json()
    assert (problem["refundable"], problem["credit_available"]) == (12_000, 4_000)
    assert problem["detail"].startswith("You asked to withdraw $160.00")
    assert "$120.00 of prepaid funds" in problem["detail"]
    assert "refund of up to $120.00" in problem["detail"]
    assert "Its $40.00 of promotional credit pays for ads only" in problem["detail"]
    assert (balance(advertiser, acct["id"]), count_rows(api.db, transactions)) == before


@pytest.mark.parametrize("who", ["advertiser", "finance", "admin"])
def test_every_reader_gets_the_same_refusal(api, who):
    acct, advertiser = funded(api, cash=12_000)
    caller = advertiser if who == "advertiser" else getattr(api, who)
    assert_problem(withdraw(caller, acct["id"]), 409, "withdrawal_not_supported")


def test_a_withdrawal_refusal_says_why_nothing_is_refundable_during_the_quiet_period(api):
    acct, advertiser = funded(api, cash=10_000)
    spend(api, acct["id"], 1_000)
    r = withdraw(advertiser, acct["id"])
    assert_problem(r, 409, "withdrawal_not_supported")
    assert r.json()["refundable"] == 0
    assert "Refunds open again at 1 Dec 2026 at 15:00 UTC" in r.json()["detail"]


def test_a_withdrawal_for_another_business_or_an_unknown_account_is_404(api):
    acct, _ = funded(api, cash=10_000)
    stranger = api.advertiser(make_business(api.db, name="Other")["id"])
    assert_problem(withdraw(stranger, acct["id"]), 404, "account_not_found")
    assert_problem(withdraw(api.finance, "acct_nope"), 404, "account_not_found")


def test_a_withdrawal_needs_a_reader_key(api):
    acct, _ = funded(api, cash=10_000)
    assert_problem(withdraw(api.ingest, acct["id"]), 403, "forbidden")
    r = api.client.post(f"/v1/accounts/{acct['id']}/withdrawals", json={"amount": 1})
    assert_problem(r, 401, "unauthorized")


@pytest.mark.parametrize(
    "body", [{"amount": 1.5}, {"amount": "5"}, {"amount": 0}, {}, {"amount": 5, "to": "bank"}]
)
def test_a_malformed_withdrawal_is_422(api, body):
    acct, advertiser = funded(api, cash=10_000)
    r = advertiser.post(f"/v1/accounts/{acct['id']}/withdrawals", json=body)
    assert_problem(r, 422, "validation_error")


def test_a_repeated_withdrawal_with_an_idempotency_key_gets_the_first_refusal_again(api):
    acct, advertiser = funded(api, cash=10_000)
    headers = {"Idempotency-Key": "w-1"}
    first = withdraw(advertiser, acct["id"], headers=headers)
    again = withdraw(advertiser, acct["id"], headers=headers)
    assert first.status_code == again.status_code == 409
    assert first.json() == again.json()
