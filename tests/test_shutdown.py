"""Graceful shutdown: SIGTERM while large spend batches are in flight.

The real `adledger serve` runs as a subprocess with its expiry sweeper running every 0.2 s (and
lots expiring meanwhile, so it has work). Three clients each post a batch of 10,000 events (a
noticeable moment of work each) with an Idempotency-Key; once every batch has claimed its key
(it is inside the app) and at least one is still running, the test sends SIGTERM, and a late
client tries one more batch. Then:

* every request that got a response got a complete, correct one (10,000 results, in order,
  each `applied`, agreeing with what was stored), and every batch that was in flight got one;
* the server finishes its shutdown (lifespan and sweeper included) and exits within seconds;
* nothing is half-applied: each batch has 0 or 10,000 spend rows;
* after a restart, each batch sent again with its key gets the same response, byte for byte;
* `adledger verify` exits 0.
"""

from __future__ import annotations

import random
import signal
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from adledger.config import Settings
from adledger.http.encoding import rfc3339
from adledger.service import accounts, credits, deposits
from adledger.service.uow import Database, UnitOfWork
from adledger.storage.tables import idempotency_keys, transactions
from server_support import Server, cli, fresh_database, mint_key

pytestmark = pytest.mark.slow

BATCHES = 3
EVENTS = 10_000
EXIT_WITHIN = 60.0  # seconds after SIGTERM; the in-flight batches take a few of them


class Post(threading.Thread):
    def __init__(self, base_url: str, key: str, idem: str, events: list[dict[str, Any]]) -> None:
        super().__init__(daemon=True, name=f"post-{idem}")
        self.base_url, self.key, self.idem, self.events = base_url, key, idem, events
        self.status: int | None = None
        self.body: bytes | None = None
        self.error: str | None = None

    def run(self) -> None:
        try:
            r = httpx.post(
                self.base_url + "/v1/spend",
                json={"events": self.events},
                headers={"Authorization": f"Bearer {self.key}", "Idempotency-Key": self.idem},
                timeout=120,
            )
            self.status, self.body = r.status_code, r.content
        except httpx.TransportError as exc:
            self.error = repr(exc)


def _seed(url: str) -> list[str]:
    db = Database(Settings(database_url=url))
    try:
        now = db.clock.now()
        ids = []
        for i in range(BATCHES + 1):
            biz = db.run(accounts.create_business, name=f"Shutdown {i}")["id"]
            acct = db.run(
                accounts.create_account, name=f"acct {i}", currency="USD", business_id=biz
            )["id"]
            db.run(deposits.create_deposit, acct, amount=3_000_000, payment_reference=f"p{i}")
            db.run(
                credits.grant_credit,
                acct,
                amount=500_000,
                expires_at=now + timedelta(days=30),
                reason="seed",
            )
            for j in range(3):  # the sweeper expires these while the batches run
                db.run(
                    credits.grant_credit,
                    acct,
                    amount=1_000 + j,
                    expires_at=now + timedelta(seconds=5 + 2 * j),
                    reason="soon",
                    priority=100,
                )
            ids.append(acct)
        return ids
    finally:
        db.dispose()


def _batch(tag: str, account_id: str, occurred: str) -> list[dict[str, Any]]:
    rng = random.Random(tag)
    return [
        {
            "event_id": f"{tag}-{i:05d}",
            "account_id": account_id,
            "amount": rng.randint(1, 400),
            "occurred_at": occurred,
        }
        for i in range(EVENTS)
    ]


# Read with `Database.read`: on SQLite a deferred transaction, which never waits for the
# write lock the batches hold.


def _claims(uow: UnitOfWork, idems: list[str]) -> dict[str, str]:
    k = idempotency_keys.c
    return {
        r.key: r.status for r in uow.conn.execute(select(k.key, k.status).where(k.key.in_(idems)))
    }


def _stored(uow: UnitOfWork, prefix: str) -> dict[str, tuple[int, int]]:
    t = transactions.c
    rows = uow.conn.execute(
        select(t.event_id, t.cash_delta, t.credit_delta).where(
            t.kind == "spend", t.event_id.like(prefix + "-%")
        )
    )
    return {r.event_id: (-r.cash_delta, -r.credit_delta) for r in rows}


