"""Refunds of prepaid funds: request (hold), approve, reject, cancel, settle (pay out), fail.

A request moves its amount from `cash.available` to `cash.held` at once, so it can't be spent
while it waits. Rejected, canceled and failed refunds release the hold; a settled refund pays it
out to the original payment method. Every change locks the refund's account first, so two
decisions on one refund (an approve racing a cancel) are serialised and only the first one wins.

When a refund is paid:
* deposit-bonus credit is clawed back first, in proportion to the share of the bonus-earning
  deposits of the 90 days before the request that the refund returns, rounded up (contract §5);
* with `refund_closes_account`, the account is closed and every active lot's remainder forfeited.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Select, select, update

from adledger.domain import ledger
from adledger.domain.errors import (
    AccountClosed,
    AccountNotInGoodStanding,
    Conflict,
    InsufficientRefundableFunds,
    InvalidInput,
    RecentSpend,
    RefundNotFound,
)
from adledger.domain.explain import RefundBlock, format_duration, format_time
from adledger.domain.ids import new_id
from adledger.domain.lots import LotStatus
from adledger.domain.money import check_amount, format_money
from adledger.domain.refunds import RefundAction, RefundStatus, next_status
from adledger.service.accounts import load_account, lock_account
from adledger.service.credits import close_lot
from adledger.service.history import fitted
from adledger.service.pagination import Page, paginate
from adledger.service.uow import UnitOfWork
from adledger.storage.postings import Posting, post
from adledger.storage.tables import accounts, deposits, lots, refunds

BONUS_LOOKBACK = timedelta(days=90)


def refund_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "account_id": row.account_id,
        "currency": row.currency,
        "amount": row.amount,
        "status": row.status,
        "reason": row.reason,
        "requested_at": row.requested_at,
        "requested_by": row.requested_by,
        "decided_at": row.decided_at,
        "decided_by": row.decided_by,
        "decision_reason": row.decision_reason,
        "completed_at": row.completed_at,
    }


# --- whether a refund may be requested --------------------------------------------------------


def refunds_open_at(account: Any, quiet_period_seconds: int) -> datetime | None:
    """When the quiet period after the account's latest spend ends (None: no spend recorded)."""
    if account.last_spend_at is None:
        return None
    opens: datetime = account.last_spend_at + timedelta(seconds=quiet_period_seconds)
    return opens


def refund_block(account: Any, now: datetime, quiet_period_seconds: int) -> RefundBlock | None:
    """Why the account can't have a refund requested now, checked in the order a request is:
    closed, then suspended or in debt, then spend within the quiet period. None if it can."""
    if account.status == "closed":
        return RefundBlock.CLOSED
    if account.status == "suspended" or account.debt > 0:
        return RefundBlock.NOT_IN_GOOD_STANDING
    opens = refunds_open_at(account, quiet_period_seconds)
    if opens is not None and now < opens:
        return RefundBlock.RECENT_SPEND
    return None


def _refuse(account: Any, block: RefundBlock, quiet_period_seconds: int) -> Conflict:
    if block is RefundBlock.CLOSED:
        return AccountClosed(f"account {account.id} is closed; no refund can be requested")
    if block is RefundBlock.NOT_IN_GOOD_STANDING:
        if account.debt > 0:
            owed = format_money(account.debt, account.currency)
            return AccountNotInGoodStanding(
                f"account {account.id} owes {owed}; a deposit must cover the debt before a refund",
                debt=account.debt,
            )
        return AccountNotInGoodStanding(f"account {account.id} is suspended; no refund for now")
    opens = refunds_open_at(account, quiet_period_seconds)
    assert opens is not None  # RECENT_SPEND implies recorded spend
    return RecentSpend(
        f"spend was recorded on account {account.id} within the last "
        f"{format_duration(quiet_period_seconds)}; a refund can be requested from "
        f"{format_time(opens, account.timezone)}",
        refunds_open_at=opens,
    )


# --- request ----------------------------------------------------------------------------------


