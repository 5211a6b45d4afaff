"""Promotions under concurrency, on SQLite and PostgreSQL.

Many requests start together (a `threading.Barrier`) against the real app; afterwards the test
checks every answer *and* the stored state: the promotion's `redemptions_count` and
`budget_committed`, the lots it granted, the codes used, the failed attempts recorded. The
`db` fixture then runs `adledger verify`, which must be clean.

Redemptions go through HTTP, so the failed-attempt recording of the route (`on_refusal`) is
part of what runs concurrently.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from adledger.domain.ids import new_id
from adledger.domain.ledger import Book
from adledger.http.app import create_app
from adledger.http.encoding import rfc3339
from adledger.service import accounts as account_service
from adledger.service import keys as key_service
from adledger.service.uow import Database
from adledger.storage.engine import make_engine
from adledger.storage.tables import (
    accounts,
    deposits,
    entries,
    lots,
    promotion_codes,
    promotions,
    redemption_attempts,
    redemptions,
    transactions,
)
from conftest import Api, Caller
from factories import deposit, make_account

# --- the app, with a bounded connection pool -----------------------------------------------------


@pytest.fixture
def api(db: Database, clock: Any) -> Iterator[Api]:
    """The real app over the test's database, through its own `Database` whose pool holds at
    most 12 connections. Hundreds of requests still arrive at once; those beyond the pool wait
    for a connection, as on a real server, and tests run side by side (`pytest -n`) stay within
    PostgreSQL's `max_connections` instead of failing to connect."""
    engine = make_engine(db.settings.database_url, pool_size=8, max_overflow=4)
    bounded = Database(db.settings, clock, engine=engine)
    try:
        app = create_app(db=bounded, migrate=False)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Api(client, bounded)
    finally:
        bounded.dispose()


# --- helpers ----------------------------------------------------------------------------------


def in_threads(n: int, fn: Callable[[int], Any], *, timeout: float = 120) -> list[Any]:
    """Run `fn(0)`, …, `fn(n - 1)` in `n` threads that start together; their results in order
    (an exception a thread raised is its result)."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fn(i)
        except Exception as exc:  # collected and checked by the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    assert not any(t.is_alive() for t in threads), "a thread is still running: a deadlock?"
    for r in results:
        if isinstance(r, BaseException):
            raise AssertionError(f"a thread raised {r!r}") from r
    return results


def answer(r: Any) -> tuple[int, Any]:
    """(status, body) of an HTTP response, with the problem's `code` for a refusal."""
    body = r.json()
    return r.status_code, body.get("code") if r.status_code >= 400 else body


