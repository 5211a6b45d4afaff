"""Idempotency-Key under concurrency, and how long a key is kept (CONTRACT.md §2).

Fifty requests with one `Idempotency-Key` are released at once by a barrier, each through its own
HTTP client (its own event loop) over the one app and database. Whatever the interleaving, for a
deposit, a refund request, a spend batch and a redemption:

* the work is done exactly once (counted in the database, not in the answers);
* every 2xx answer is, byte for byte, the response stored for the key;
* every other answer is 409 `idempotency_key_in_use` (the first one was still running);
* the same key with another body is 422 `idempotency_key_reused` and does nothing;
* the same key sent with another API key is another key: the work is done once per API key.

Keys are kept at least 24 hours: a repeat a day, or a week, later still gets the first response.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from adledger.service import promotions
from adledger.storage.tables import (
    deposits,
    idempotency_keys,
    lots,
    redemptions,
    refunds,
    transactions,
)
from api_support import assert_problem, snapshot
from factories import make_account
from tests_support import balances, event

THREADS = 50


# --- the four operations ------------------------------------------------------------------------


@dataclass
class Scenario:
    """One operation, arranged: who calls it, where, with which body, and how to count its work."""

    caller: Any
    url: str
    body: dict[str, Any]
    other_body: dict[str, Any]  # a different request: the same key must refuse it
    status: int  # the first response's status
    effects: Callable[[], int]  # the rows the work has made so far (0 before it)
    once: int  # the rows one run of the work makes
    more_callers: Callable[[], Any]  # another API key of the same role, for the scope test
    effects_with_two_keys: int  # the rows after the request ran once per API key


def _count(db: Any, table: Any, *where: Any) -> int:
    with db.engine.connect() as conn:
        value = conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()
        conn.rollback()
    return int(value)


def _deposit(api: Any) -> Scenario:
    acct = make_account(api.db)["id"]
    return Scenario(
        caller=api.finance,
        url=f"/v1/accounts/{acct}/deposits",
        body={"amount": 700, "payment_reference": "pay_storm"},
        other_body={"amount": 800, "payment_reference": "pay_storm"},
        status=201,
        effects=lambda: _count(api.db, deposits, deposits.c.account_id == acct),
        once=1,
        more_callers=lambda: api.caller("finance", name="second"),
        effects_with_two_keys=2,  # two API keys, two deposits: that is what scoping means
    )


def _refund(api: Any) -> Scenario:
    acct = make_account(api.db, cash=10_000)
    return Scenario(
        caller=api.advertiser(acct["business_id"]),
        url=f"/v1/accounts/{acct['id']}/refunds",
        body={"amount": 1_000},
        other_body={"amount": 2_000},
        status=201,
        effects=lambda: _count(api.db, refunds, refunds.c.account_id == acct["id"]),
        once=1,
        more_callers=lambda: api.advertiser(acct["business_id"]),
        effects_with_two_keys=2,
    )


def _spend(api: Any) -> Scenario:
    acct = make_account(api.db, cash=10_000)["id"]
    batch = [event(f"storm-{i}", acct, 100 + i) for i in range(3)]
    other = [event(f"other-{i}", acct, 100 + i) for i in range(3)]
    return Scenario(
        caller=api.ingest,
        url="/v1/spend",
        body={"events": batch},
        other_body={"events": other},
        status=200,
        effects=lambda: _count(
            api.db, transactions, transactions.c.account_id == acct, transactions.c.kind == "spend"
        ),
        once=3,  # one spend transaction per event of the batch
        more_callers=lambda: api.caller("ingest", name="second"),
        # The second API key's batch runs, but its events are duplicates by event_id (§4).
        effects_with_two_keys=3,
    )


def _redemption(api: Any) -> Scenario:
    acct = make_account(api.db)
    now = api.db.clock.now()
    promo = api.db.run(
        promotions.create_promotion,
        name="Storm",
        kind="coupon",
        currency="USD",
        reward={"amount": 500},
        credit_valid_days=30,
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=30),
        eligibility={"once_per_business": False},
    )
    first, second = api.db.run(promotions.create_codes, promo["id"], count=2)["codes"]

    def effects() -> int:
        made = _count(api.db, redemptions, redemptions.c.account_id == acct["id"])
        granted = _count(api.db, lots, lots.c.account_id == acct["id"])
        assert made == granted, f"{made} redemptions but {granted} lots"
        return made

    return Scenario(
        caller=api.advertiser(acct["business_id"]),
        url=f"/v1/accounts/{acct['id']}/redemptions",
        body={"code": first},
        other_body={"code": second},
        status=201,
        effects=effects,
        once=1,
        more_callers=lambda: api.advertiser(acct["business_id"]),
        # A code is single-use: the second API key's redemption is refused (`code_used`).
        effects_with_two_keys=1,
    )


SCENARIOS: dict[str, Callable[[Any], Scenario]] = {
    "deposit": _deposit,
    "refund request": _refund,
    "spend batch": _spend,
    "redemption": _redemption,
}


@pytest.fixture(params=list(SCENARIOS))
def scenario(request: pytest.FixtureRequest, api: Any) -> Scenario:
    return SCENARIOS[request.param](api)


# --- sending at once ----------------------------------------------------------------------------


def storm(api: Any, sends: list[tuple[Any, str, dict[str, Any]]], key: str) -> list[Any]:
    """Send each `(caller, url, body)` with Idempotency-Key `key`, all released at once.

    Each thread has a TestClient of its own over the one app (not entered, so each request runs
    on an event loop of its own): the requests really overlap, as from separate processes.
    """
    app = api.client.app
    clients = [TestClient(app, raise_server_exceptions=False) for _ in sends]
    barrier = threading.Barrier(len(sends))

    def send(i: int) -> Any:
        caller, url, body = sends[i]
        headers = {"Authorization": f"Bearer {caller.key}", "Idempotency-Key": key}
        barrier.wait()
        return clients[i].post(url, json=body, headers=headers)

    with ThreadPoolExecutor(len(sends)) as pool:
        return list(pool.map(send, range(len(sends))))


def stored(api: Any, caller: Any, key: str) -> Any:
    """The response stored for `key` of `caller`'s API key."""
    t = idempotency_keys.c
    with api.db.engine.connect() as conn:
        row = conn.execute(
            select(idempotency_keys).where(t.api_key_id == caller.key_id, t.key == key)
        ).one()
        conn.rollback()
    assert row.status == "done", row
    return row