def request_refund(
    uow: UnitOfWork,
    account_id: str,
    *,
    amount: int,
    requested_by: str,
    reason: str | None = None,
    business_id: str | None = None,
) -> dict[str, Any]:
    """Ask for `amount` of prepaid funds back; it is held at once (`refund_hold`).

    Raises, in this order: `InvalidAmount`; `AccountNotFound` (missing, or outside `business_id`);
    `AccountClosed`; `AccountNotInGoodStanding` (suspended or in debt); `RecentSpend` (spend
    recorded within the quiet period); `InsufficientRefundableFunds` (more than `cash.available`).
    """
    check_amount(amount)
    account = lock_account(uow, account_id, business_id=business_id)
    quiet = uow.settings.refund_quiet_period_seconds
    block = refund_block(account, uow.now, quiet)
    if block is not None:
        raise _refuse(account, block, quiet)
    if amount > account.cash_available:
        have = format_money(account.cash_available, account.currency)
        raise InsufficientRefundableFunds(
            f"{format_money(amount, account.currency)} asked, but only {have} of prepaid funds "
            "can be refunded now (credit is never refunded)",
            refundable=account.cash_available,
        )
    refund_id = new_id("rf")
    row: dict[str, Any] = {
        "id": refund_id,
        "account_id": account_id,
        "amount": amount,
        "status": RefundStatus.PENDING.value,
        "reason": reason,
        "requested_at": uow.now,
        "requested_by": requested_by,
        "decided_at": None,
        "decided_by": None,
        "decision_reason": None,
        "completed_at": None,
    }
    uow.conn.execute(refunds.insert().values(**row))
    _post(uow, account, ledger.refund_hold(amount, refund_id), refund_id)
    return refund_view(SimpleNamespace(**row, currency=account.currency))


# --- the lifecycle ----------------------------------------------------------------------------


def approve_refund(
    uow: UnitOfWork,
    refund_id: str,
    *,
    actor_key_id: str,
    reason: str | None = None,
    business_id: str | None = None,
) -> dict[str, Any]:
    """pending → approved. `SelfApproval` if `actor_key_id` requested it."""
    return _act(uow, refund_id, RefundAction.APPROVE, actor_key_id, reason, business_id)


def reject_refund(
    uow: UnitOfWork,
    refund_id: str,
    *,
    actor_key_id: str,
    reason: str | None = None,
    business_id: str | None = None,
) -> dict[str, Any]:
    """pending → rejected; the held amount goes back to `cash.available`."""
    return _act(uow, refund_id, RefundAction.REJECT, actor_key_id, reason, business_id)


def cancel_refund(
    uow: UnitOfWork,
    refund_id: str,
    *,
    actor_key_id: str,
    reason: str | None = None,
    business_id: str | None = None,
) -> dict[str, Any]:
    """pending → canceled; the held amount goes back to `cash.available`."""
    return _act(uow, refund_id, RefundAction.CANCEL, actor_key_id, reason, business_id)


def settle_refund(
    uow: UnitOfWork,
    refund_id: str,
    *,
    actor_key_id: str,
    reason: str | None = None,
    business_id: str | None = None,
) -> dict[str, Any]:
    """approved → paid: the payment service paid it out. Claws back deposit-bonus credit first
    and, with `refund_closes_account`, closes the account and forfeits its credit."""
    return _act(uow, refund_id, RefundAction.SETTLE, actor_key_id, reason, business_id)


def fail_refund(
    uow: UnitOfWork,
    refund_id: str,
    *,
    actor_key_id: str,
    reason: str | None = None,
    business_id: str | None = None,
) -> dict[str, Any]:
    """approved → failed: the payout did not go through; the hold goes back to `cash.available`."""
    return _act(uow, refund_id, RefundAction.FAIL, actor_key_id, reason, business_id)


