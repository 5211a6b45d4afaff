"""kill -9 in the middle of a spend stream: every event is applied exactly once, nothing
acknowledged is lost, and the ledger verifies.

The real `adledger serve` runs as a subprocess on a database of its own. A client thread sends
10,000 spend events in batches of 100, each batch with its own Idempotency-Key, and resends a
batch until it is acknowledged (a 200): after a connection error, a timeout, a 5xx, or a 409
`idempotency_key_in_use` (a claim left by the killed process, free again once its lease has run
out). Meanwhile the test SIGKILLs the server at a random moment between 30% and 60% of the
stream and starts it again on the same database and port; the client just carries on.

One trial per backend; `ADLEDGER_SOAK=1` runs several, each killing at another moment.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from adledger.config import Settings
from adledger.http.encoding import rfc3339
from adledger.service import accounts, credits, deposits
from adledger.service.uow import Database, UnitOfWork
from adledger.service.verify import verify_ledger
from adledger.storage.tables import accounts as accounts_table
from adledger.storage.tables import entries, idempotency_keys, lots, transactions
from server_support import Server, cli, fresh_database, mint_key

pytestmark = pytest.mark.slow

SOAK = os.environ.get("ADLEDGER_SOAK") == "1"
TRIALS = 5 if SOAK else 1
EVENTS = 10_000
BATCH = 100
ACCOUNTS = 20
DEADLINE = 240.0  # seconds for one stream, kill and restart included: beyond it, a hang


@dataclass
class Seeded:
    cash: dict[str, int]  # deposited per account
    credit: dict[str, int]  # granted per account


@dataclass
class Stream:
    """The client: sends every batch until acknowledged; records what each call got."""

    base_url: str
    key: str
    batches: list[tuple[str, list[dict[str, Any]]]]
    acked: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    retries: int = 0
    transport_errors: int = 0
    server_errors: int = 0
    in_use: int = 0
    failure: str | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.failure = f"client crashed: {exc!r}"

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.base_url, timeout=httpx.Timeout(15.0)) as http:
            for n, (idem, events) in enumerate(self.batches):
                while True:
                    if self.stop.is_set():
                        self.failure = f"gave up at batch {n}: deadline passed (a hang?)"
                        return
                    try:
                        r = http.post(
                            "/v1/spend",
                            json={"events": events},
                            headers=headers | {"Idempotency-Key": idem},
                        )
                    except httpx.TransportError:  # refused, reset, timed out: not acknowledged
                        self.transport_errors += 1
                        self.retries += 1
                        time.sleep(0.05)
                        continue
                    if r.status_code == 200:
                        self.acked[n] = r.json()["results"]
                        break
                    if r.status_code >= 500:
                        self.server_errors += 1
                        self.retries += 1
                        time.sleep(0.05)
                        continue
                    if r.status_code == 409 and r.json().get("code") == "idempotency_key_in_use":
                        # The killed process had claimed this key: wait for its lease.
                        self.in_use += 1
                        self.retries += 1
                        time.sleep(0.5)
                        continue
                    self.failure = f"batch {n}: unexpected {r.status_code} {r.text[:500]}"
                    return


def _seed(url: str, rng: random.Random) -> Seeded:
    """Accounts with deposits and credit lots; a few are underfunded, so some spend is unfunded."""
    db = Database(Settings(database_url=url))
    seeded = Seeded({}, {})
    try:
        now = db.clock.now()
        for i in range(ACCOUNTS):
            biz = db.run(accounts.create_business, name=f"Crash {i}")["id"]
            acct = db.run(
                accounts.create_account, name=f"acct {i}", currency="USD", business_id=biz
            )["id"]
            cash = 2_000 if i % 5 == 0 else rng.randint(100_000, 400_000)
            db.run(deposits.create_deposit, acct, amount=cash, payment_reference=f"pay_{i}")
            granted = 0
            for j in range(rng.randint(1, 3)):
                amount = rng.randint(5_000, 60_000)
                db.run(
                    credits.grant_credit,
                    acct,
                    amount=amount,
                    expires_at=now + timedelta(days=30 + j),
                    reason="seed",
                    priority=rng.randint(0, 100),
                )
                granted += amount
            seeded.cash[acct] = cash
            seeded.credit[acct] = granted
    finally:
        db.dispose()
    return seeded


def _batches(seeded: Seeded, rng: random.Random) -> list[tuple[str, list[dict[str, Any]]]]:
    ids = sorted(seeded.cash)
    occurred = rfc3339(datetime.now(UTC))  # after every lot became effective
    run = uuid.uuid4().hex[:8]
    out = []
    for b in range(EVENTS // BATCH):
        events = [
            {
                "event_id": f"crash-{run}-{b:03d}-{i:03d}",
                "account_id": rng.choice(ids),
                "amount": rng.randint(1, 1_000),
                "occurred_at": occurred,
            }
            for i in range(BATCH)
        ]
        out.append((f"crash-{run}-batch-{b:03d}", events))
    return out


def _check(url: str, seeded: Seeded, stream: Stream) -> dict[str, int]:
    """Exactly once, nothing acknowledged lost, balances = entries = what was acknowledged."""
    sent = {e["event_id"]: e for _, events in stream.batches for e in events}
    assert len(sent) == EVENTS
    assert sorted(stream.acked) == list(range(len(stream.batches))), "a batch never acknowledged"

    acked: dict[str, dict[str, Any]] = {}
    for n, results in stream.acked.items():
        events = stream.batches[n][1]
        assert [r["event_id"] for r in results] == [e["event_id"] for e in events], n
        for r in results:
            # "duplicate" is a correct answer too: the first attempt's work had committed.
            assert r["status"] in ("applied", "duplicate"), r
            acked[r["event_id"]] = r
    assert len(acked) == EVENTS

    total_sent = sum(e["amount"] for e in sent.values())
    total_acked = sum(r["credit_used"] + r["cash_used"] + r["unfunded"] for r in acked.values())
    assert total_acked == total_sent

    db = Database(Settings(database_url=url))
    try:
        t = transactions.c
        with db.engine.connect() as conn:
            is_spend = t.kind == "spend"
            n_spend = conn.execute(select(func.count()).where(is_spend)).scalar_one()
            n_distinct = conn.execute(
                select(func.count(func.distinct(t.event_id))).where(is_spend)
            ).scalar_one()
            stored = {
                row.event_id: row
                for row in conn.execute(
                    select(t.event_id, t.account_id, t.cash_delta, t.credit_delta).where(is_spend)
                )
            }
            revenue = conn.execute(
                select(func.coalesce(func.sum(entries.c.amount), 0))
                .select_from(entries.join(transactions, entries.c.txn_id == t.id))
                .where(is_spend, entries.c.book == "platform:revenue")
            ).scalar_one()
            cash_now = dict(
                conn.execute(select(accounts_table.c.id, accounts_table.c.cash_available)).all()
            )
            credit_now = dict(
                conn.execute(
                    select(lots.c.account_id, func.sum(lots.c.remaining)).group_by(
                        lots.c.account_id
                    )
                ).all()
            )
            conn.rollback()
        assert n_spend == EVENTS, f"{n_spend} spend transactions for {EVENTS} events"
        assert n_distinct == EVENTS
        assert set(stored) == set(sent), "an acknowledged event is missing, or a stranger is in"
        assert revenue == total_sent
        cash_used: dict[str, int] = defaultdict(int)
        credit_used: dict[str, int] = defaultdict(int)
        for event_id, r in acked.items():
            row = stored[event_id]
            assert row.account_id == sent[event_id]["account_id"]
            assert (-row.cash_delta, -row.credit_delta) == (r["cash_used"], r["credit_used"]), (
                f"{event_id}: acknowledged {r}, stored cash {row.cash_delta} "
                f"credit {row.credit_delta}"
            )
            cash_used[row.account_id] += r["cash_used"]
            credit_used[row.account_id] += r["credit_used"]
        for acct, cash in seeded.cash.items():
            assert cash_now[acct] == cash - cash_used[acct], acct
            assert credit_now[acct] == seeded.credit[acct] - credit_used[acct], acct
        violations = db.read(verify_ledger)
        assert not violations, violations
    finally:
        db.dispose()

    done = cli(url, "verify")
    assert done.returncode == 0, done.stdout + done.stderr
    return {
        "unfunded": sum(r["unfunded"] for r in acked.values()),
        "duplicates": sum(r["status"] == "duplicate" for r in acked.values()),
    }


def _kill_phase(url: str, idem: str) -> str:
    """Where the kill caught the batch in flight, from what its Idempotency-Key left behind."""

    def status(uow: UnitOfWork) -> str | None:
        k = idempotency_keys.c
        return uow.conn.execute(select(k.status).where(k.key == idem)).scalar()

    db = Database(Settings(database_url=url))
    try:
        found = db.read(status)
    finally:
        db.dispose()
    return {None: "before-claim", "in_progress": "claimed-not-done", "done": "done-unanswered"}[
        found
    ]


def _trial(backend: str, tmp_path: Path, trial: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    with fresh_database(backend, tmp_path, name=f"crash{trial}") as url:
        seeded = _seed(url, rng)
        key = mint_key(url, "ingest", "ad server")
        server = Server(url, tmp_path / f"serve-{backend}-{trial}.log")
        stream = Stream(server.base_url, key, _batches(seeded, rng))
        kill_at = rng.randint(30, 60) * len(stream.batches) // 100
        started = time.monotonic()
        try:
            server.start()
            client = threading.Thread(target=stream.run, name="spend-client", daemon=True)
            client.start()
            while len(stream.acked) < kill_at and client.is_alive():
                time.sleep(0.002)
            time.sleep(rng.uniform(0, 0.05))  # land anywhere inside the next batch
            server.kill()
            killed = time.monotonic()
            time.sleep(0.2)  # let the client record a response that came just before the kill
            acked_at_kill = len(stream.acked)  # it is now stuck on the next batch
            phase = _kill_phase(url, stream.batches[acked_at_kill][0])
            server.start()
            restarted = time.monotonic()
            client.join(timeout=max(1.0, DEADLINE - (time.monotonic() - started)))
            if client.is_alive():
                stream.stop.set()
                client.join(timeout=30)
                raise AssertionError(
                    f"the stream did not finish in {DEADLINE} s (a hang?): "
                    f"{len(stream.acked)} of {len(stream.batches)} batches acknowledged\n"
                    + server.log()
                )
            elapsed = time.monotonic() - started
        finally:
            server.stop()
        assert stream.failure is None, stream.failure + "\n" + server.log()
        figures = _check(url, seeded, stream)
    return {
        "trial": trial,
        "seed": seed,
        "events": EVENTS,
        "batches": len(stream.batches),
        "killed_after_acked": acked_at_kill,
        "kill_phase": phase,
        "restarts": server.starts - 1,
        "retries": stream.retries,
        "transport_errors": stream.transport_errors,
        "server_errors": stream.server_errors,
        "in_use_409": stream.in_use,
        "down_s": round(restarted - killed, 2),
        "elapsed_s": round(elapsed, 1),
        **figures,
    }


def test_kill_9_mid_stream_loses_nothing_and_doubles_nothing(backend, tmp_path):
    base = random.randrange(1 << 30)
    report = []
    for trial in range(TRIALS):
        figures = _trial(backend, tmp_path, trial, base + trial)
        report.append(figures)
        print(f"\n[crash-safety {backend}] " + " ".join(f"{k}={v}" for k, v in figures.items()))
    print(
        f"[crash-safety {backend}] trials={len(report)} events={EVENTS * len(report)} "
        f"retries={sum(r['retries'] for r in report)} "
        f"restarts={sum(r['restarts'] for r in report)}"
    )
