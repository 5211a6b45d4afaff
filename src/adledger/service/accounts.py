"""Businesses and ad accounts: create, read, list, suspend, reinstate."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select, update

from adledger.domain.errors import (
    AccountNotFound,
    BusinessNotFound,
    InvalidAccountTransition,
    InvalidInput,
)
from adledger.domain.ids import new_id
from adledger.domain.money import check_currency
from adledger.service.pagination import Page, paginate
from adledger.service.uow import UnitOfWork
from adledger.storage.tables import accounts, businesses


def business_view(row: Any) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "created_at": row.created_at}


def account_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "currency": row.currency,
        "business_id": row.business_id,
        "timezone": row.timezone,
        "status": row.status,
        "created_at": row.created_at,
    }


def create_business(uow: UnitOfWork, *, name: str) -> dict[str, Any]:
    row = {"id": new_id("biz"), "name": name, "created_at": uow.now}
    uow.conn.execute(businesses.insert().values(**row))
    return row


def get_business(uow: UnitOfWork, business_id: str) -> dict[str, Any]:
    row = uow.conn.execute(select(businesses).where(businesses.c.id == business_id)).first()
    if row is None:
        raise BusinessNotFound(f"no business {business_id}")
    return business_view(row)


def create_account(
    uow: UnitOfWork,
    *,
    name: str,
    currency: str,
    business_id: str | None = None,
    timezone: str | None = None,
) -> dict[str, Any]:
    check_currency(currency)
    tz = timezone or "UTC"
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"{tz!r} is not an IANA time zone", code="invalid_timezone") from None
    if business_id is not None:
        get_business(uow, business_id)
    row = {
        "id": new_id("acct"),
        "name": name,
        "currency": currency,
        "business_id": business_id,
        "timezone": tz,
        "status": "active",
        "created_at": uow.now,
    }
    uow.conn.execute(accounts.insert().values(**row))
    return row


def load_account(uow: UnitOfWork, account_id: str, *, business_id: str | None = None) -> Any:
    """The account row; `AccountNotFound` if missing or outside `business_id` (when given)."""
    query = select(accounts).where(accounts.c.id == account_id)
    row = uow.conn.execute(query).first()
    if row is None or (business_id is not None and row.business_id != business_id):
        raise AccountNotFound(f"no account {account_id}")
    return row


def lock_account(uow: UnitOfWork, account_id: str, *, business_id: str | None = None) -> Any:
    """The account row, locked for this unit of work (see `UnitOfWork.lock_accounts`)."""
    row = uow.lock_accounts([account_id]).get(account_id)
    if row is None or (business_id is not None and row.business_id != business_id):
        raise AccountNotFound(f"no account {account_id}")
    return row


def get_account(
    uow: UnitOfWork, account_id: str, *, business_id: str | None = None
) -> dict[str, Any]:
    return account_view(load_account(uow, account_id, business_id=business_id))


def list_accounts(
    uow: UnitOfWork,
    *,
    business_id: str | None = None,
    limit: int = 50,
    starting_after: str | None = None,
) -> Page:
    query = select(accounts)
    if business_id is not None:
        query = query.where(accounts.c.business_id == business_id)
    return paginate(uow, query, accounts.c.id, limit, starting_after, account_view)


def _set_status(
    uow: UnitOfWork, account_id: str, frm: str, to: str, reason: str | None
) -> dict[str, Any]:
    row = lock_account(uow, account_id)
    if row.status != frm:
        raise InvalidAccountTransition(
            f"account {account_id} is {row.status}; only a {frm} account can become {to}"
        )
    uow.conn.execute(
        update(accounts)
        .where(accounts.c.id == account_id)
        .values(status=to, suspended_reason=reason)
    )
    return account_view(row) | {"status": to}


def suspend_account(uow: UnitOfWork, account_id: str) -> dict[str, Any]:
    """Suspended by staff: only a reinstatement lifts it (a deposit covering a debt does not)."""
    return _set_status(uow, account_id, "active", "suspended", "staff")


def reinstate_account(uow: UnitOfWork, account_id: str) -> dict[str, Any]:
    """Back to active. Refused while the account owes money: a deposit must cover the debt."""
    row = lock_account(uow, account_id)
    if row.debt > 0:
        raise InvalidAccountTransition(
            f"account {account_id} owes {row.debt}; a deposit must cover the debt first"
        )
    return _set_status(uow, account_id, "suspended", "active", None)
