"""Small helpers for tests: spend events as JSON, and reading stored balances directly."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from adledger.http.encoding import rfc3339
from adledger.service.uow import Database
from adledger.storage.tables import accounts, lots

DEFAULT_OCCURRED = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # the test clock's start


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def event(
    event_id: str,
    account_id: str,
    amount: int,
    *,
    occurred_at: datetime = DEFAULT_OCCURRED,
    campaign_id: str | None = None,
    currency: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": event_id,
        "account_id": account_id,
        "amount": amount,
        "occurred_at": rfc3339(occurred_at),
    }
    if campaign_id is not None:
        body["campaign_id"] = campaign_id
    if currency is not None:
        body["currency"] = currency
    return body


def balances(db: Database, account_id: str) -> dict[str, Any]:
    """The stored balances of an account: cash, held and each lot's (remaining, status)."""
    with db.engine.connect() as conn:
        acct = conn.execute(select(accounts).where(accounts.c.id == account_id)).one()
        rows = conn.execute(select(lots).where(lots.c.account_id == account_id)).all()
        conn.rollback()
    return {
        "cash": acct.cash_available,
        "held": acct.cash_held,
        "lots": {r.id: (r.remaining, r.status) for r in rows},
    }
