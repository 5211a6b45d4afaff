"""Promotional credit lots: grant, list, void."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select, update

from adledger.domain import ledger
from adledger.domain.errors import (
    AccountClosed,
    InvalidInput,
    InvalidTime,
    LotNotActive,
    LotNotFound,
)
from adledger.domain.ids import new_id
from adledger.domain.lots import SOURCES, LotStatus
from adledger.domain.money import check_amount
from adledger.service.accounts import load_account, lock_account
from adledger.service.history import fitted
from adledger.service.pagination import Page, paginate
from adledger.service.uow import UnitOfWork
from adledger.storage.postings import Posting, post
from adledger.storage.tables import lots


def lot_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "account_id": row.account_id,
        "source": row.source,
        "original": row.original,
        "remaining": row.remaining,
        "effective_at": row.effective_at,
        "expires_at": row.expires_at,
        "priority": row.priority,
        "campaign_id": row.campaign_id,
        "status": row.status,
        "created_at": row.created_at,
    }


def grant_credit(
    uow: UnitOfWork,
    account_id: str,
    *,
    amount: int,
    expires_at: datetime,
    reason: str,
    effective_at: datetime | None = None,
    priority: int = 50,
    campaign_id: str | None = None,
    source: str = "manual",
    promotion_id: str | None = None,
    deposit_id: str | None = None,
) -> dict[str, Any]:
    """Grant a lot of promotional credit. It funds spend that occurred in its window only."""
    check_amount(amount)
    if source not in SOURCES:
        raise InvalidInput(f"source must be one of {', '.join(SOURCES)}")
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 100:
        raise InvalidInput("priority must be an integer from 0 to 100", code="invalid_priority")
    effective = effective_at or uow.now
    if expires_at <= effective:
        raise InvalidTime("expires_at must be after effective_at")
    account = lock_account(uow, account_id)
    if account.status == "closed":
        raise AccountClosed(f"account {account_id} is closed and takes no credit")
    lot_id = new_id("lot")
    row = {
        "id": lot_id,
        "account_id": account_id,
        "source": source,
        "original": amount,
        "remaining": 0,
        "effective_at": effective,
        "expires_at": expires_at,
        "priority": priority,
        "campaign_id": campaign_id,
        "status": LotStatus.ACTIVE.value,
        "reason": reason,
        "created_at": uow.now,
        "promotion_id": promotion_id,
        "deposit_id": deposit_id,
    }
    uow.conn.execute(lots.insert().values(**row))
    post(
        uow.conn,
        [
            Posting(
                id=new_id("txn"),
                account_id=account_id,
                currency=account.currency,
                created_at=uow.now,
                txn=fitted(ledger.credit_grant(lot_id, amount, reason)),
                refs={"deposit_id": deposit_id},
            )
        ],
    )
    return lot_view(SimpleNamespace(**(row | {"remaining": amount})))


def list_credits(
    uow: UnitOfWork,
    account_id: str,
    *,
    status: str | None = None,
    business_id: str | None = None,
    limit: int = 50,
    starting_after: str | None = None,
) -> Page:
    load_account(uow, account_id, business_id=business_id)
    query = select(lots).where(lots.c.account_id == account_id)
    if status is not None:
        if status not in {s.value for s in LotStatus}:
            raise InvalidInput(f"unknown lot status {status!r}", code="invalid_status")
        query = query.where(lots.c.status == status)
    return paginate(uow, query, lots.c.id, limit, starting_after, lot_view)


def close_lot(
    uow: UnitOfWork,
    lot: Any,
    kind: ledger.Kind,
    status: LotStatus,
    why: str,
    *,
    refs: dict[str, Any] | None = None,
) -> None:
    """Take a lot's remainder out of circulation (expiry, void, forfeit, clawback).

    The caller holds the lock of the lot's account.
    """
    account = load_account(uow, lot.account_id)
    if lot.remaining > 0:
        post(
            uow.conn,
            [
                Posting(
                    id=new_id("txn"),
                    account_id=lot.account_id,
                    currency=account.currency,
                    created_at=uow.now,
                    txn=fitted(ledger.lot_closing(kind, lot.id, lot.remaining, why)),
                    refs={"lot_id": lot.id, **(refs or {})},
                )
            ],
        )
    uow.conn.execute(
        update(lots).where(lots.c.id == lot.id).values(status=status.value, closed_at=uow.now)
    )


def void_credit(uow: UnitOfWork, lot_id: str, *, reason: str) -> dict[str, Any]:
    """The unspent remainder is gone, irreversibly; what was spent stays spent."""
    found = uow.conn.execute(select(lots.c.account_id).where(lots.c.id == lot_id)).first()
    if found is None:
        raise LotNotFound(f"no credit lot {lot_id}")
    lock_account(uow, found.account_id)
    lot = uow.conn.execute(select(lots).where(lots.c.id == lot_id)).one()
    if lot.status != LotStatus.ACTIVE:
        raise LotNotActive(f"lot {lot_id} is {lot.status}; only an active lot can be voided")
    close_lot(uow, lot, ledger.Kind.VOID, LotStatus.VOIDED, f"Credit voided: {reason}")
    return lot_view(lot) | {"remaining": 0, "status": LotStatus.VOIDED.value}
