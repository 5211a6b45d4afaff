"""What the finance console reads beyond the API's own reads: the refund queue with each
account's context, account search, the currencies in use, and the liabilities over time.

Reads only, for staff (the routes admit finance and admin keys). Each query is batched over the
page it serves: a queue of fifty refunds is a handful of statements, not fifty of each.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, func, or_, select, type_coerce

from adledger.domain.errors import InvalidInput
from adledger.domain.ledger import Book, Kind
from adledger.domain.lots import LotStatus
from adledger.domain.money import check_currency
from adledger.domain.refunds import RefundStatus
from adledger.service.accounts import account_view
from adledger.service.refunds import list_refunds
from adledger.service.uow import UnitOfWork
from adledger.storage.tables import (
    EPOCH,
    accounts,
    businesses,
    entries,
    lots,
    refunds,
    transactions,
)

RECENT_SPEND_DAYS = 30
DAY_US = 86_400 * 1_000_000
MAX_SEARCH = 50


def refund_queue(
    uow: UnitOfWork, *, limit: int = 50, starting_after: str | None = None
) -> dict[str, Any]:
    """Pending refunds, newest first, each with its account's context: the account, its cash
    and credit now, what it spent in the last 30 days, and its earlier refunds by status."""
    page = list_refunds(
        uow, status=RefundStatus.PENDING.value, limit=limit, starting_after=starting_after
    )
    ids = sorted({r["account_id"] for r in page["data"]})
    context = account_context(uow, ids)
    return {**page, "data": [r | {"context": context[r["account_id"]]} for r in page["data"]]}


def account_context(uow: UnitOfWork, account_ids: list[str]) -> dict[str, dict[str, Any]]:
    """For each account: `account` (its view, with its business's name), `cash_available`,
    `cash_held`, `debt`, `credit_available`, `spend_30d` (credit and cash), `age_days` and
    `refunds` (count and amount by status)."""
    if not account_ids:
        return {}
    now = uow.now
    a = accounts.c
    found: dict[str, dict[str, Any]] = {}
    for row in uow.conn.execute(
        select(accounts, businesses.c.name.label("business_name"))
        .select_from(accounts.outerjoin(businesses, businesses.c.id == a.business_id))
        .where(a.id.in_(account_ids))
    ):
        found[row.id] = {
            "account": account_view(row) | {"business_name": row.business_name},
            "cash_available": row.cash_available,
            "cash_held": row.cash_held,
            "debt": row.debt,
            "last_spend_at": row.last_spend_at,
            "age_days": (now - row.created_at).days,
            "credit_available": 0,
            "spend_30d": {"credit": 0, "cash": 0},
            "refunds": {},
        }
    for account_id, total in uow.conn.execute(
        select(lots.c.account_id, func.sum(lots.c.remaining))
        .where(
            lots.c.account_id.in_(account_ids),
            lots.c.status == LotStatus.ACTIVE.value,
            lots.c.effective_at <= now,
            lots.c.expires_at > now,
        )
        .group_by(lots.c.account_id)
    ):
        found[account_id]["credit_available"] = int(total)
    t = transactions.c
    for account_id, cash, credit in uow.conn.execute(
        select(t.account_id, func.sum(t.cash_delta), func.sum(t.credit_delta))
        .where(
            t.account_id.in_(account_ids),
            t.kind == Kind.SPEND.value,
            t.created_at >= now - timedelta(days=RECENT_SPEND_DAYS),
        )
        .group_by(t.account_id)
    ):
        found[account_id]["spend_30d"] = {"credit": -int(credit or 0), "cash": -int(cash or 0)}
    for account_id, status, count, amount in uow.conn.execute(
        select(refunds.c.account_id, refunds.c.status, func.count(), func.sum(refunds.c.amount))
        .where(refunds.c.account_id.in_(account_ids))
        .group_by(refunds.c.account_id, refunds.c.status)
    ):
        found[account_id]["refunds"][status] = {"count": int(count), "amount": int(amount)}
    return found


def search_accounts(
    uow: UnitOfWork, query: str, *, limit: int = MAX_SEARCH
) -> list[dict[str, Any]]:
    """Accounts whose id or business id is `query`, or whose name or business's name contains
    it (case-insensitive); newest first, at most `limit`. An empty query lists the newest."""
    text = query.strip()
    if len(text) > 200:
        raise InvalidInput("a search is at most 200 characters")
    a, b = accounts.c, businesses.c
    select_ = select(accounts, b.name.label("business_name")).select_from(
        accounts.outerjoin(businesses, b.id == a.business_id)
    )
    if text:
        like = (
            "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        )
        select_ = select_.where(
            or_(
                a.id == text,
                a.business_id == text,
                func.lower(a.name).like(like, escape="\\"),
                func.lower(b.name).like(like, escape="\\"),
            )
        )
    rows = uow.conn.execute(select_.order_by(a.id.desc()).limit(limit)).all()
    return [account_view(r) | {"business_name": r.business_name} for r in rows]


def currencies_in_use(uow: UnitOfWork) -> list[str]:
    """The currencies of the accounts there are, alphabetically."""
    return sorted(str(c) for (c,) in uow.conn.execute(select(accounts.c.currency).distinct()))


@dataclass(frozen=True, slots=True)
class LiabilityDay:
    """The platform's position in one currency at the end of one UTC day (minor units)."""

    day: date
    cash: int  # prepaid funds owed: available plus held for refunds
    credit_outstanding: int  # active credit not yet spent, expired, voided or forfeited
    breakage: int  # credit expired unspent, to date


_HISTORY_BOOKS = (Book.CASH, Book.HELD, Book.CREDIT, Book.BREAKAGE)


def liabilities_history(uow: UnitOfWork, currency: str, *, days: int = 90) -> list[LiabilityDay]:
    """Cash owed, credit outstanding and breakage to date at the end of each of the last `days`
    UTC days (today so far included), from the ledger's entries: one sum of everything before
    the period, and one sum per day and book within it."""
    check_currency(currency)
    if not 1 <= days <= 366:
        raise InvalidInput("days must be from 1 to 366")
    today = uow.now.date()
    first = today - timedelta(days=days - 1)
    start = datetime(first.year, first.month, first.day, tzinfo=EPOCH.tzinfo)
    t, e = transactions.c, entries.c
    books = [b.value for b in _HISTORY_BOOKS]
    joined = entries.join(transactions, e.txn_id == t.id)
    running: dict[str, int] = defaultdict(int)
    for book, total in uow.conn.execute(
        select(e.book, func.sum(e.amount))
        .select_from(joined)
        .where(t.currency == currency, t.created_at < start, e.book.in_(books))
        .group_by(e.book)
    ):
        running[book] = int(total)
    day_bucket = (type_coerce(t.created_at, BigInteger) // DAY_US).label("day")
    per_day: dict[int, dict[str, int]] = defaultdict(dict)
    for bucket, book, total in uow.conn.execute(
        select(day_bucket, e.book, func.sum(e.amount))
        .select_from(joined)
        .where(t.currency == currency, t.created_at >= start, e.book.in_(books))
        .group_by(day_bucket, e.book)
    ):
        per_day[int(bucket)][book] = int(total)
    out: list[LiabilityDay] = []
    for i in range(days):
        day = first + timedelta(days=i)
        for book, total in per_day.get((day - EPOCH.date()).days, {}).items():
            running[book] += total
        out.append(
            LiabilityDay(
                day=day,
                cash=running[Book.CASH.value] + running[Book.HELD.value],
                credit_outstanding=running[Book.CREDIT.value],
                breakage=running[Book.BREAKAGE.value],
            )
        )
    return out
