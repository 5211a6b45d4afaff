"""An account's statement, as the advertiser's billing page shows it: spend per day split by
what funded it, transactions filtered by kind and date (a page, or all of them for a CSV), and
the progress of the account's promotions with their rewards.

Reads only; each takes the advertiser's scope (`business_id`) like every other read, so another
business's account is not found.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, Select, func, select, type_coerce

from adledger.domain.errors import InvalidInput
from adledger.domain.ledger import Book, Kind
from adledger.service.accounts import load_account
from adledger.service.history import KINDS, transaction_view
from adledger.service.pagination import Page, paginate
from adledger.service.promotions import redemption_view
from adledger.service.uow import UnitOfWork
from adledger.storage.tables import entries, from_us, promotions, redemptions, transactions

# Spend is summed in SQL into quarter-hour buckets (UTC) and the buckets are then put into the
# account's local days here: every time zone's offset is a whole number of quarter hours, so a
# bucket never straddles a local midnight, and a month of spend is at most ~3,000 rows whatever
# the number of events.
BUCKET_US = 15 * 60 * 1_000_000
MAX_DAYS = 366
MAX_EXPORT = 100_000


@dataclass(frozen=True, slots=True)
class DaySpend:
    """Spend that occurred on one local day, by what paid for it (minor units)."""

    day: date
    credit: int
    cash: int
    unfunded: int

    @property
    def total(self) -> int:
        return self.credit + self.cash + self.unfunded


def local_day_start(day: date, timezone: str) -> datetime:
    """The instant a local day begins in `timezone`."""
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(timezone))


def daily_spend(
    uow: UnitOfWork, account_id: str, *, business_id: str | None = None, days: int = 30
) -> list[DaySpend]:
    """Spend per local day (the account's time zone) over the last `days` days, today included,
    oldest first, by occurrence: credit-funded, cash-funded and unfunded (written off)."""
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"days must be from 1 to {MAX_DAYS}")
    account = load_account(uow, account_id, business_id=business_id)
    tz = ZoneInfo(account.timezone)
    today = uow.now.astimezone(tz).date()
    first = today - timedelta(days=days - 1)
    since = local_day_start(first, account.timezone)
    t, e = transactions.c, entries.c
    bucket = (type_coerce(t.occurred_at, BigInteger) // BUCKET_US).label("bucket")
    rows = uow.conn.execute(
        select(bucket, e.book, func.sum(e.amount))
        .select_from(transactions.join(entries, e.txn_id == t.id))
        .where(
            t.account_id == account_id,
            t.kind == Kind.SPEND.value,
            t.occurred_at >= since,
            e.book.in_([Book.CREDIT.value, Book.CASH.value, Book.OVERDELIVERY.value]),
        )
        .group_by(bucket, e.book)
    ).all()
    totals: dict[date, dict[str, int]] = {
        first + timedelta(days=i): {"credit": 0, "cash": 0, "unfunded": 0} for i in range(days)
    }
    names = {Book.CREDIT.value: "credit", Book.CASH.value: "cash"}
    for start, book, amount in rows:
        day = from_us(int(start) * BUCKET_US).astimezone(tz).date()
        if day in totals:  # spend up to 5 minutes ahead may fall on tomorrow: not shown
            # Spend legs take value away from the account's books (negative amounts).
            totals[day][names.get(book, "unfunded")] += -int(amount)
    return [DaySpend(day, **split) for day, split in sorted(totals.items())]


def _filtered(
    account_id: str, kind: str | None, since: datetime | None, until: datetime | None
) -> Select[Any]:
    t = transactions.c
    query = select(
        t.id,
        t.kind,
        t.created_at,
        t.cash_delta,
        t.credit_delta,
        t.lot_id,
        t.event_id,
        t.refund_id,
        t.deposit_id,
        t.description,
    ).where(t.account_id == account_id)
    if kind is not None:
        if kind not in KINDS:
            raise InvalidInput(
                f"unknown transaction kind {kind!r}; one of {', '.join(KINDS)}",
                code="invalid_kind",
            )
        query = query.where(t.kind == kind)
    if since is not None:
        query = query.where(t.created_at >= since)
    if until is not None:
        query = query.where(t.created_at < until)
    if since is not None and until is not None and until <= since:
        raise InvalidInput("the end of the period must come after its start", code="invalid_time")
    return query


def search_transactions(
    uow: UnitOfWork,
    account_id: str,
    *,
    business_id: str | None = None,
    kind: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    starting_after: str | None = None,
) -> Page:
    """A page of the account's transactions, newest first, of one `kind` and recorded in
    `[since, until)` (each optional)."""
    load_account(uow, account_id, business_id=business_id)
    query = _filtered(account_id, kind, since, until)
    return paginate(uow, query, transactions.c.id, limit, starting_after, transaction_view)


def export_transactions(
    uow: UnitOfWork,
    account_id: str,
    *,
    business_id: str | None = None,
    kind: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """Every transaction the same filters select, newest first, for a CSV (at most
    `MAX_EXPORT`; narrow the dates for more)."""
    load_account(uow, account_id, business_id=business_id)
    query = _filtered(account_id, kind, since, until)
    rows = uow.conn.execute(query.order_by(transactions.c.id.desc()).limit(MAX_EXPORT)).all()
    return [transaction_view(r) for r in rows]


def iter_csv_rows(items: list[dict[str, Any]]) -> Iterator[list[str]]:
    """The export's rows, header first: amounts in minor units, times in UTC (RFC 3339)."""
    columns = (
        "id",
        "kind",
        "created_at",
        "cash_delta",
        "credit_delta",
        "lot_id",
        "event_id",
        "refund_id",
        "deposit_id",
        "description",
    )
    yield list(columns)
    for item in items:
        yield [
            item[c].isoformat()
            if isinstance(item[c], datetime)
            else ""
            if item[c] is None
            else str(item[c])
            for c in columns
        ]


def promotion_progress(
    uow: UnitOfWork, account_id: str, *, business_id: str | None = None, limit: int = 20
) -> list[dict[str, Any]]:
    """The account's redemptions, newest first, each with its promotion's name and reward, so a
    page can say "spend $40 more before 12 Mar to get $50 of credit"."""
    load_account(uow, account_id, business_id=business_id)
    P, R = promotions.c, redemptions.c
    rows = uow.conn.execute(
        select(
            redemptions,
            P.kind,
            P.threshold,
            P.name.label("promotion_name"),
            P.reward_amount,
            P.reward_percent,
            P.reward_max_amount,
            P.min_deposit,
            P.currency.label("promotion_currency"),
        )
        .join(promotions, P.id == R.promotion_id)
        .where(R.account_id == account_id)
        .order_by(R.id.desc())
        .limit(limit)
    ).all()
    return [
        redemption_view(row, uow.now)
        | {
            "promotion_name": row.promotion_name,
            "currency": row.promotion_currency,
            "reward": {
                "amount": row.reward_amount,
                "percent": row.reward_percent,
                "max_amount": row.reward_max_amount,
            },
            "min_deposit": row.min_deposit,
        }
        for row in rows
    ]
