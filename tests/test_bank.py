"""The bank test (after Jepsen's): many workers, few accounts, mixed operations, a fixed time.

Workers call the service layer through `Database.run` from threads (PostgreSQL: 32, SQLite: 8)
on a handful of accounts: spend batches (with resends of earlier events), deposits and their
reversals, refund requests and every transition (approve / reject / cancel / settle / fail,
racing each other on the same refunds), credit grants (some expiring within seconds), voids,
expiry runs, coupon redemptions and balance reads. Each worker records what was acknowledged;
afterwards the stored ledger must agree with it:

* money is conserved, per account: deposits - reversals - cash spent - refunds paid
  == cash_available + cash_held - debt; and credit granted == remaining + used + expired +
  voided + forfeited;
* every event is applied once; no cash, held, debt or lot is ever negative; no refund is held
  twice (held == pending + approved refunds) and each refund took one path through its life;
* no deposit is reversed twice; no promotion goes over `max_redemptions`;
* `verify_ledger` is clean; nothing failed except the refusals the domain promises.

It prints operations/s, `Database.retries` and the p99 latency of each kind of operation (never
asserted). CI: a few seconds per backend; `ADLEDGER_SOAK=1`: 120 s, figures written to
`bench/results/bank-<backend>.json`.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from adledger.config import Settings
from adledger.domain.errors import AdledgerError
from adledger.service import (
    accounts,
    balance,
    credits,
    deposits,
    expiry,
    promotions,
    refunds,
    spend,
)
from adledger.service.uow import Database, UnitOfWork
from adledger.service.verify import verify_ledger
from adledger.storage.tables import accounts as accounts_table
from adledger.storage.tables import lots, redemptions, transactions
from adledger.storage.tables import promotions as promotions_table
from adledger.storage.tables import refunds as refunds_table

pytestmark = pytest.mark.slow

SOAK = os.environ.get("ADLEDGER_SOAK") == "1"
DURATION = 120.0 if SOAK else 6.0
WORKERS = {"sqlite": 8, "postgres": 32}
ACCOUNTS = 5
PROMOTIONS = 12
RESULTS_DIR = Path(__file__).resolve().parents[1] / "bench" / "results"
REQUESTER, APPROVER = "key_bank_requester", "key_bank_finance"

# Refusals the domain promises under these races; anything else is a failure of the test.
EXPECTED: dict[str, set[str]] = {
    "spend": set(),
    "deposit": set(),
    "reverse": {"deposit_already_reversed"},
    "refund_request": {
        "insufficient_refundable_funds",
        "account_not_in_good_standing",
        # quiet period 0, but a refund's `now` is taken before it waits for the account lock,
        # so a spend that locked first may be stamped a moment "later"
        "recent_spend",
    },
    "refund_step": {"invalid_refund_transition", "account_not_in_good_standing"},
    "grant": set(),
    "void": {"lot_not_active"},
    "expiry": set(),
    "redeem": {"promotion_exhausted", "too_many_attempts", "not_eligible"},
    "balance": set(),
}
WEIGHTS = {
    "spend": 30,
    "deposit": 10,
    "reverse": 1,
    "refund_request": 6,
    "refund_step": 12,
    "grant": 6,
    "void": 2,
    "expiry": 3,
    "redeem": 3,
    "balance": 6,
}
PATHS = {  # every set of statuses a refund may have been moved to, from pending
    frozenset(),
    frozenset({"approved"}),
    frozenset({"approved", "paid"}),
    frozenset({"approved", "failed"}),
    frozenset({"rejected"}),
    frozenset({"canceled"}),
}
# How far along its life a status is: a path ends at its furthest status.
RANK = {"pending": 0, "approved": 1, "paid": 2, "failed": 2, "rejected": 2, "canceled": 2}


@dataclass
class Ledger:
    """What the workers were told, guarded by `lock`."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    deposited: Counter[str] = field(default_factory=Counter)
    reversed_: Counter[str] = field(default_factory=Counter)
    cash_spent: Counter[str] = field(default_factory=Counter)
    refunds_paid: Counter[str] = field(default_factory=Counter)
    spend_total: int = 0
    credit_spent: int = 0
    unfunded: int = 0
    credit_granted: int = 0
    credit_expired: int = 0
    applied: Counter[str] = field(default_factory=Counter)  # event_id -> times "applied"
    deposits: list[tuple[str, str, int]] = field(default_factory=list)  # id, account, amount
    reversed_ids: Counter[str] = field(default_factory=Counter)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    moves: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    lots: list[str] = field(default_factory=list)
    codes: list[tuple[str, str, int]] = field(default_factory=list)  # account, code, reward
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


