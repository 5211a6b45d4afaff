"""Deposits of prepaid funds, and their reversal (a chargeback or a failed payment).

A deposit is the payment service's confirmation of a captured payment: cash grows by `amount`
(tax is recorded beside it, never in the balance). If the account owes money after a reversal,
the deposit pays the debt off first, and an account suspended for that debt is active again once
nothing is owed. A qualifying deposit also earns the account's earning deposit bonuses.

A reversal takes the deposit back out of cash — into debt if cash can't cover it, and the account
is then suspended — and claws back the unspent remainder of the bonus credit the deposit earned.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from sqlalchemy import select, update

from adledger.domain import ledger
from adledger.domain.errors import AccountClosed, DepositAlreadyReversed, DepositNotFound
from adledger.domain.ids import new_id
from adledger.domain.lots import LotStatus
from adledger.domain.money import check_amount
from adledger.service import promotions
from adledger.service.accounts import load_account, lock_account
from adledger.service.credits import close_lot
from adledger.service.history import fitted
from adledger.service.pagination import Page, paginate
from adledger.service.uow import UnitOfWork
from adledger.storage.postings import Posting, post
from adledger.storage.tables import accounts, deposits, lots

DEBT = "debt"


def deposit_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "account_id": row.account_id,
        "amount": row.amount,
        "tax": row.tax,
        "payment_reference": row.payment_reference,
        "created_at": row.created_at,
        "reversed_at": row.reversed_at,
        "reversal_reason": row.reversal_reason,
    }


def _post(uow: UnitOfWork, account: Any, txn: ledger.Transaction, deposit_id: str) -> None:
    posting = Posting(
        id=new_id("txn"),
        account_id=account.id,
        currency=account.currency,
        created_at=uow.now,
        txn=fitted(txn),
        refs={"deposit_id": deposit_id},
    )
    post(uow.conn, [posting])


def create_deposit(
    uow: UnitOfWork,
    account_id: str,
    *,
    amount: int,
    payment_reference: str,
    tax: int = 0,
    payment_fingerprint: str | None = None,
) -> dict[str, Any]:
    """Cash grows by `amount` (after paying off any debt); `tax` is recorded beside it."""
    check_amount(amount)
    check_amount(tax, allow_zero=True)
    account = lock_account(uow, account_id)
    if account.status == "closed":
        raise AccountClosed(f"account {account_id} is closed and takes no deposits")
    deposit_id = new_id("dep")
    row = {
        "id": deposit_id,
        "account_id": account_id,
        "amount": amount,
        "tax": tax,
        "payment_reference": payment_reference,
        "payment_fingerprint": payment_fingerprint,
        "created_at": uow.now,
        "reversed_at": None,
        "reversal_reason": None,
    }
    uow.conn.execute(deposits.insert().values(**row))
    txn = ledger.deposit(amount, tax, payment_reference, debt=account.debt)
    _post(uow, account, txn, deposit_id)
    if account.debt and amount >= account.debt and account.suspended_reason == DEBT:
        uow.conn.execute(
            update(accounts)
            .where(accounts.c.id == account_id)
            .values(status="active", suspended_reason=None)
        )
    promotions.on_deposit(uow, account, deposit_id, amount)
    return deposit_view(SimpleNamespace(**row))


def _find(uow: UnitOfWork, deposit_id: str, business_id: str | None) -> Any:
    row = uow.conn.execute(
        select(deposits, accounts.c.business_id)
        .join(accounts, accounts.c.id == deposits.c.account_id)
        .where(deposits.c.id == deposit_id)
    ).first()
    if row is None or (business_id is not None and row.business_id != business_id):
        raise DepositNotFound(f"no deposit {deposit_id}")
    return row


def get_deposit(
    uow: UnitOfWork, deposit_id: str, *, business_id: str | None = None
) -> dict[str, Any]:
    return deposit_view(_find(uow, deposit_id, business_id))


def list_deposits(
    uow: UnitOfWork,
    account_id: str,
    *,
    business_id: str | None = None,
    limit: int = 50,
    starting_after: str | None = None,
) -> Page:
    """One account's deposits, newest first."""
    load_account(uow, account_id, business_id=business_id)
    query = select(deposits).where(deposits.c.account_id == account_id)
    return paginate(uow, query, deposits.c.id, limit, starting_after, deposit_view)


def reverse_deposit(uow: UnitOfWork, deposit_id: str, *, reason: str) -> dict[str, Any]:
    """Take a deposit back (chargeback, failed payment). Once only: `DepositAlreadyReversed`.

    Cash falls by the deposit's amount; the part cash can't cover becomes debt and the account is
    suspended until a deposit covers it. Its tax goes back too. The unspent remainder of every
    deposit-bonus lot the deposit earned is clawed back (`clawback`, lot `forfeited`); what was
    spent of it stays spent.
    """
    found = _find(uow, deposit_id, None)
    account = lock_account(uow, found.account_id)
    dep = uow.conn.execute(select(deposits).where(deposits.c.id == deposit_id)).one()
    if dep.reversed_at is not None:
        raise DepositAlreadyReversed(
            f"deposit {deposit_id} was reversed at {dep.reversed_at.isoformat()}"
        )
    uow.conn.execute(
        update(deposits)
        .where(deposits.c.id == deposit_id)
        .values(reversed_at=uow.now, reversal_reason=reason)
    )
    txn = ledger.deposit_reversal(
        dep.amount, dep.tax, account.cash_available, dep.payment_reference, reason
    )
    _post(uow, account, txn, deposit_id)
    if dep.amount > account.cash_available and account.status == "active":
        uow.conn.execute(
            update(accounts)
            .where(accounts.c.id == account.id)
            .values(status="suspended", suspended_reason=DEBT)
        )
    bonus_lots = uow.conn.execute(
        select(lots)
        .where(
            lots.c.deposit_id == deposit_id,
            lots.c.source == "deposit_bonus",
            lots.c.status == LotStatus.ACTIVE.value,
        )
        .order_by(lots.c.id)
    ).all()
    for lot in bonus_lots:
        close_lot(
            uow,
            lot,
            ledger.Kind.CLAWBACK,
            LotStatus.FORFEITED,
            f"Deposit bonus clawed back: deposit {deposit_id} reversed",
            refs={"deposit_id": deposit_id},
        )
    return deposit_view(
        SimpleNamespace(**(dep._asdict() | {"reversed_at": uow.now, "reversal_reason": reason}))
    )