def create_promotion(api: Api, kind: str = "coupon", **terms: Any) -> dict[str, Any]:
    now = api.db.clock.now()
    body = {
        "name": f"{kind} offer",
        "kind": kind,
        "currency": "USD",
        "reward": {"amount": 1_000},
        "credit_valid_days": 30,
        "starts_at": rfc3339(now - timedelta(days=1)),
        "ends_at": rfc3339(now + timedelta(days=30)),
        **terms,
    }
    r = api.finance.post("/v1/promotions", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def make_codes(api: Api, promotion_id: str, count: int) -> list[str]:
    r = api.finance.post(f"/v1/promotions/{promotion_id}/codes", json={"count": count})
    assert r.status_code == 201, r.text
    codes = r.json()["codes"]
    assert len(set(codes)) == count
    return codes


def redeem(caller: Caller, account_id: str, code: str) -> Any:
    return caller.post(f"/v1/accounts/{account_id}/redemptions", json={"code": code})


def advertisers(api: Api, n: int) -> list[tuple[str, Caller]]:
    """`n` businesses, each with one USD account and an advertiser key: (account id, caller)."""

    def work(uow: Any) -> list[tuple[str, dict[str, Any]]]:
        made = []
        for i in range(n):
            biz = account_service.create_business(uow, name=f"Business {i}")
            acct = account_service.create_account(
                uow, name=f"Account {i}", currency="USD", business_id=biz["id"], timezone="UTC"
            )
            key = key_service.create_key(
                uow, role="advertiser", name=f"adv {i}", business_id=biz["id"]
            )
            made.append((acct["id"], key | {"business_id": biz["id"]}))
        return made

    return [
        (acct_id, Caller(api.client, k["key"], k["id"], "advertiser", k["business_id"]))
        for acct_id, k in api.db.run(work)
    ]


def promotion_state(db: Database, promotion_id: str) -> dict[str, Any]:
    """What the database holds for a promotion: its counters, its lots, its codes."""

    def work(uow: Any) -> dict[str, Any]:
        conn = uow.conn
        promo = conn.execute(select(promotions).where(promotions.c.id == promotion_id)).one()
        granted = conn.execute(
            select(lots.c.account_id, lots.c.original, lots.c.source, lots.c.deposit_id).where(
                lots.c.promotion_id == promotion_id
            )
        ).all()
        used = conn.execute(
            select(func.count())
            .select_from(promotion_codes)
            .where(
                promotion_codes.c.promotion_id == promotion_id,
                promotion_codes.c.redeemed_at.is_not(None),
            )
        ).scalar_one()
        rows = conn.execute(
            select(redemptions).where(redemptions.c.promotion_id == promotion_id)
        ).all()
        return {
            "redemptions_count": promo.redemptions_count,
            "budget_committed": promo.budget_committed,
            "lots": granted,
            "codes_used": used,
            "redemptions": rows,
        }

    return db.read(work)


def failed_attempts(db: Database, who: str) -> Counter[str]:
    def work(uow: Any) -> Counter[str]:
        rows = uow.conn.execute(
            select(redemption_attempts.c.outcome).where(redemption_attempts.c.who == who)
        ).scalars()
        return Counter(rows)

    return db.read(work)


def all_failed_attempts(db: Database) -> Counter[tuple[str, str]]:
    def work(uow: Any) -> Counter[tuple[str, str]]:
        rows = uow.conn.execute(select(redemption_attempts.c.who, redemption_attempts.c.outcome))
        return Counter((who, outcome) for who, outcome in rows)

    return db.read(work)


def account_row(db: Database, account_id: str) -> Any:
    return db.read(
        lambda uow: uow.conn.execute(select(accounts).where(accounts.c.id == account_id)).one()
    )


def spend_event(account_id: str, amount: int, occurred_at: Any) -> dict[str, Any]:
    return {
        "event_id": new_id("ev"),
        "account_id": account_id,
        "amount": amount,
        "occurred_at": rfc3339(occurred_at),
    }


# --- max_redemptions and budget under 200 simultaneous redemptions ----------------------------


def _two_hundred_businesses_redeem_at_once(api: Api, promo: dict[str, Any]) -> list[Any]:
    callers = advertisers(api, 200)
    codes = make_codes(api, promo["id"], 200)
    results = in_threads(
        200, lambda i: answer(redeem(callers[i][1], callers[i][0], codes[i])), timeout=180
    )
    return [(callers[i], results[i]) for i in range(200)]


def _assert_exactly_granted(api: Api, promo: dict[str, Any], outcomes: list[Any], n: int) -> None:
    granted = [(who, (status, body)) for who, (status, body) in outcomes if status == 201]
    refused = Counter(body for _, (status, body) in outcomes if status != 201)
    assert len(granted) == n, refused
    assert all(body["status"] == "granted" and body["lot_id"] for _, (_, body) in granted)
    assert refused == {"promotion_exhausted": 200 - n}
    assert all(status == 409 for _, (status, _) in outcomes if status != 201)

    state = promotion_state(api.db, promo["id"])
    assert state["redemptions_count"] == n
    assert state["budget_committed"] == n * 1_000
    assert len(state["lots"]) == n
    assert {lot.account_id for lot in state["lots"]} == {acct for (acct, _), _ in granted}
    assert all(lot.original == 1_000 and lot.source == "coupon" for lot in state["lots"])
    assert state["codes_used"] == n
    assert len(state["redemptions"]) == n
    assert all(r.status == "granted" and r.reserved == 0 for r in state["redemptions"])
    # The finance view agrees with the table.
    view = api.finance.get(f"/v1/promotions/{promo['id']}").json()
    assert (view["redemptions"], view["budget_committed"]) == (n, n * 1_000)
    # Each refused business has its one failed attempt, and no more.
    recorded = all_failed_attempts(api.db)
    assert recorded == {
        (caller.business_id, "promotion_exhausted"): 1
        for (_, caller), (status, _) in outcomes
        if status != 201
    }
    # And the balances say the same, for a few winners and a few of the refused.
    for (acct, _), (status, _) in granted[:3] + [x for x in outcomes if x[1][0] != 201][:3]:
        credit = api.finance.get(f"/v1/accounts/{acct}/balance").json()["credit"]["available"]
        assert credit == (1_000 if status == 201 else 0)


def test_200_simultaneous_redemptions_never_exceed_max_redemptions(api):
    promo = create_promotion(api, max_redemptions=10)
    outcomes = _two_hundred_businesses_redeem_at_once(api, promo)
    _assert_exactly_granted(api, promo, outcomes, 10)


def test_200_simultaneous_redemptions_never_exceed_the_budget(api):
    # 7,500 allows seven rewards of 1,000: an eighth would commit 8,000.
    promo = create_promotion(api, budget=7_500)
    outcomes = _two_hundred_businesses_redeem_at_once(api, promo)
    _assert_exactly_granted(api, promo, outcomes, 7)


# --- one business, many accounts, many codes at once -------------------------------------------


def test_fifty_simultaneous_redemptions_by_one_business_grant_exactly_once(api):
    """50 requests of one business, from 5 of its accounts, each with its own code of one
    once-per-business promotion. One wins. Every other one is refused, either by the promotion
    (`already_redeemed`, a failed attempt on record) or by the limiter (`too_many_attempts`,
    which a business only gets once it has 10 failed attempts on record).

    No refusal can come before the grant (every code is valid and unused until one account has
    redeemed), so the first 10 of the 49 refusals are `already_redeemed` and the limiter, which
    checks and records each attempt under the business's lock, turns the other 39 away."""
    biz = api.db.run(account_service.create_business, name="One business")["id"]
    accts = [make_account(api.db, business_id=biz, name=f"Account {i}")["id"] for i in range(5)]
    advertiser = api.advertiser(biz)
    promo = create_promotion(api)
    codes = make_codes(api, promo["id"], 50)

    def attempt(i: int) -> tuple[int, Any, str | None]:
        r = redeem(advertiser, accts[i % 5], codes[i])
        status, body = answer(r)
        return status, body, r.headers.get("retry-after")

    results = in_threads(50, attempt)

    granted = [body for status, body, _ in results if status == 201]
    assert len(granted) == 1 and granted[0]["status"] == "granted"
    refused = Counter((status, body) for status, body, _ in results if status != 201)
    assert set(refused) <= {(409, "already_redeemed"), (429, "too_many_attempts")}, refused
    assert sum(refused.values()) == 49
    # The limiter is exact: 10 failures, then every attempt is turned away.
    assert refused == Counter({(409, "already_redeemed"): 10, (429, "too_many_attempts"): 39})
    assert all(retry and int(retry) > 0 for status, _, retry in results if status == 429)
    # Every `already_redeemed` answer is a failed attempt on record; a 429 is not one.
    recorded = failed_attempts(api.db, biz)
    assert recorded == Counter({"already_redeemed": refused[(409, "already_redeemed")]})

    state = promotion_state(api.db, promo["id"])
    assert (state["redemptions_count"], state["budget_committed"]) == (1, 1_000)
    assert len(state["lots"]) == 1 and state["codes_used"] == 1
    assert len(state["redemptions"]) == 1
    winner = state["lots"][0].account_id
    assert winner == granted[0]["account_id"]
    for acct in accts:
        credit = api.finance.get(f"/v1/accounts/{acct}/balance").json()["credit"]["available"]
        assert credit == (1_000 if acct == winner else 0)


def test_guesses_sent_at_once_get_exactly_10_answers_an_hour(api):
    """The limiter exists to stop guessing: 10 failed attempts an hour, then 429. Guesses sent
    at once, from four accounts of the business, get exactly 10 answers about their codes: each
    attempt checks the count and records its failure in one transaction, under the business's
    lock, so no two attempts can read the same count."""
    biz = api.db.run(account_service.create_business, name="Guessers")["id"]
    accts = [make_account(api.db, business_id=biz, name=f"Account {i}")["id"] for i in range(4)]
    advertiser = api.advertiser(biz)
    create_promotion(api)
    guesses = [f"GUESS{i:03d}XXXXXXXX" for i in range(40)]
    results = in_threads(40, lambda i: answer(redeem(advertiser, accts[i % 4], guesses[i])))
    told = Counter(code for _, code in results)
    assert told == Counter({"code_invalid": 10, "too_many_attempts": 30}), told
    assert failed_attempts(api.db, biz) == Counter({"code_invalid": 10})


# --- one code, many businesses -----------------------------------------------------------------


def test_one_code_redeemed_by_20_businesses_at_once_is_granted_once(api):
    callers = advertisers(api, 20)
    promo = create_promotion(api)
    (code,) = make_codes(api, promo["id"], 1)
    # The code as different people might type it: case, spaces and dashes are ignored.
    typed = [code, code.lower(), code.replace("-", ""), code.replace("-", " ")]
    results = in_threads(
        20, lambda i: answer(redeem(callers[i][1], callers[i][0], typed[i % len(typed)]))
    )
    granted = [body for status, body in results if status == 201]
    assert len(granted) == 1 and granted[0]["status"] == "granted"
    assert Counter(results[i] for i in range(20) if results[i][0] != 201) == {
        (409, "code_used"): 19
    }

    state = promotion_state(api.db, promo["id"])
    assert (state["redemptions_count"], state["budget_committed"]) == (1, 1_000)
    assert [lot.account_id for lot in state["lots"]] == [granted[0]["account_id"]]
    assert state["codes_used"] == 1
    for (_, caller), (status, _) in zip(callers, results, strict=True):
        assert failed_attempts(api.db, caller.business_id) == (
            {} if status == 201 else {"code_used": 1}
        )


# --- earning under concurrent spend and deposits ------------------------------------------------


def test_concurrent_spend_counts_toward_spend_x_get_y_once_and_grants_once(api, clock):
    acct = make_account(api.db, cash=100_000)
    advertiser = api.advertiser(acct["business_id"])
    promo = create_promotion(api, "spend_threshold", threshold=5_000)
    (code,) = make_codes(api, promo["id"], 1)
    r = redeem(advertiser, acct["id"], code)
    assert r.status_code == 201 and r.json()["status"] == "earning", r.text
    redemption_id = r.json()["id"]
    clock.advance(minutes=1)  # spend counts when it occurred after the redemption

    def spend_round() -> list[dict[str, Any]]:
        def batch(i: int) -> list[dict[str, Any]]:
            events = [spend_event(acct["id"], 100, clock.now()) for _ in range(3)]
            r = api.ingest.post("/v1/spend", json={"events": events})
            assert r.status_code == 200, r.text
            # The ad server resends the batch: duplicates, which must not count again.
            again = api.ingest.post("/v1/spend", json={"events": events})
            assert [x["status"] for x in again.json()["results"]] == ["duplicate"] * 3
            return r.json()["results"]

        return [result for rs in in_threads(16, batch) for result in rs]

    def redemption() -> Any:
        return api.db.read(
            lambda uow: uow.conn.execute(
                select(redemptions).where(redemptions.c.id == redemption_id)
            ).one()
        )

    # Round 1: 16 × 3 × 100 = 4,800 of cash, short of the threshold: each event counted once.
    first = spend_round()
    assert all(r["status"] == "applied" and r["cash_used"] == 100 for r in first)
    row = redemption()
    assert (row.status, row.progress, row.lot_id) == ("earning", 4_800, None)
    listed = advertiser.get(f"/v1/accounts/{acct['id']}/redemptions").json()["data"]
    assert [(x["status"], x["progress"], x["threshold"]) for x in listed] == [
        ("earning", 4_800, 5_000)
    ]
    assert promotion_state(api.db, promo["id"])["lots"] == []

    # Round 2: another 4,800. Two events reach 5,000 and grant 1,000 of credit, which the
    # following events use before cash; the rest is cash again. One grant, whoever crossed.
    second = spend_round()
    assert all(r["status"] == "applied" for r in second)
    assert sum(r["credit_used"] for r in second) == 1_000
    assert sum(r["cash_used"] for r in second) == 4_800 - 1_000
    assert all(r["unfunded"] == 0 for r in second)
    row = redemption()
    assert (row.status, row.progress, row.reserved) == ("granted", 5_000, 0)
    state = promotion_state(api.db, promo["id"])
    assert (state["redemptions_count"], state["budget_committed"]) == (1, 1_000)
    assert [(lot.account_id, lot.original, lot.source) for lot in state["lots"]] == [
        (acct["id"], 1_000, "spend_threshold")
    ]
    after = account_row(api.db, acct["id"])
    assert after.cash_available == 100_000 - 4_800 - 3_800
    balance = api.finance.get(f"/v1/accounts/{acct['id']}/balance").json()
    assert balance["credit"]["available"] == 0  # the reward was spent by the same rounds
    grants = api.finance.get(
        f"/v1/accounts/{acct['id']}/transactions", params={"kind": "credit_grant"}
    ).json()["data"]
    assert len(grants) == 1 and grants[0]["credit_delta"] == 1_000

    # Round 3: spend after the grant earns nothing more.
    spend_round()
    assert redemption().progress == 5_000
    assert len(promotion_state(api.db, promo["id"])["lots"]) == 1


def test_16_concurrent_deposits_earn_one_deposit_bonus(api):
    acct = make_account(api.db)
    advertiser = api.advertiser(acct["business_id"])
    promo = create_promotion(
        api,
        "deposit_bonus",
        reward={"percent": 10, "max_amount": 500},
        min_deposit=1_000,
        budget=5_000,
    )
    (code,) = make_codes(api, promo["id"], 1)
    r = redeem(advertiser, acct["id"], code)
    assert r.status_code == 201 and r.json()["status"] == "earning", r.text
    assert promotion_state(api.db, promo["id"])["budget_committed"] == 500  # reserved: the most

    amounts = [500 + 700 * i for i in range(16)]  # 500 (too small), 1,200, 1,900, … 11,000

    def pay(i: int) -> dict[str, Any]:
        r = api.finance.post(
            f"/v1/accounts/{acct['id']}/deposits",
            json={"amount": amounts[i], "payment_reference": f"pay_{i}"},
        )
        assert r.status_code == 201, r.text
        return r.json()

    made = {d["id"]: d for d in in_threads(16, pay)}

    state = promotion_state(api.db, promo["id"])
    assert len(state["lots"]) == 1
    lot = state["lots"][0]
    assert lot.source == "deposit_bonus" and lot.account_id == acct["id"]
    earning_deposit = made[lot.deposit_id]
    assert earning_deposit["amount"] >= 1_000
    assert lot.original == min(earning_deposit["amount"] * 10 // 100, 500)
    # A grant settles the reservation: what the percent didn't need is released.
    assert (state["redemptions_count"], state["budget_committed"]) == (1, lot.original)
    (row,) = state["redemptions"]
    assert (row.status, row.deposit_id, row.reserved) == ("granted", lot.deposit_id, 0)
    balance = api.finance.get(f"/v1/accounts/{acct['id']}/balance").json()
    assert balance["cash"]["available"] == sum(amounts)
    assert balance["credit"]["available"] == lot.original


# --- a deposit reversal racing spend and a refund request ---------------------------------------


def _race_a_reversal(api: Api) -> dict[str, Any]:
    """One account: a pending refund already holds 3,000; 12,000 is available, 10,000 of it from
    the deposit about to be charged back. At once: the chargeback, eight spend events of 1,000
    and a new refund request of 2,000. Checks what must hold whatever the order; returns what
    happened."""
    acct = make_account(api.db)
    advertiser = api.advertiser(acct["business_id"])
    deposit(api.db, acct["id"], amount=5_000, reference="pay_b")
    r = advertiser.post(f"/v1/accounts/{acct['id']}/refunds", json={"amount": 3_000})
    assert r.status_code == 201, r.text
    earlier_refund = r.json()["id"]
    charged_back = deposit(api.db, acct["id"], amount=10_000, reference="pay_a")
    before = account_row(api.db, acct["id"])
    assert (before.cash_available, before.cash_held, before.debt) == (12_000, 3_000, 0)

    def act(i: int) -> tuple[str, int, Any]:
        if i == 0:
            r = api.finance.post(
                f"/v1/deposits/{charged_back['id']}/reverse", json={"reason": "chargeback"}
            )
            return "reverse", r.status_code, r.json()
        if i == 9:
            r = advertiser.post(f"/v1/accounts/{acct['id']}/refunds", json={"amount": 2_000})
            return "refund", r.status_code, r.json()
        event = spend_event(acct["id"], 1_000, api.db.clock.now())
        r = api.ingest.post("/v1/spend", json={"events": [event]})
        return "spend", r.status_code, r.json()

    results = in_threads(10, act)
    assert all(status < 500 for _, status, _ in results), results
    ((_, reverse_status, reversal),) = [x for x in results if x[0] == "reverse"]
    assert reverse_status == 200 and reversal["reversed_at"] is not None, reversal
    spent = [body["results"][0] for what, _, body in results if what == "spend"]
    assert all(s["status"] == "applied" and s["credit_used"] == 0 for s in spent), spent
    cash_spent = sum(s["cash_used"] for s in spent)
    assert cash_spent + sum(s["unfunded"] for s in spent) == 8_000
    ((_, refund_status, refund_body),) = [x for x in results if x[0] == "refund"]
    refund_made = refund_status == 201
    if not refund_made:
        assert refund_status == 409, refund_body
        assert refund_body["code"] in {
            "recent_spend",
            "account_not_in_good_standing",
            "insufficient_refundable_funds",
        }

    txns = api.finance.get(
        f"/v1/accounts/{acct['id']}/transactions", params={"kind": "deposit_reversal"}
    ).json()["data"]
    assert len(txns) == 1
    taken_from_cash = -txns[0]["cash_delta"]
    after = account_row(api.db, acct["id"])
    assert after.cash_available >= 0
    # The debt is exactly what cash could not cover when the reversal ran.
    assert after.debt == 10_000 - taken_from_cash
    assert after.cash_available == (
        12_000 - cash_spent - taken_from_cash - (2_000 if refund_made else 0)
    )
    # Held cash is the pending refunds' and nothing else: the reversal never touched it.
    assert after.cash_held == 3_000 + (2_000 if refund_made else 0)

    def reversal_books(uow: Any) -> set[str]:
        query = (
            select(entries.c.book)
            .join(transactions, transactions.c.id == entries.c.txn_id)
            .where(
                transactions.c.kind == "deposit_reversal",
                transactions.c.account_id == acct["id"],
            )
        )
        return set(uow.conn.execute(query).scalars())

    assert Book.HELD not in api.db.read(reversal_books)
    if after.debt:
        # Cash could not cover the reversal: it took all of it, and the account is suspended;
        # no refund may be approved while it owes money.
        assert after.cash_available == 0
        assert (after.status, after.suspended_reason) == ("suspended", "debt")
        r = api.finance.post(f"/v1/refunds/{earlier_refund}/approve")
        assert (r.status_code, r.json()["code"]) == (409, "account_not_in_good_standing")
    else:
        assert after.status == "active"
    balance = api.finance.get(f"/v1/accounts/{acct['id']}/balance").json()
    assert balance["cash"] == {
        "available": after.cash_available,
        "held": after.cash_held,
        "debt": after.debt,
    }

    def reversed_deposits(uow: Any) -> set[str]:
        query = select(deposits.c.id).where(
            deposits.c.account_id == acct["id"], deposits.c.reversed_at.is_not(None)
        )
        return set(uow.conn.execute(query).scalars())

    assert api.db.read(reversed_deposits) == {charged_back["id"]}
    return {"debt": after.debt, "refund_made": refund_made}


def test_a_deposit_reversal_racing_spend_and_a_refund_request_never_makes_cash_negative(api):
    # Four races on four accounts, so that more than one order is likely to be seen.
    outcomes = [_race_a_reversal(api) for _ in range(4)]
    assert len(outcomes) == 4