class Bank:
    def __init__(self, db: Database, account_ids: list[str], seed: int) -> None:
        self.db = db
        self.accounts = account_ids
        self.seed = seed
        self.book = Ledger()
        self.deadline = 0.0

    # --- the operations: each returns the outcome to count ("ok" or a refusal's code) --------

    def spend(self, rng: random.Random, worker: int, state: dict[str, Any]) -> str:
        now = self.db.clock.now()
        events = []
        for _ in range(rng.randint(1, 40)):
            state["n"] += 1
            events.append(
                spend.SpendEvent(
                    event_id=f"bank-{self.seed}-w{worker}-{state['n']}",
                    account_id=rng.choice(self.accounts),
                    amount=rng.randint(1, 600),
                    occurred_at=now,
                    campaign_id="camp-1" if rng.random() < 0.3 else None,
                )
            )
        resent = rng.sample(state["sent"], min(len(state["sent"]), rng.randint(0, 3)))
        results = self.db.run(spend.post_spend, events + resent)
        state["sent"] = (state["sent"] + events)[-200:]
        with self.book.lock:
            for ev, r in zip(events + resent, results, strict=True):
                assert r["event_id"] == ev.event_id
                if r["status"] == "applied":
                    self.book.applied[ev.event_id] += 1
                    self.book.spend_total += ev.amount
                    self.book.cash_spent[ev.account_id] += r["cash_used"]
                    self.book.credit_spent += r["credit_used"]
                    self.book.unfunded += r["unfunded"]
                    total = r["credit_used"] + r["cash_used"] + r["unfunded"]
                    if total != ev.amount:
                        self.book.failures.append(f"spend {ev.event_id}: {r} for {ev.amount}")
                elif r["status"] == "duplicate":
                    if ev not in resent:
                        self.book.failures.append(f"new event {ev.event_id} was a duplicate")
                else:
                    self.book.failures.append(f"spend {ev.event_id} rejected: {r}")
        return "ok"

    def deposit(self, rng: random.Random, worker: int, state: dict[str, Any]) -> str:
        acct = rng.choice(self.accounts)
        amount = rng.randint(1_000, 40_000)
        dep = self.db.run(
            deposits.create_deposit, acct, amount=amount, payment_reference=f"pay-w{worker}"
        )
        with self.book.lock:
            self.book.deposited[acct] += amount
            self.book.deposits.append((dep["id"], acct, amount))
        return "ok"

    def reverse(self, rng: random.Random, worker: int, state: dict[str, Any]) -> str:
        with self.book.lock:
            if not self.book.deposits:
                return "nothing"
            dep_id, acct, amount = rng.choice(self.book.deposits)
        self.db.run(deposits.reverse_deposit, dep_id, reason="chargeback")
        with self.book.lock:
            self.book.reversed_[acct] += amount
            self.book.reversed_ids[dep_id] += 1
        return "ok"

    def refund_request(self, rng: random.Random, worker: int, state: dict[str, Any]) -> str:
        acct = rng.choice(self.accounts)
        made = self.db.run(
            refunds.request_refund, acct, amount=rng.randint(100, 30_000), requested_by=REQUESTER
        )
        with self.book.lock:
            self.book.refunds[made["id"]] = made | {"known": "pending"}
        return "ok"

    def refund_step(self, rng: random.Random, worker: int, state: dict[str, Any]) -> str:
        with self.book.lock:
            open_ = [r for r in self.book.refunds.values() if r["known"] in ("pending", "approved")]
            if not open_:
                return "nothing"
            refund = rng.choice(open_)
            known = refund["known"]
        if known == "pending":
            step = rng.choices(
                [refunds.approve_refund, refunds.reject_refund, refunds.cancel_refund], [6, 2, 2]
            )[0]
        else:
            step = rng.choices([refunds.settle_refund, refunds.fail_refund], [8, 2])[0]
        done = self.db.run(step, refund["id"], actor_key_id=APPROVER)
        with self.book.lock:
            self.book.moves[refund["id"]].append(done["status"])
            mine = self.book.refunds[refund["id"]]
            if RANK[done["status"]] > RANK[mine["known"]]:  # moves may be recorded out of order
                mine["known"] = done["status"]
            if done["status"] == "paid":
                self.book.refunds_paid[refund["account_id"]] += refund["amount"]
        return "ok"

    def grant(self, rng: random.Random, worker: int, state: dict[str, Any]) -> str:
        now = self.db.clock.now()
        soon = rng.random() < 0.5
        expires = now + (timedelta(seconds=rng.uniform(0.2, 3)) if soon else timedelta(days=30))
        amount = rng.randint(500, 15_000)
        lot = self.db.run(
            credits.grant_credit,
            rng.choice(self.accounts),
            amount=amount,
            expires_at=expires,
            # Named, not left to the transaction's `now`: that is taken once the transaction has
            # begun, which on SQLite may be seconds later (it waits for the write lock).
            effective_at=now,
            reason="bank",
            priority=rng.randint(0, 100),
            campaign_id="camp-1" if rng.random() < 0.2 else None,
        )
        with self.book.lock:
            self.book.credit_granted += amount
            self.book.lots.append(lot["id"])
        return "ok"

    def void(self, rng: random.Random, worker: int, state: dict[str, Any]) -> str:
        with self.book.lock:
            if not self.book.lots:
                return "nothing"
            lot_id = rng.choice(self.book.lots)
        self.db.run(credits.void_credit, lot_id, reason="bank")
        return "ok"

    def expiry(self, rng: random.Random, worker: int, state: dict[str, Any]) -> str:
        ran = self.db.run(expiry.run_expiry)
        with self.book.lock:
            self.book.credit_expired += ran["expired_amounts"].get("USD", 0)
        return "ok"

    def redeem(self, rng: random.Random, worker: int, state: dict[str, Any]) -> str:
        with self.book.lock:
            if not self.book.codes:
                return "nothing"
            acct, code, reward = self.book.codes.pop()
        made = self.db.run(promotions.redeem, acct, code=code)
        assert made["status"] == "granted", made
        with self.book.lock:
            self.book.credit_granted += reward
            self.book.lots.append(made["lot_id"])
        return "ok"

    def balance(self, rng: random.Random, worker: int, state: dict[str, Any]) -> str:
        bal = self.db.read(balance.get_balance, rng.choice(self.accounts))
        cash, credit = bal["cash"], bal["credit"]
        if min(cash["available"], cash["held"], cash["debt"], credit["available"]) < 0 or any(
            lot["remaining"] < 0 for lot in credit["lots"]
        ):
            with self.book.lock:
                self.book.failures.append(f"a negative balance was read: {bal}")
        if bal["spendable"] != cash["available"] + credit["available"]:
            with self.book.lock:
                self.book.failures.append(f"spendable is not cash + credit: {bal}")
        return "ok"

    # --- the workers ---------------------------------------------------------------------------

    def worker(self, n: int, start: threading.Barrier) -> None:
        rng = random.Random(self.seed * 1_000 + n)
        ops: dict[str, Callable[[random.Random, int, dict[str, Any]], str]] = {
            kind: getattr(self, kind) for kind in WEIGHTS
        }
        kinds, weights = list(WEIGHTS), list(WEIGHTS.values())
        state: dict[str, Any] = {"n": 0, "sent": []}
        start.wait()
        while time.monotonic() < self.deadline:
            kind = rng.choices(kinds, weights)[0]
            began = time.perf_counter()
            try:
                outcome = ops[kind](rng, n, state)
            except AdledgerError as exc:
                outcome = exc.code
                if exc.code not in EXPECTED[kind]:
                    with self.book.lock:
                        self.book.failures.append(f"{kind}: unexpected {exc.code}: {exc}")
            except Exception:
                outcome = "error"
                with self.book.lock:
                    self.book.failures.append(f"{kind}: {traceback.format_exc()}")
            took = time.perf_counter() - began
            with self.book.lock:
                if outcome != "nothing":
                    self.book.latency[kind].append(took)
                self.book.outcomes[(kind, outcome)] += 1