def _assert_clean_exit(server: Server, rc: int) -> None:
    # uvicorn finishes the graceful shutdown, then re-raises the SIGTERM it caught (so a
    # supervisor sees the process ended by its signal): the status is 0 or -SIGTERM.
    log = server.log()
    assert rc in (0, -signal.SIGTERM), f"exit status {rc}\n{log}"
    assert "Application shutdown complete" in log, log
    assert "Finished server process" in log, log
    assert "Traceback" not in log, log


def test_sigterm_finishes_in_flight_batches_and_exits_cleanly(backend, tmp_path):
    began = time.monotonic()
    with fresh_database(backend, tmp_path, name="shutdown") as url:
        ids = _seed(url)
        key = mint_key(url, "ingest", "ad server")
        server = Server(
            url, tmp_path / f"serve-{backend}.log", env={"ADLEDGER_EXPIRY_INTERVAL_SECONDS": "0.2"}
        )
        db = Database(Settings(database_url=url))
        run = uuid.uuid4().hex[:8]
        occurred = rfc3339(datetime.now(UTC))
        tags = [f"sd-{run}-{n}" for n in range(BATCHES)]
        posts = [
            Post(server.base_url, key, f"{tag}-key", _batch(tag, ids[n], occurred))
            for n, tag in enumerate(tags)
        ]
        late_tag = f"sd-{run}-late"
        late = Post(server.base_url, key, f"{late_tag}-key", _batch(late_tag, ids[-1], occurred))
        try:
            server.start()
            for p in posts:
                p.start()
            idems = [p.idem for p in posts]
            deadline = time.monotonic() + 60
            while True:  # a batch is running: it has claimed its key
                claims = db.read(_claims, idems)
                if "in_progress" in claims.values():
                    break
                assert time.monotonic() < deadline, f"batches never got going: {claims}"
                assert any(p.is_alive() for p in posts), "every batch finished before SIGTERM"
                time.sleep(0.01)
            time.sleep(0.3)  # the others are in by now too (on SQLite, waiting for the lock)
            claims = db.read(_claims, idems)
            in_flight = sum(s == "in_progress" for s in claims.values())
            assert in_flight, f"every batch finished before SIGTERM: {claims}"
            server.terminate()
            terminated = time.monotonic()
            time.sleep(0.5)
            late.start()
            rc = server.wait(timeout=EXIT_WITHIN)
            exited = time.monotonic() - terminated
            for p in [*posts, late]:
                p.join(timeout=30)
                assert not p.is_alive(), f"{p.name} still waiting after the server exited"
        finally:
            server.stop()
        _assert_clean_exit(server, rc)
        claims_after = db.read(_claims, [p.idem for p in [*posts, late]])
        assert set(claims_after.values()) <= {"done"}, f"a claim left in progress: {claims_after}"

        for tag, p in zip([*tags, late_tag], [*posts, late], strict=True):
            stored = db.read(_stored, tag)
            assert len(stored) in (0, EVENTS), f"{tag}: half applied, {len(stored)} rows"
            if p.idem in claims_after:  # it was inside the app: it must have been answered
                assert p.status == 200, f"{tag} was claimed, but got {p.status} / {p.error}"
            if p.status is None:
                continue
            assert p.status == 200 and p.body is not None, (p.status, p.body)
            results = httpx.Response(200, content=p.body).json()["results"]
            assert [r["event_id"] for r in results] == [e["event_id"] for e in p.events]
            assert all(r["status"] == "applied" for r in results)
            for e, r in zip(p.events, results, strict=True):
                assert r["credit_used"] + r["cash_used"] + r["unfunded"] == e["amount"]
                assert stored[e["event_id"]] == (r["cash_used"], r["credit_used"])

        # Restarted, each batch sent again with its key gets the first response again.
        try:
            server.start()
            for p in posts:
                again = Post(server.base_url, key, p.idem, p.events)
                again.run()
                assert again.status == 200 and again.body == p.body, p.name
            server.terminate()
            _assert_clean_exit(server, server.wait(timeout=EXIT_WITHIN))
        finally:
            server.stop()
        db.dispose()

        done = cli(url, "verify")
        assert done.returncode == 0, done.stdout + done.stderr
        print(
            f"\n[shutdown {backend}] batches={BATCHES}x{EVENTS} in_flight_at_sigterm={in_flight} "
            f"answered={sum(p.status == 200 for p in posts)} "
            f"exit={rc} exited_after_s={exited:.2f} total_s={time.monotonic() - began:.1f} "
            f"late={'refused' if late.status is None else late.status}"
        )
