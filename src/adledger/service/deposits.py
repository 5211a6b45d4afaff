"""Deposits of prepaid funds: the payment service's confirmation of a captured payment."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from sqlalchemy import select

from adledger.domain import ledger
from adledger.domain.errors import AccountClosed, DepositNotFound
from adledger.domain.ids import new_id
from adledger.domain.money import check_amount
from adledger.service.accounts import lock_account
from adledger.service.uow import UnitOfWork
from adledger.storage.postings import Posting, post
from adledger.storage.tables import deposits


def deposit_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "account_id": row.account_id,
        "amount": row.amount,
        "tax": row.tax,
        "payment_reference": row.payment_reference,
        "created_at": row.created_at,
    }


def create_deposit(
    uow: UnitOfWork,
    account_id: str,
    *,
    amount: int,
    payment_reference: str,
    tax: int = 0,
    payment_fingerprint: str | None = None,
) -> dict[str, Any]:
    """Cash grows by `amount`; `tax` is recorded beside it, never in the balance."""
    check_amount(amount)
    check_amount(tax, allow_zero=True)
    account = lock_account(uow, account_id)
    if account.status == "closed":
        raise AccountClosed(f"account {account_id} is closed and takes no deposits")
    row = {
        "id": new_id("dep"),
        "account_id": account_id,
        "amount": amount,
        "tax": tax,
        "payment_reference": payment_reference,
        "payment_fingerprint": payment_fingerprint,
        "created_at": uow.now,
    }
    uow.conn.execute(deposits.insert().values(**row))
    post(
        uow.conn,
        [
            Posting(
                id=new_id("txn"),
                account_id=account_id,
                currency=account.currency,
                created_at=uow.now,
                txn=ledger.deposit(amount, tax, payment_reference),
                refs={"deposit_id": row["id"]},
            )
        ],
    )
    return deposit_view(SimpleNamespace(**row))


def get_deposit(uow: UnitOfWork, deposit_id: str, *, business_id: str | None = None) -> Any:
    row = uow.conn.execute(select(deposits).where(deposits.c.id == deposit_id)).first()
    if row is None:
        raise DepositNotFound(f"no deposit {deposit_id}")
    return row