def _setup(db: Database, seed: int) -> Bank:
    rng = random.Random(seed)
    ids = []
    for i in range(ACCOUNTS):
        biz = db.run(accounts.create_business, name=f"Bank {i}")["id"]
        ids.append(
            db.run(accounts.create_account, name=f"bank {i}", currency="USD", business_id=biz)["id"]
        )
    bank = Bank(db, ids, seed)
    for _ in ids:  # about one deposit and one lot each to start with
        bank.deposit(rng, 0, {})
        bank.grant(rng, 0, {})
    now = db.clock.now()
    codes = []
    for p in range(PROMOTIONS):
        reward = rng.randint(1_000, 5_000)
        promo = db.run(
            promotions.create_promotion,
            name=f"bank coupon {p}",
            kind="coupon",
            currency="USD",
            reward={"amount": reward},
            credit_valid_days=30,
            starts_at=now - timedelta(seconds=1),
            ends_at=now + timedelta(days=1),
            max_redemptions=3,
            eligibility={"once_per_business": False},
        )
        made = db.run(promotions.create_codes, promo["id"], count=ACCOUNTS)
        codes += [(acct, code, reward) for acct, code in zip(ids, made["codes"], strict=True)]
    rng.shuffle(codes)
    bank.book.codes = codes
    return bank


