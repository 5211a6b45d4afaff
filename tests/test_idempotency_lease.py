"""The idempotency lease is for crash recovery: a claim whose process died may be taken over once
its 30-second lease has run out (see test_crash_safety.py, where the restarted server's client
waits out exactly that). It must never be taken over from a request that is still running.

A request can run longer than the lease without anything being wrong with it: it may wait for
an account's lock (PostgreSQL has no lock timeout here; SQLite's busy timeout is 60 s) or be
retried by `Database.run` up to 12 times. Here the first deposit waits on the account's row
lock while the test clock moves past its lease; the same request is sent again with the same
Idempotency-Key; then the lock is released. The claim's fencing token decides: the first
request finds its claim taken over when it completes, its work rolls back, and it answers 409
`idempotency_key_in_use`; the retry, which holds the claim, does the work once.
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select

from adledger.service import idempotency
from adledger.storage.tables import accounts, deposits, idempotency_keys
from factories import make_account


def test_a_request_that_outlives_its_lease_is_not_done_twice(backend, api, db, clock):
    if backend != "postgres":
        pytest.skip("needs row locks that block one writer but not the other's claim")
    acct = make_account(db)["id"]
    body = {"amount": 1_000, "payment_reference": "pay_lease"}
    headers = {"Idempotency-Key": "deposit-once"}
    answers: list[int] = []

    def send() -> None:
        r = api.finance.post(f"/v1/accounts/{acct}/deposits", json=body, headers=headers)
        answers.append(r.status_code)

    def lease() -> object:
        with db.engine.connect() as conn:
            return conn.execute(select(idempotency_keys.c.locked_until)).scalar()

    blocker = db.engine.connect()
    tx = blocker.begin()
    blocker.execute(select(accounts.c.id).where(accounts.c.id == acct).with_for_update())
    first = threading.Thread(target=send)
    first.start()
    deadline = time.monotonic() + 10
    while (held := lease()) is None:  # the first request has claimed the key, then waits
        assert time.monotonic() < deadline
        time.sleep(0.01)

    clock.advance(seconds=31)  # its lease has run out; it is still running
    second = threading.Thread(target=send)
    second.start()
    while lease() == held and second.is_alive():  # the retry took the claim over (or answered)
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.2)
    tx.rollback()
    blocker.close()
    first.join(timeout=30)
    second.join(timeout=30)

    with db.engine.connect() as conn:
        made = conn.execute(
            select(func.count()).select_from(deposits).where(deposits.c.account_id == acct)
        ).scalar_one()
    assert made == 1, f"one Idempotency-Key, {made} deposits (answers {answers})"
    assert sorted(answers) == [201, 409], answers
    again = api.finance.post(f"/v1/accounts/{acct}/deposits", json=body, headers=headers)
    assert again.status_code == 201  # the holder's stored response


def test_a_claim_that_was_taken_over_can_not_complete(db, clock):
    """At the service level, on both backends: a stale claim's `complete` raises `ClaimLost`
    and stores nothing; the holder's completes; a stale `release` deletes nothing."""
    first = db.run(idempotency.claim, "key_scope", "k1", "hash")
    assert isinstance(first, idempotency.Claim)
    with pytest.raises(idempotency.IdempotencyKeyInUse):
        db.run(idempotency.claim, "key_scope", "k1", "hash")
    clock.advance(seconds=31)
    second = db.run(idempotency.claim, "key_scope", "k1", "hash")
    assert isinstance(second, idempotency.Claim) and second.token != first.token

    with pytest.raises(idempotency.ClaimLost):
        db.run(idempotency.complete, "key_scope", "k1", first, 201, "{}")
    db.run(idempotency.release, "key_scope", "k1", first)
    db.run(idempotency.complete, "key_scope", "k1", second, 201, '{"ok": true}')
    stored = db.run(idempotency.claim, "key_scope", "k1", "hash")
    assert stored == idempotency.StoredResponse(201, '{"ok": true}')
