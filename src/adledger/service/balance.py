"""An account's balance, explained, and withdrawal requests (always refused).

Balances are read from their stored columns (accounts' cash, held and debt; lots' remaining) in
one statement, so a balance read costs the same however long the history, and what it shows is
one consistent instant even while spend is being posted.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from sqlalchemy import and_, bindparam, func, select

from adledger.domain.errors import AccountNotFound, CreditNotWithdrawable
from adledger.domain.explain import (
    BalanceFacts,
    LotFacts,
    explain_balance,
    explain_withdrawal_refusal,
)
from adledger.domain.money import check_amount
from adledger.domain.refunds import HOLDING
from adledger.service.credits import lot_view
from adledger.service.refunds import refund_block, refunds_open_at
from adledger.service.uow import UnitOfWork
from adledger.storage.tables import accounts, lots, refunds

_LOT_COLUMNS = (
    "id",
    "account_id",
    "source",
    "original",
    "remaining",
    "effective_at",
    "expires_at",
    "priority",
    "campaign_id",
    "status",
    "created_at",
)


def _load_statement() -> Any:
    holding = (
        select(func.count())
        .where(
            refunds.c.account_id == accounts.c.id,
            refunds.c.status.in_([s.value for s in HOLDING]),
        )
        .scalar_subquery()
    )
    return (
        select(
            accounts,
            holding.label("refunds_in_progress"),
            *(lots.c[name].label(f"lot_{name}") for name in _LOT_COLUMNS),
        )
        .select_from(
            accounts.outerjoin(
                lots, and_(lots.c.account_id == accounts.c.id, lots.c.status == "active")
            )
        )
        .where(accounts.c.id == bindparam("account_id"))
        .order_by(lots.c.expires_at, lots.c.id)
    )


# Built once: making the statement (and its cache key) cost more than running it, per read.
_LOAD = _load_statement()


def _load(uow: UnitOfWork, account_id: str, business_id: str | None) -> tuple[Any, list[Any], int]:
    """The account row, its active lots and its count of refunds holding cash, in one statement.

    `AccountNotFound` if the account is missing or outside `business_id` (when given).
    """
    rows = uow.conn.execute(_LOAD, {"account_id": account_id}).all()
    if not rows or (business_id is not None and rows[0].business_id != business_id):
        raise AccountNotFound(f"no account {account_id}")
    active = [
        SimpleNamespace(**{name: getattr(r, f"lot_{name}") for name in _LOT_COLUMNS})
        for r in rows
        if r.lot_id is not None
    ]
    return rows[0], active, int(rows[0].refunds_in_progress)


def _facts(uow: UnitOfWork, account: Any, active: list[Any], in_progress: int) -> BalanceFacts:
    now = uow.now
    quiet = uow.settings.refund_quiet_period_seconds
    block = refund_block(account, now, quiet)
    return BalanceFacts(
        currency=account.currency,
        timezone=account.timezone,
        as_of=now,
        status=account.status,
        cash_available=account.cash_available,
        cash_held=account.cash_held,
        debt=account.debt,
        credit_available=sum(
            lot.remaining for lot in active if lot.effective_at <= now < lot.expires_at
        ),
        refundable=0 if block is not None else account.cash_available,
        lots=tuple(
            LotFacts(lot.remaining, lot.effective_at, lot.expires_at, lot.campaign_id, lot.source)
            for lot in active
        ),
        refunds_in_progress=in_progress,
        block=block,
        last_spend_at=account.last_spend_at,
        refunds_open_at=refunds_open_at(account, quiet),
        refund_closes_account=uow.settings.refund_closes_account,
    )


def get_balance(
    uow: UnitOfWork, account_id: str, *, business_id: str | None = None
) -> dict[str, Any]:
    """The account's balance now, with a plain-English explanation.

    `credit.available` counts the active lots whose window contains now; `credit.lots` lists every
    active lot (also those not yet effective). `refundable` is what a refund request could take
    now: 0 while the account is closed, suspended, in debt or within the quiet period after spend.
    `withdrawable` is always 0. Raises `AccountNotFound` (missing, or outside `business_id`).
    """
    account, active, in_progress = _load(uow, account_id, business_id)
    facts = _facts(uow, account, active, in_progress)
    return {
        "account_id": account.id,
        "currency": account.currency,
        "as_of": facts.as_of,
        "cash": {
            "available": facts.cash_available,
            "held": facts.cash_held,
            "debt": facts.debt,
        },
        "credit": {
            "available": facts.credit_available,
            "lots": [lot_view(lot) for lot in active],
        },
        "spendable": facts.spendable,
        "refundable": facts.refundable,
        "withdrawable": 0,
        "depleted": facts.spendable == 0,
        "explanation": explain_balance(facts),
    }


def request_withdrawal(
    uow: UnitOfWork, account_id: str, *, amount: int, business_id: str | None = None
) -> dict[str, Any]:
    """Always refused: raises `CreditNotWithdrawable` (409 `withdrawal_not_supported`) whose detail
    explains with the account's numbers, carrying `refundable` and `credit_available`. Nothing
    changes. Raises `InvalidAmount` or `AccountNotFound` first when those apply.
    """
    check_amount(amount)
    account, active, in_progress = _load(uow, account_id, business_id)
    facts = _facts(uow, account, active, in_progress)
    raise CreditNotWithdrawable(
        explain_withdrawal_refusal(facts, requested=amount),
        refundable=facts.refundable,
        credit_available=facts.credit_available,
    )