def _end(moved: list[str]) -> str:
    """Where a refund's successful moves left it."""
    return max(moved, key=RANK.__getitem__, default="pending")


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def _snapshot(uow: UnitOfWork) -> dict[str, Any]:
    """The stored state that the checks compare with what the workers were told."""
    conn, t = uow.conn, transactions.c
    rows = {r.id: r for r in conn.execute(select(accounts_table))}
    n_spend, spend_cash, spend_credit = conn.execute(
        select(
            func.count(),
            func.coalesce(func.sum(t.cash_delta), 0),
            func.coalesce(func.sum(t.credit_delta), 0),
        ).where(t.kind == "spend")
    ).one()
    credit_by_kind = dict(
        conn.execute(
            select(t.kind, func.coalesce(func.sum(t.credit_delta), 0)).group_by(t.kind)
        ).all()
    )
    lot_rows = conn.execute(select(lots.c.id, lots.c.remaining, lots.c.original)).all()
    refund_rows = {r.id: r for r in conn.execute(select(refunds_table))}
    holding = dict(
        conn.execute(
            select(refunds_table.c.account_id, func.sum(refunds_table.c.amount))
            .where(refunds_table.c.status.in_(["pending", "approved"]))
            .group_by(refunds_table.c.account_id)
        ).all()
    )
    over = conn.execute(
        select(promotions_table.c.id, func.count(redemptions.c.id))
        .join(redemptions, redemptions.c.promotion_id == promotions_table.c.id)
        .group_by(promotions_table.c.id)
        .having(func.count(redemptions.c.id) > func.max(promotions_table.c.max_redemptions))
    ).all()
    return {
        "accounts": rows,
        "spend": (n_spend, spend_cash, spend_credit),
        "credit_by_kind": credit_by_kind,
        "lots": lot_rows,
        "refunds": refund_rows,
        "holding": holding,
        "over": over,
    }