def _act(
    uow: UnitOfWork,
    refund_id: str,
    action: RefundAction,
    actor_key_id: str,
    reason: str | None,
    business_id: str | None,
) -> dict[str, Any]:
    """Move a refund one step, under its account's lock.

    Raises `RefundNotFound` (missing, or outside `business_id`), `InvalidRefundTransition` (the
    lifecycle does not allow it from the current status), `SelfApproval`, and
    `AccountNotInGoodStanding` for an approval or payout while the account is in debt.
    """
    found = uow.conn.execute(
        select(refunds.c.account_id, accounts.c.business_id)
        .join(accounts, accounts.c.id == refunds.c.account_id)
        .where(refunds.c.id == refund_id)
    ).first()
    if found is None or (business_id is not None and found.business_id != business_id):
        raise RefundNotFound(f"no refund {refund_id}")
    account = lock_account(uow, found.account_id)
    # Read again under the lock: a decision that committed meanwhile is seen here.
    refund = uow.conn.execute(select(refunds).where(refunds.c.id == refund_id)).one()
    new = next_status(
        refund.status, action, actor_key=actor_key_id, requester_key=refund.requested_by
    )
    if new in (RefundStatus.APPROVED, RefundStatus.PAID) and account.debt > 0:
        # A reversed deposit left the account owing money: paying cash out now would pay the
        # advertiser twice. Reject (or fail) the refund instead.
        owed = format_money(account.debt, account.currency)
        raise AccountNotInGoodStanding(
            f"account {account.id} owes {owed} after a reversed deposit; "
            "this refund can't be approved or paid",
            debt=account.debt,
        )
    values: dict[str, Any] = {"status": new.value}
    if action in (RefundAction.APPROVE, RefundAction.REJECT, RefundAction.CANCEL):
        values |= {"decided_at": uow.now, "decided_by": actor_key_id, "decision_reason": reason}
    else:
        values["completed_at"] = uow.now
    uow.conn.execute(update(refunds).where(refunds.c.id == refund_id).values(**values))

    if new in (RefundStatus.REJECTED, RefundStatus.CANCELED, RefundStatus.FAILED):
        why = new.value + (f" ({reason})" if reason else "")
        _post(uow, account, ledger.refund_release(refund.amount, refund_id, why), refund_id)
    elif new is RefundStatus.PAID:
        _claw_back_deposit_bonus(uow, account, refund)
        _post(uow, account, ledger.refund_payout(refund.amount, refund_id), refund_id)
        if uow.settings.refund_closes_account:
            _close_account(uow, account.id, refund_id)
    changed = refund._asdict() | values | {"currency": account.currency}
    return refund_view(SimpleNamespace(**changed))


def _post(uow: UnitOfWork, account: Any, txn: ledger.Transaction, refund_id: str) -> None:
    posting = Posting(
        id=new_id("txn"),
        account_id=account.id,
        currency=account.currency,
        created_at=uow.now,
        txn=fitted(txn),
        refs={"refund_id": refund_id},
    )
    post(uow.conn, [posting])


