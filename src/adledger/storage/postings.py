"""The one writer of ledger rows and stored balances.

`post` inserts transactions and their entries and moves the stored balances (accounts' cash, held
and debt; lots' remaining) by exactly the sum of those entries, in a few batched statements. No
other code changes a balance, so "every stored balance equals the sum of its entries" holds by
construction, and `adledger verify` checks it anyway.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, update

from adledger.domain.ledger import Book, Memo, Transaction
from adledger.storage.tables import accounts, entries, lots, to_us, transactions


@dataclass(slots=True)
class Posting:
    """One transaction about to be written, with the references it carries."""

    id: str
    account_id: str
    currency: str
    created_at: datetime
    txn: Transaction | Memo
    refs: dict[str, Any] = field(default_factory=dict)


_ACCOUNT_DELTA = (
    update(accounts)
    .where(accounts.c.id == bindparam("a_id"))
    .values(
        cash_available=accounts.c.cash_available + bindparam("d_cash"),
        cash_held=accounts.c.cash_held + bindparam("d_held"),
        debt=accounts.c.debt - bindparam("d_debt"),
    )
)
_LOT_DELTA = (
    update(lots)
    .where(lots.c.id == bindparam("l_id"))
    .values(remaining=lots.c.remaining + bindparam("d_remaining"))
)

_REF_COLUMNS = (
    "lot_id",
    "event_id",
    "event_hash",
    "occurred_at",
    "campaign_id",
    "refund_id",
    "deposit_id",
)


def post(conn: Connection, postings: list[Posting]) -> None:
    """Write `postings` and apply their legs to the stored balances, in batched statements."""
    if not postings:
        return
    txn_rows = []
    entry_rows = []
    account_deltas: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    lot_deltas: dict[str, int] = defaultdict(int)
    for p in postings:
        txn = p.txn
        row: dict[str, Any] = {
            "id": p.id,
            "account_id": p.account_id,
            "kind": txn.kind.value,
            "currency": p.currency,
            "created_at": to_us(p.created_at),
            "cash_delta": txn.cash_delta,
            "credit_delta": txn.credit_delta,
            "description": txn.description,
        }
        for name in _REF_COLUMNS:
            value = p.refs.get(name)
            row[name] = to_us(value) if isinstance(value, datetime) else value
        if row["lot_id"] is None:
            row["lot_id"] = txn.lot_id
        txn_rows.append(row)
        delta = account_deltas[p.account_id]
        for leg in txn.legs:
            entry_rows.append(
                {
                    "txn_id": p.id,
                    "account_id": p.account_id,
                    "lot_id": leg.lot_id,
                    "book": leg.book.value,
                    "amount": leg.amount,
                }
            )
            if leg.book is Book.CASH:
                delta[0] += leg.amount
            elif leg.book is Book.HELD:
                delta[1] += leg.amount
            elif leg.book is Book.DEBT:
                delta[2] += leg.amount
            elif leg.book is Book.CREDIT:
                assert leg.lot_id is not None
                lot_deltas[leg.lot_id] += leg.amount
    conn.execute(transactions.insert(), txn_rows)
    if entry_rows:
        conn.execute(entries.insert(), entry_rows)
    account_params = [
        {"a_id": a, "d_cash": d[0], "d_held": d[1], "d_debt": d[2]}
        for a, d in sorted(account_deltas.items())
        if any(d)
    ]
    if account_params:
        conn.execute(_ACCOUNT_DELTA, account_params)
    lot_params = [{"l_id": k, "d_remaining": v} for k, v in sorted(lot_deltas.items()) if v]
    if lot_params:
        conn.execute(_LOT_DELTA, lot_params)
