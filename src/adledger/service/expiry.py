"""The expiry run: credit lots past their `expires_at` lose their remainder to breakage.

The same run lapses "spend X get Y" and deposit-bonus redemptions whose window has ended
without earning their reward, and releases what they reserved of their promotion's budget.

One run finds the due lots through the partial index on active lots' `expires_at` (so its work
grows with the lots that are due, not with every lot ever granted), locks their accounts in id
order, re-reads those lots by primary key under the lock (spend or a void may have closed them
meanwhile) and closes them with one `expiry` transaction per lot, written in batched statements.
A lot that is already empty just changes status. A second run finds nothing left to do.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any, TypedDict

from sqlalchemy import ColumnClause, Select, literal_column, select, update

from adledger.domain import ledger
from adledger.domain.errors import AsOfInFuture
from adledger.domain.ids import new_ids
from adledger.domain.lots import LotStatus
from adledger.service import promotions
from adledger.service.uow import UnitOfWork
from adledger.storage.postings import Posting, post
from adledger.storage.tables import lots

# Accounts locked and closed per step; lock_accounts itself reads 500 ids a statement.
_ACCOUNTS_PER_STEP = 500
_LOTS_PER_STATEMENT = 500
# Written as a literal, not a bound parameter, so every planner can match the partial index.
_ACTIVE: ColumnClause[str] = literal_column(f"'{LotStatus.ACTIVE.value}'")


class ExpiryResult(TypedDict):
    expired_lots: int
    expired_amounts: dict[str, int]
    lapsed_redemptions: int


def run_expiry(uow: UnitOfWork, as_of: datetime | None = None) -> ExpiryResult:
    """Expire every active lot with `expires_at <= as_of` (default: now; never the future)."""
    cutoff = uow.now if as_of is None else as_of
    if cutoff > uow.now:
        raise AsOfInFuture(
            f"as_of {_stamp(cutoff)} is after now ({_stamp(uow.now)}); "
            "credit can only expire up to the present"
        )
    due_lots: dict[str, list[str]] = defaultdict(list)  # account id → its due lots' ids
    for lot_id, account_id in uow.conn.execute(due_lots_query(cutoff)):
        due_lots[account_id].append(lot_id)
    due_accounts = sorted(set(due_lots) | promotions.due_redemption_accounts(uow, cutoff))
    count = lapsed = 0
    amounts: dict[str, int] = defaultdict(int)
    # Steps go through the accounts in ascending id order, so locks are taken in id order.
    for start in range(0, len(due_accounts), _ACCOUNTS_PER_STEP):
        step = due_accounts[start : start + _ACCOUNTS_PER_STEP]
        lot_ids = sorted(lot_id for a in step for lot_id in due_lots.get(a, ()))
        for currency, amount, n in _expire_step(uow, step, lot_ids, cutoff):
            count += n
            amounts[currency] += amount
        lapsed += promotions.lapse_due(uow, step, cutoff)
    return {
        "expired_lots": count,
        "expired_amounts": dict(sorted(amounts.items())),
        "lapsed_redemptions": lapsed,
    }


def due_lots_query(cutoff: datetime) -> Select[str, str]:
    """(id, account id) of the active lots due by `cutoff`, via the partial index."""
    return select(lots.c.id, lots.c.account_id).where(
        lots.c.status == _ACTIVE, lots.c.expires_at <= cutoff
    )


def _expire_step(
    uow: UnitOfWork, account_ids: list[str], lot_ids: list[str], cutoff: datetime
) -> list[tuple[str, int, int]]:
    """Lock `account_ids`, then close those of `lot_ids` (their due lots, found before the
    locks) that are still active and due; (currency, amount, lots) for each lot closed.

    The lots are re-read under the locks by primary key: spend or a void may have closed them
    meanwhile. By key, not by account: a step's cost follows its due lots, not all its lots."""
    account_rows = uow.lock_accounts(account_ids)
    due: list[Any] = []
    for start in range(0, len(lot_ids), _LOTS_PER_STATEMENT):
        chunk = lot_ids[start : start + _LOTS_PER_STATEMENT]
        due.extend(
            uow.conn.execute(
                select(lots.c.id, lots.c.account_id, lots.c.remaining, lots.c.expires_at).where(
                    lots.c.id.in_(chunk), lots.c.status == _ACTIVE, lots.c.expires_at <= cutoff
                )
            ).all()
        )
    if not due:
        return []
    due.sort(key=lambda lot: lot.id)
    with_remainder = [lot for lot in due if lot.remaining > 0]
    txn_ids = new_ids("txn", len(with_remainder))
    post(
        uow.conn,
        [
            _closing(uow, txn_id, lot, account_rows[lot.account_id].currency)
            for txn_id, lot in zip(txn_ids, with_remainder, strict=True)
        ],
    )
    # The same lots as `due`: every writer of a lot holds its account's lock, and we hold it.
    closed = [lot.id for lot in due]
    for start in range(0, len(closed), _LOTS_PER_STATEMENT):
        uow.conn.execute(
            update(lots)
            .where(lots.c.id.in_(closed[start : start + _LOTS_PER_STATEMENT]))
            .values(status=LotStatus.EXPIRED.value, closed_at=uow.now)
        )
    return [(account_rows[lot.account_id].currency, lot.remaining, 1) for lot in due]


def _closing(uow: UnitOfWork, txn_id: str, lot: Any, currency: str) -> Posting:
    return Posting(
        id=txn_id,
        account_id=lot.account_id,
        currency=currency,
        created_at=uow.now,
        txn=ledger.lot_closing(
            ledger.Kind.EXPIRY,
            lot.id,
            lot.remaining,
            f"Credit expired unspent at {_stamp(lot.expires_at)}",
        ),
        refs={"lot_id": lot.id},
    )


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