def is_stored(r: Any, row: Any) -> bool:
    return r.status_code == row.response_status and r.content == row.response_body.encode()


def assert_in_use(r: Any) -> None:
    assert_problem(r, 409, "idempotency_key_in_use")


# --- the storm ----------------------------------------------------------------------------------


def test_fifty_requests_at_once_with_one_key_do_the_work_once_and_agree(api, scenario):
    assert scenario.effects() == 0
    answers = storm(api, [(scenario.caller, scenario.url, scenario.body)] * THREADS, "storm")

    assert scenario.effects() == scenario.once
    first = stored(api, scenario.caller, "storm")
    assert first.response_status == scenario.status, first.response_body
    if scenario.url == "/v1/spend":
        assert '"duplicate"' not in first.response_body  # the one run applied every event
    successes = [r for r in answers if 200 <= r.status_code < 300]
    assert successes, [r.text for r in answers[:3]]
    for r in answers:
        if not is_stored(r, first):
            assert_in_use(r)

    # A later repeat is the stored answer again, and does nothing.
    again = scenario.caller.post(
        scenario.url, json=scenario.body, headers={"Idempotency-Key": "storm"}
    )
    assert is_stored(again, first)
    assert scenario.effects() == scenario.once


def test_the_same_key_with_another_body_at_once_is_refused_and_does_nothing(api, scenario):
    """Half the threads send one body, half another, with one key: the first claim wins; every
    request with the other body is 422 `idempotency_key_reused` (and does nothing)."""
    sends = [
        (scenario.caller, scenario.url, scenario.body if i % 2 else scenario.other_body)
        for i in range(THREADS)
    ]
    answers = storm(api, sends, "mixed")

    first = stored(api, scenario.caller, "mixed")
    won = [s for s, r in zip(sends, answers, strict=True) if is_stored(r, first)]
    assert won, "no answer is the stored response"
    winner = won[0][2]
    assert all(body == winner for _, _, body in won), "both bodies got the stored response"
    for (_, _, body), r in zip(sends, answers, strict=True):
        if body != winner:
            assert_problem(r, 422, "idempotency_key_reused")
        elif not is_stored(r, first):
            assert_in_use(r)
    assert scenario.effects() == scenario.once


def test_the_same_key_on_another_path_is_refused(api):
    one, two = make_account(api.db)["id"], make_account(api.db)["id"]
    body = {"amount": 700, "payment_reference": "pay_path"}
    key = {"Idempotency-Key": "one-path"}
    assert (
        api.finance.post(f"/v1/accounts/{one}/deposits", json=body, headers=key).status_code == 201
    )
    before = snapshot(api.db)
    r = api.finance.post(f"/v1/accounts/{two}/deposits", json=body, headers=key)
    assert_problem(r, 422, "idempotency_key_reused")
    assert snapshot(api.db) == before
    assert balances(api.db, two)["cash"] == 0


def test_the_same_key_from_two_api_keys_at_once_is_two_keys(api, scenario):
    """Idempotency keys are scoped to the calling API key: 25 requests from each of two keys
    of the same role, interleaved, with one Idempotency-Key, run the work once *per API key*."""
    second = scenario.more_callers()
    callers = [scenario.caller if i % 2 else second for i in range(THREADS)]
    answers = storm(api, [(c, scenario.url, scenario.body) for c in callers], "shared")

    mine, theirs = stored(api, scenario.caller, "shared"), stored(api, second, "shared")
    assert mine.response_body != theirs.response_body, "one response for two API keys"
    for caller, r in zip(callers, answers, strict=True):
        row = mine if caller is scenario.caller else theirs
        if not is_stored(r, row):
            assert_in_use(r)
    assert scenario.effects() == scenario.effects_with_two_keys


# --- how long keys are kept ---------------------------------------------------------------------


@pytest.mark.parametrize("later", [timedelta(hours=24), timedelta(days=7)], ids=["24h", "7d"])
def test_a_repeat_after_the_clock_moved_still_gets_the_first_response(api, clock, scenario, later):
    key = {"Idempotency-Key": "kept"}
    first = scenario.caller.post(scenario.url, json=scenario.body, headers=key)
    assert first.status_code == scenario.status, first.text
    work = scenario.effects()
    before = snapshot(api.db)

    clock.advance(seconds=later.total_seconds())
    again = scenario.caller.post(scenario.url, json=scenario.body, headers=key)
    assert again.status_code == first.status_code
    assert again.content == first.content
    assert scenario.effects() == work
    assert snapshot(api.db) == before  # nothing at all happened, not even a new claim

    # The key is not forgotten either: another body with it is still refused.
    r = scenario.caller.post(scenario.url, json=scenario.other_body, headers=key)
    assert_problem(r, 422, "idempotency_key_reused")
    assert scenario.effects() == work
