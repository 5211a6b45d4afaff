"""Spend ingestion: the hot path. A batch of events is one unit of work.

For a batch the service (1) settles repeats of an `event_id` inside the batch, (2) locks each
touched account once, in id order, (3) finds events already recorded (duplicates and conflicts),
(4) loads the accounts' active lots once, (5) funds each event in the order sent with the pure
funding order of `domain.lots`, and (6) writes every transaction, entry and balance change in a
handful of batched statements through `storage.postings.post`. A single event is a batch of one.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select, update

from adledger.domain import ledger
from adledger.domain.ids import new_ids
from adledger.domain.lots import Funding, LotBalance, apply_funding, fund, in_draw_order
from adledger.service import promotions
from adledger.service.uow import UnitOfWork
from adledger.storage.postings import Posting, post
from adledger.storage.tables import EPOCH, accounts, entries, lots, to_us, transactions

MAX_EVENTS = 10_000
FUTURE_TOLERANCE = timedelta(minutes=5)
_CHUNK = 2_000


class SpendEvent(NamedTuple):
    """One delivery the ad server reports. A tuple: a call brings up to 10,000 of them."""

    event_id: str
    account_id: str
    amount: int
    occurred_at: datetime
    campaign_id: str | None = None
    currency: str | None = None

    @property
    def fingerprint(self) -> str:
        """What makes a repeat "the same event": every field the ad server sent."""
        raw = "\x1f".join(
            (
                self.account_id,
                str(self.amount),
                str(to_us(self.occurred_at)),
                self.campaign_id or "",
                self.currency or "",
            )
        )
        return hashlib.blake2b(raw.encode(), digest_size=16).hexdigest()


def _applied(event_id: str, funding: Funding, status: str = "applied") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "status": status,
        "credit_used": funding.credit_used,
        "cash_used": funding.cash_used,
        "unfunded": funding.unfunded,
        "lots": [{"lot_id": lot_id, "amount": amount} for lot_id, amount in funding.lots],
    }


def _rejected(event_id: str, code: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "status": "rejected",
        "code": code,
        "credit_used": 0,
        "cash_used": 0,
        "unfunded": 0,
        "lots": [],
    }


def post_spend(uow: UnitOfWork, events: list[SpendEvent]) -> list[dict[str, Any]]:
    """Record a batch of spend events; one result per event, in the order sent."""
    n = len(events)
    results: list[dict[str, Any] | None] = [None] * n
    first_index: dict[str, int] = {}
    repeats: list[int] = []
    horizon = uow.now + FUTURE_TOLERANCE
    for i, ev in enumerate(events):
        if ev.event_id in first_index:
            repeats.append(i)
        else:
            first_index[ev.event_id] = i
            if ev.occurred_at > horizon:
                results[i] = _rejected(ev.event_id, "occurred_in_future")

    candidates = [i for i in first_index.values() if results[i] is None]
    account_rows = uow.lock_accounts([events[i].account_id for i in candidates])
    fingerprints = {i: events[i].fingerprint for i in candidates}

    # Events recorded by earlier calls: duplicates if identical, conflicts if not.
    recorded = _recorded(uow, [events[i].event_id for i in candidates])
    if recorded:
        earlier = _earlier_results(uow, [r[0] for r in recorded.values()])
        for i in candidates:
            hit = recorded.get(events[i].event_id)
            if hit is not None:
                txn_id, fp = hit
                results[i] = (
                    earlier[txn_id] | {"event_id": events[i].event_id, "status": "duplicate"}
                    if fp == fingerprints[i]
                    else _rejected(events[i].event_id, "event_id_conflict")
                )

    to_apply: list[int] = []
    for i in candidates:
        if results[i] is not None:
            continue
        ev = events[i]
        acct = account_rows.get(ev.account_id)
        if acct is None:
            results[i] = _rejected(ev.event_id, "account_not_found")
        elif acct.status == "closed":
            results[i] = _rejected(ev.event_id, "account_closed")
        elif ev.currency is not None and ev.currency != acct.currency:
            results[i] = _rejected(ev.event_id, "currency_mismatch")
        else:
            to_apply.append(i)

    if to_apply:
        _apply(uow, events, to_apply, account_rows, fingerprints, results)

    for i in repeats:
        ev = events[i]
        j = first_index[ev.event_id]
        first = results[j]
        assert first is not None
        if ev.fingerprint != events[j].fingerprint:
            results[i] = _rejected(ev.event_id, "event_id_conflict")
        elif first["status"] == "rejected":
            results[i] = first
        else:
            results[i] = first | {"status": "duplicate"}
    return results  # type: ignore[return-value]


def _apply(
    uow: UnitOfWork,
    events: list[SpendEvent],
    to_apply: list[int],
    account_rows: dict[str, Any],
    fingerprints: dict[int, str],
    results: list[dict[str, Any] | None],
) -> None:
    touched = sorted({events[i].account_id for i in to_apply})
    lots_by_account = {a: in_draw_order(ls) for a, ls in _active_lots(uow, touched).items()}
    cash = {a: account_rows[a].cash_available for a in touched}
    lot_index = {lot.id: lot for ls in lots_by_account.values() for lot in ls}
    txn_ids = new_ids("txn", len(to_apply))
    postings: list[Posting] = []
    thresholds = promotions.ThresholdTracker(uow, touched)

    def granted(account_id: str) -> Callable[[LotBalance], None]:
        def add(lot: LotBalance) -> None:  # a reward lot funds the rest of the batch too
            lots_by_account[account_id] = in_draw_order([*lots_by_account[account_id], lot])
            lot_index[lot.id] = lot

        return add

    for txn_id, i in zip(txn_ids, to_apply, strict=True):
        ev = events[i]
        funding = fund(
            ev.amount,
            ev.occurred_at,
            ev.campaign_id,
            lots_by_account[ev.account_id],
            cash[ev.account_id],
            ordered=True,
        )
        apply_funding(funding, lot_index)
        cash[ev.account_id] -= funding.cash_used
        postings.append(
            Posting(
                id=txn_id,
                account_id=ev.account_id,
                currency=account_rows[ev.account_id].currency,
                created_at=uow.now,
                txn=ledger.spend(funding, ev.event_id),
                refs={
                    "event_id": ev.event_id,
                    "event_hash": fingerprints[i],
                    "occurred_at": ev.occurred_at,
                    "campaign_id": ev.campaign_id,
                },
            )
        )
        results[i] = _applied(ev.event_id, funding)
        if funding.cash_used:  # only cash counts toward a threshold
            thresholds.count(
                account_rows[ev.account_id],
                ev.occurred_at,
                funding.cash_used,
                granted(ev.account_id),
            )
    thresholds.finish()
    post(uow.conn, postings)
    used = [{"l_id": lot.id} for lot in lot_index.values() if lot.remaining == 0]
    if used:
        uow.conn.execute(
            update(lots)
            .where(lots.c.id == bindparam("l_id"))
            .values(status="used", closed_at=to_us(uow.now)),
            used,
        )
    uow.conn.execute(
        update(accounts).where(accounts.c.id.in_(touched)).values(last_spend_at=uow.now)
    )


def _recorded(uow: UnitOfWork, event_ids: list[str]) -> dict[str, tuple[str, str]]:
    """The events of `event_ids` recorded before: event id → (transaction id, fingerprint).
    Read with the driver's own cursor: every spend call asks this of all its events."""
    found: dict[str, tuple[str, str]] = {}
    for condition, params in _where_in(uow, "event_id", event_ids):
        sql = f"SELECT event_id, id, event_hash FROM {transactions.name} WHERE {condition}"
        for event_id, txn_id, fp in uow.conn.exec_driver_sql(sql, params):
            found[event_id] = (txn_id, fp)
    return found


