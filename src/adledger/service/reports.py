"""Finance reports. The liabilities report: what the platform owes advertisers in one currency.

Stocks come from stored balances (accounts' cash, active lots' remaining); flows are summed from
the ledger's entries by book and transaction kind (see `domain.ledger` for the books):

    credit_granted    credit legs of `credit_grant` transactions
    credit_used       credit drawn by `spend` (its credit legs, sign turned)
    credit_expired    the breakage book
    credit_voided     the voided book
    credit_forfeited  the forfeited book (account closed, clawed back)
    overdelivery_written_off  the overdelivery book (sign turned)

So `credit_granted = credit_outstanding + credit_used + credit_expired + credit_voided +
credit_forfeited` whenever the ledger verifies.
"""

from __future__ import annotations

from typing import TypedDict

from sqlalchemy import func, select

from adledger.domain.ledger import Book, Kind
from adledger.domain.lots import LotStatus
from adledger.domain.money import check_currency
from adledger.service.uow import UnitOfWork
from adledger.storage.tables import accounts, entries, lots, transactions


class Liabilities(TypedDict):
    currency: str
    cash_available: int
    cash_held: int
    credit_outstanding: int
    credit_granted: int
    credit_used: int
    credit_expired: int
    credit_voided: int
    credit_forfeited: int
    overdelivery_written_off: int


_FLOW_BOOKS = (Book.CREDIT, Book.BREAKAGE, Book.VOIDED, Book.FORFEITED, Book.OVERDELIVERY)


def liabilities(uow: UnitOfWork, currency: str) -> Liabilities:
    """Cash and credit the platform owes in `currency`, and the credit flows to date."""
    check_currency(currency)
    a = accounts.c
    cash_available, cash_held = uow.conn.execute(
        select(
            func.coalesce(func.sum(a.cash_available), 0), func.coalesce(func.sum(a.cash_held), 0)
        ).where(a.currency == currency)
    ).one()
    outstanding = uow.conn.execute(
        select(func.coalesce(func.sum(lots.c.remaining), 0))
        .select_from(lots.join(accounts, lots.c.account_id == a.id))
        .where(a.currency == currency, lots.c.status == LotStatus.ACTIVE.value)
    ).scalar_one()
    flows: dict[tuple[str, str], int] = {
        (book, kind): int(total)
        for book, kind, total in uow.conn.execute(
            select(entries.c.book, transactions.c.kind, func.sum(entries.c.amount))
            .select_from(entries.join(transactions, entries.c.txn_id == transactions.c.id))
            .where(
                transactions.c.currency == currency,
                entries.c.book.in_([b.value for b in _FLOW_BOOKS]),
            )
            .group_by(entries.c.book, transactions.c.kind)
        )
    }

    def book_total(book: Book) -> int:
        return sum(total for (b, _), total in flows.items() if b == book.value)

    return {
        "currency": currency,
        "cash_available": int(cash_available),
        "cash_held": int(cash_held),
        "credit_outstanding": int(outstanding),
        "credit_granted": flows.get((Book.CREDIT.value, Kind.CREDIT_GRANT.value), 0),
        "credit_used": -flows.get((Book.CREDIT.value, Kind.SPEND.value), 0),
        "credit_expired": book_total(Book.BREAKAGE),
        "credit_voided": book_total(Book.VOIDED),
        "credit_forfeited": book_total(Book.FORFEITED),
        "overdelivery_written_off": -book_total(Book.OVERDELIVERY),
    }