def _check(bank: Bank) -> dict[str, Any]:
    book, db = bank.book, bank.db
    assert not book.failures, f"{len(book.failures)} failures:\n" + "\n".join(book.failures[:20])

    # Every event applied once, and only once.
    assert all(n == 1 for n in book.applied.values()), "an event was applied twice"
    # No deposit reversed twice.
    assert all(n == 1 for n in book.reversed_ids.values()), "a deposit was reversed twice"

    snap = db.read(_snapshot)
    rows, lot_rows, refund_rows = snap["accounts"], snap["lots"], snap["refunds"]
    n_spend, spend_cash, spend_credit = snap["spend"]
    credit_by_kind, holding, over = snap["credit_by_kind"], snap["holding"], snap["over"]

    assert n_spend == len(book.applied)
    assert -spend_cash == sum(book.cash_spent.values())
    assert -spend_credit == book.credit_spent
    assert book.credit_spent + sum(book.cash_spent.values()) + book.unfunded == book.spend_total

    # Money is conserved, account by account.
    for acct in bank.accounts:
        row = rows[acct]
        told = (
            book.deposited[acct]
            - book.reversed_[acct]
            - book.cash_spent[acct]
            - book.refunds_paid[acct]
        )
        assert told == row.cash_available + row.cash_held - row.debt, (
            f"{acct}: deposits {book.deposited[acct]} - reversals {book.reversed_[acct]} - "
            f"cash spent {book.cash_spent[acct]} - refunds paid {book.refunds_paid[acct]} "
            f"= {told}, but cash {row.cash_available} + held {row.cash_held} - debt {row.debt}"
        )
        assert min(row.cash_available, row.cash_held, row.debt) >= 0, row
        # No refund held twice: what is held is exactly the refunds still holding, as stored
        # and as the workers were told.
        assert row.cash_held == holding.get(acct, 0), acct
        told_held = sum(
            r["amount"]
            for r in book.refunds.values()
            if r["account_id"] == acct and RANK[_end(book.moves.get(r["id"], []))] < 2
        )
        assert row.cash_held == told_held, (acct, row.cash_held, told_held)

    # Credit is conserved: granted == remaining + used + expired + voided + forfeited.
    remaining = sum(r.remaining for r in lot_rows)
    voided = -credit_by_kind.get("void", 0)
    forfeited = -(credit_by_kind.get("forfeit", 0) + credit_by_kind.get("clawback", 0))
    assert sum(r.original for r in lot_rows) == book.credit_granted
    assert book.credit_expired == -credit_by_kind.get("expiry", 0)
    assert book.credit_granted == (
        remaining + book.credit_spent + book.credit_expired + voided + forfeited
    ), (
        f"granted {book.credit_granted} != remaining {remaining} + used {book.credit_spent} + "
        f"expired {book.credit_expired} + voided {voided} + forfeited {forfeited}"
    )
    assert all(0 <= r.remaining <= r.original for r in lot_rows)

    # Each refund took one path through its life, and is where that path ends.
    for refund_id, refund in book.refunds.items():
        moved = book.moves.get(refund_id, [])
        assert len(moved) == len(set(moved)), f"{refund_id} moved twice to one status: {moved}"
        assert frozenset(moved) in PATHS, f"{refund_id} moved along {moved}"
        assert refund_rows[refund_id].status == _end(moved), (refund_id, moved, refund)
    assert set(refund_rows) == set(book.refunds)

    assert not over, f"promotions over max_redemptions: {over}"
    violations = db.read(verify_ledger)
    assert not violations, violations

    ops = sum(len(v) for v in book.latency.values())
    return {
        "ops": ops,
        "events_applied": len(book.applied),
        "refunds": len(book.refunds),
        "refunds_paid": sum(book.refunds_paid.values()),
        "deposits": len(book.deposits),
        "reversals": sum(book.reversed_ids.values()),
        "lots": len(lot_rows),
        "credit_expired": book.credit_expired,
        "unfunded": book.unfunded,
        "outcomes": {f"{k}:{o}": n for (k, o), n in sorted(book.outcomes.items())},
    }


def test_the_bank_conserves_money_under_concurrent_mixed_operations(backend, database_url):
    workers = WORKERS[backend]
    seed = random.randrange(1 << 20)
    settings = Settings(database_url=database_url, refund_quiet_period_seconds=0)
    db = Database(settings)
    try:
        bank = _setup(db, seed)
        db.retries = 0
        start = threading.Barrier(workers + 1)
        threads = [
            threading.Thread(target=bank.worker, args=(n, start), name=f"bank-{n}", daemon=True)
            for n in range(workers)
        ]
        for th in threads:
            th.start()
        bank.deadline = time.monotonic() + DURATION
        start.wait()
        began = time.monotonic()
        for th in threads:
            th.join(timeout=DURATION + 120)
        elapsed = time.monotonic() - began
        hung = [th.name for th in threads if th.is_alive()]
        assert not hung, f"workers still running {elapsed:.0f} s after the end (a hang?): {hung}"
        figures = _check(bank)
    finally:
        db.dispose()

    report = {
        "backend": backend,
        "workers": workers,
        "accounts": ACCOUNTS,
        "seed": seed,
        "duration_s": round(elapsed, 2),
        "ops_per_s": round(figures["ops"] / elapsed, 1),
        "retries": db.retries,
        "p99_ms": {k: round(_p99(v) * 1_000, 2) for k, v in sorted(bank.book.latency.items())},
        "ops_by_kind": {k: len(v) for k, v in sorted(bank.book.latency.items())},
        "measured_at": datetime.now(UTC).isoformat(),
        **figures,
    }
    print(f"\n[bank {backend}] {json.dumps(report, indent=1)}")
    if SOAK:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        (RESULTS_DIR / f"bank-{backend}.json").write_text(json.dumps(report, indent=2) + "\n")