def _where_in(
    uow: UnitOfWork, column: str, values: list[str]
) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """`column IN values` as (SQL condition, parameters), in pieces the driver takes well: one
    `= ANY(array)` on PostgreSQL (one parameter, not thousands for psycopg to parse); chunks of
    `IN (?, …)` on SQLite."""
    if not uow.sqlite:
        yield f"{column} = ANY(%s)", (values,)
        return
    for start in range(0, len(values), _CHUNK):
        chunk = values[start : start + _CHUNK]
        yield f"{column} IN ({', '.join('?' for _ in chunk)})", tuple(chunk)


def _earlier_results(uow: UnitOfWork, txn_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Rebuild the first result of recorded spend from its entries."""
    parts: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"credit_used": 0, "cash_used": 0, "unfunded": 0, "lots": []}
    )
    e = entries.c
    for start in range(0, len(txn_ids), _CHUNK):
        chunk = txn_ids[start : start + _CHUNK]
        query = (
            select(e.txn_id, e.book, e.lot_id, e.amount)
            .where(e.txn_id.in_(chunk))
            .order_by(e.txn_id, e.id)
        )
        for txn_id, book, lot_id, amount in uow.conn.execute(query):
            part = parts[txn_id]
            if book == ledger.Book.CREDIT:
                part["credit_used"] -= amount
                part["lots"].append({"lot_id": lot_id, "amount": -amount})
            elif book == ledger.Book.CASH:
                part["cash_used"] -= amount
            elif book == ledger.Book.OVERDELIVERY:
                part["unfunded"] -= amount
    return dict(parts)


def _active_lots(uow: UnitOfWork, account_ids: list[str]) -> dict[str, list[LotBalance]]:
    """The active lots of `account_ids`, read with the driver's own cursor (no per-row work by
    SQLAlchemy: a batch may read tens of thousands of lots)."""
    found: dict[str, list[LotBalance]] = {a: [] for a in account_ids}
    for condition, params in _where_in(uow, "account_id", account_ids):
        sql = (
            "SELECT id, account_id, remaining, effective_at, expires_at, priority, campaign_id, "
            f"created_at FROM {lots.name} WHERE status = 'active' AND {condition}"
        )
        rows = uow.conn.exec_driver_sql(sql, params)
        for lot_id, account_id, remaining, effective, expires, priority, campaign, created in rows:
            found[account_id].append(
                LotBalance(
                    id=lot_id,
                    remaining=remaining,
                    effective_at=EPOCH + timedelta(microseconds=effective),
                    expires_at=EPOCH + timedelta(microseconds=expires),
                    priority=priority,
                    campaign_id=campaign,
                    created_at=EPOCH + timedelta(microseconds=created),
                )
            )
    return found