def _claw_back_deposit_bonus(uow: UnitOfWork, account: Any, refund: Any) -> None:
    """Forfeit deposit-bonus credit in proportion to the share of the bonus-earning deposits
    (of the 90 days before the request) that this refund returns, rounded up.

    Each still-active bonus lot of those deposits loses `ceil(original × share)`, at most what
    remains of it; what was already spent stays spent. A lot left empty becomes `forfeited`.
    """
    bonus_deposits = (
        select(lots.c.deposit_id)
        .where(
            lots.c.account_id == account.id,
            lots.c.source == "deposit_bonus",
            lots.c.deposit_id.is_not(None),
        )
        .scalar_subquery()
    )
    earning = uow.conn.execute(
        select(deposits.c.id, deposits.c.amount).where(
            deposits.c.account_id == account.id,
            deposits.c.created_at >= refund.requested_at - BONUS_LOOKBACK,
            deposits.c.created_at <= refund.requested_at,
            deposits.c.reversed_at.is_(None),
            deposits.c.id.in_(bonus_deposits),
        )
    ).all()
    total = sum(d.amount for d in earning)
    if total == 0:
        return
    returned = min(refund.amount, total)
    bonus_lots = uow.conn.execute(
        select(lots)
        .where(
            lots.c.account_id == account.id,
            lots.c.source == "deposit_bonus",
            lots.c.status == LotStatus.ACTIVE.value,
            lots.c.deposit_id.in_([d.id for d in earning]),
        )
        .order_by(lots.c.id)
    ).all()
    for lot in bonus_lots:
        take = min(lot.remaining, -(-lot.original * returned // total))
        if take <= 0:
            continue
        share = f"{returned * 100 / total:.4g}%"
        txn = ledger.lot_closing(
            ledger.Kind.CLAWBACK,
            lot.id,
            take,
            f"Deposit bonus clawed back: refund {refund.id} returns {share} of the bonus-earning "
            "deposits",
        )
        post(
            uow.conn,
            [
                Posting(
                    id=new_id("txn"),
                    account_id=account.id,
                    currency=account.currency,
                    created_at=uow.now,
                    txn=txn,
                    refs={"refund_id": refund.id, "lot_id": lot.id, "deposit_id": lot.deposit_id},
                )
            ],
        )
        if take == lot.remaining:
            uow.conn.execute(
                update(lots)
                .where(lots.c.id == lot.id)
                .values(status=LotStatus.FORFEITED.value, closed_at=uow.now)
            )


def _close_account(uow: UnitOfWork, account_id: str, refund_id: str) -> None:
    """Close the account after a paid refund (`refund_closes_account`); forfeit its credit."""
    uow.conn.execute(update(accounts).where(accounts.c.id == account_id).values(status="closed"))
    active = uow.conn.execute(
        select(lots)
        .where(lots.c.account_id == account_id, lots.c.status == LotStatus.ACTIVE.value)
        .order_by(lots.c.id)
    ).all()
    for lot in active:
        close_lot(
            uow,
            lot,
            ledger.Kind.FORFEIT,
            LotStatus.FORFEITED,
            f"Credit forfeited: account closed by refund {refund_id}",
        )


# --- reads ------------------------------------------------------------------------------------


def _query() -> Select[Any]:
    return select(refunds, accounts.c.currency).join(
        accounts, accounts.c.id == refunds.c.account_id
    )


def _check_status(status: str | None) -> None:
    if status is not None and status not in {s.value for s in RefundStatus}:
        raise InvalidInput(f"unknown refund status {status!r}", code="invalid_status")


def get_refund(
    uow: UnitOfWork, refund_id: str, *, business_id: str | None = None
) -> dict[str, Any]:
    """One refund; `RefundNotFound` if missing or outside `business_id` (when given)."""
    query = _query().where(refunds.c.id == refund_id)
    if business_id is not None:
        query = query.where(accounts.c.business_id == business_id)
    row = uow.conn.execute(query).first()
    if row is None:
        raise RefundNotFound(f"no refund {refund_id}")
    return refund_view(row)


def list_refunds(
    uow: UnitOfWork,
    *,
    status: str | None = None,
    business_id: str | None = None,
    limit: int = 50,
    starting_after: str | None = None,
) -> Page:
    """Refunds newest first, optionally of one status and one business."""
    _check_status(status)
    query = _query()
    if status is not None:
        query = query.where(refunds.c.status == status)
    if business_id is not None:
        query = query.where(accounts.c.business_id == business_id)
    return paginate(uow, query, refunds.c.id, limit, starting_after, refund_view)


def list_account_refunds(
    uow: UnitOfWork,
    account_id: str,
    *,
    status: str | None = None,
    business_id: str | None = None,
    limit: int = 50,
    starting_after: str | None = None,
) -> Page:
    """One account's refunds newest first; `AccountNotFound` if outside `business_id`."""
    _check_status(status)
    load_account(uow, account_id, business_id=business_id)
    query = _query().where(refunds.c.account_id == account_id)
    if status is not None:
        query = query.where(refunds.c.status == status)
    return paginate(uow, query, refunds.c.id, limit, starting_after, refund_view)
