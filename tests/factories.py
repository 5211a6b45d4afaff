"""Factories with keyword defaults, over the service layer (fast) — for arranging a test.

`make_account(db, currency="JPY", cash=50_000)` makes a business, an account and a deposit.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from adledger.service import accounts, credits, deposits
from adledger.service.uow import Database


def make_business(db: Database, *, name: str = "Acme Ads") -> dict[str, Any]:
    return db.run(accounts.create_business, name=name)


def make_account(
    db: Database,
    *,
    currency: str = "USD",
    cash: int = 0,
    business_id: str | None = None,
    with_business: bool = True,
    name: str = "Main account",
    timezone: str = "UTC",
) -> dict[str, Any]:
    if business_id is None and with_business:
        business_id = make_business(db)["id"]
    acct = db.run(
        accounts.create_account,
        name=name,
        currency=currency,
        business_id=business_id,
        timezone=timezone,
    )
    if cash:
        deposit(db, acct["id"], amount=cash)
    return acct


def deposit(
    db: Database, account_id: str, *, amount: int = 10_000, tax: int = 0, reference: str = "pay_1"
) -> dict[str, Any]:
    return db.run(
        deposits.create_deposit, account_id, amount=amount, tax=tax, payment_reference=reference
    )


def grant(
    db: Database,
    account_id: str,
    *,
    amount: int = 5_000,
    days: float = 30,
    expires_at: datetime | None = None,
    effective_at: datetime | None = None,
    priority: int = 50,
    campaign_id: str | None = None,
    reason: str = "goodwill",
) -> dict[str, Any]:
    now = db.clock.now()
    return db.run(
        credits.grant_credit,
        account_id,
        amount=amount,
        expires_at=expires_at or now + timedelta(days=days),
        effective_at=effective_at,
        priority=priority,
        campaign_id=campaign_id,
        reason=reason,
    )
