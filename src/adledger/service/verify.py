"""`adledger verify`: check the whole ledger against its invariants.

Each `Check` is one named invariant found by one or two aggregate (GROUP BY / anti-join) queries,
so the database does the work and only violations come back to Python, whatever the size of the
ledger. Each query is a single statement, so it sees one consistent snapshot even while the
ledger is being written. `verify_ledger` runs them in order and can report progress per check.

At most `limit` violations are listed per check, followed by a note that there are more.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

from sqlalchemy import ColumnElement, Connection, case, func, or_, select

from adledger.domain.ledger import MEMO_KINDS, Book
from adledger.domain.lots import LotStatus
from adledger.domain.refunds import HOLDING
from adledger.service import audit
from adledger.service.uow import UnitOfWork
from adledger.storage.tables import (
    accounts,
    entries,
    lots,
    promotions,
    redemptions,
    refunds,
    transactions,
)

MAX_LISTED = 100

# Column collections, as short as the SQL they stand for.
a, e, lot, t = accounts.c, entries.c, lots.c, transactions.c


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken invariant: the check's name and a message naming the object."""

    check: str
    message: str


Finder = Callable[[Connection, int], Iterator[str]]


@dataclass(frozen=True, slots=True)
class Check:
    """A named invariant; `find(conn, limit)` yields up to `limit` messages about violations."""

    name: str
    title: str
    find: Finder


def _book_sum(book: Book) -> ColumnElement[Any]:
    return func.coalesce(func.sum(case((e.book == book.value, e.amount), else_=0)), 0)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# --- the checks ---------------------------------------------------------------------------------


def _transactions_balanced(conn: Connection, limit: int) -> Iterator[str]:
    unbalanced = (
        select(e.txn_id, func.sum(e.amount).label("total"), func.count().label("n"))
        .group_by(e.txn_id)
        .having(or_(func.sum(e.amount) != 0, func.count() < 2))
        .order_by(e.txn_id)
        .limit(limit)
    )
    for txn_id, total, n in conn.execute(unbalanced):
        if total != 0:
            yield f"transaction {txn_id}: its {_plural(n, 'entry')} sum to {total}, not 0"
        else:
            yield f"transaction {txn_id} has {_plural(n, 'entry')}; it needs at least 2"
    memo = sorted(k.value for k in MEMO_KINDS)
    empty = (
        select(t.id)
        .where(~select(e.id).where(e.txn_id == t.id).exists(), t.kind.not_in(memo))
        .order_by(t.id)
        .limit(limit)
    )
    for (txn_id,) in conn.execute(empty):
        yield f"transaction {txn_id} has no entries"
    moving_memos = (
        select(t.id, t.kind)
        .where(select(e.id).where(e.txn_id == t.id).exists(), t.kind.in_(memo))
        .order_by(t.id)
        .limit(limit)
    )
    for txn_id, kind in conn.execute(moving_memos):
        yield f"transaction {txn_id} is a {kind}, which moves no value, but it has entries"


def _entries_belong(conn: Connection, limit: int) -> Iterator[str]:
    foreign = (
        select(e.id, e.txn_id, e.account_id, t.account_id)
        .join(transactions, t.id == e.txn_id)
        .where(e.account_id != t.account_id)
        .order_by(e.id)
        .limit(limit)
    )
    for entry_id, txn_id, entry_account, txn_account in conn.execute(foreign):
        yield (
            f"entry {entry_id} of transaction {txn_id} is on account {entry_account}, "
            f"but the transaction is account {txn_account}'s"
        )
    stray = (
        select(e.id, e.txn_id, e.lot_id, e.account_id, lot.account_id.label("lot_account"))
        .outerjoin(lots, lot.id == e.lot_id)
        .where(
            e.book == Book.CREDIT.value,
            or_(lot.id.is_(None), lot.account_id != e.account_id),
        )
        .order_by(e.id)
        .limit(limit)
    )
    for entry_id, txn_id, lot_id, entry_account, lot_account in conn.execute(stray):
        if lot_account is None:
            yield f"credit entry {entry_id} of transaction {txn_id} names a missing lot, {lot_id}"
        else:
            yield (
                f"credit entry {entry_id} of transaction {txn_id} is on account {entry_account}, "
                f"but lot {lot_id} belongs to account {lot_account}"
            )


def _transaction_summaries(conn: Connection, limit: int) -> Iterator[str]:
    sums = (
        select(
            e.txn_id,
            _book_sum(Book.CASH).label("cash"),
            _book_sum(Book.CREDIT).label("credit"),
        )
        .where(e.book.in_([Book.CASH.value, Book.CREDIT.value]))
        .group_by(e.txn_id)
        .subquery()
    )
    cash = func.coalesce(sums.c.cash, 0)
    credit = func.coalesce(sums.c.credit, 0)
    wrong = (
        select(t.id, t.cash_delta, t.credit_delta, cash.label("cash"), credit.label("credit"))
        .outerjoin(sums, sums.c.txn_id == t.id)
        .where(or_(t.cash_delta != cash, t.credit_delta != credit))
        .order_by(t.id)
        .limit(limit)
    )
    for txn_id, cash_delta, credit_delta, cash_sum, credit_sum in conn.execute(wrong):
        problems = []
        if cash_delta != cash_sum:
            problems.append(f"cash_delta is {cash_delta} but its cash entries sum to {cash_sum}")
        if credit_delta != credit_sum:
            problems.append(
                f"credit_delta is {credit_delta} but its credit entries sum to {credit_sum}"
            )
        yield f"transaction {txn_id}: " + "; ".join(problems)


def _transaction_currency(conn: Connection, limit: int) -> Iterator[str]:
    wrong = (
        select(t.id, t.currency, a.id, a.currency)
        .join(accounts, a.id == t.account_id)
        .where(t.currency != a.currency)
        .order_by(t.id)
        .limit(limit)
    )
    for txn_id, txn_currency, account_id, account_currency in conn.execute(wrong):
        yield (
            f"transaction {txn_id} is in {txn_currency}, "
            f"but its account {account_id} is in {account_currency}"
        )


def _account_balances(conn: Connection, limit: int) -> Iterator[str]:
    books = (Book.CASH, Book.HELD, Book.DEBT)
    sums = (
        select(
            e.account_id,
            _book_sum(Book.CASH).label("cash"),
            _book_sum(Book.HELD).label("held"),
            _book_sum(Book.DEBT).label("debt"),
        )
        .where(e.book.in_([b.value for b in books]))
        .group_by(e.account_id)
        .subquery()
    )
    cash = func.coalesce(sums.c.cash, 0)
    held = func.coalesce(sums.c.held, 0)
    debt = func.coalesce(sums.c.debt, 0)
    wrong = (
        select(
            a.id,
            a.cash_available,
            a.cash_held,
            a.debt,
            cash.label("cash_entries"),
            held.label("held_entries"),
            debt.label("debt_entries"),
        )
        .outerjoin(sums, sums.c.account_id == a.id)
        .where(or_(a.cash_available != cash, a.cash_held != held, a.debt != -debt))
        .order_by(a.id)
        .limit(limit)
    )
    for row in conn.execute(wrong):
        problems = []
        if row.cash_available != row.cash_entries:
            problems.append(
                f"cash_available is {row.cash_available} "
                f"but its cash entries sum to {row.cash_entries}"
            )
        if row.cash_held != row.held_entries:
            problems.append(
                f"cash_held is {row.cash_held} but its held entries sum to {row.held_entries}"
            )
        if row.debt != -row.debt_entries:
            problems.append(
                f"debt is {row.debt} but its debt entries sum to {row.debt_entries} "
                "(debt is their negation)"
            )
        yield f"account {row.id}: " + "; ".join(problems)
    orphans = (
        select(e.account_id, func.count().label("n"))
        .outerjoin(accounts, a.id == e.account_id)
        .where(e.book.in_([b.value for b in books]), a.id.is_(None))
        .group_by(e.account_id)
        .order_by(e.account_id)
        .limit(limit)
    )
    for account_id, n in conn.execute(orphans):
        yield (
            f"{_plural(n, 'entry')} on cash, held or debt name account {account_id}, "
            "which does not exist"
        )


def _lot_balances(conn: Connection, limit: int) -> Iterator[str]:
    sums = (
        select(e.lot_id, func.sum(e.amount).label("total"))
        .where(e.book == Book.CREDIT.value)
        .group_by(e.lot_id)
        .subquery()
    )
    total = func.coalesce(sums.c.total, 0)
    wrong = (
        select(lot.id, lot.remaining, total.label("total"))
        .outerjoin(sums, sums.c.lot_id == lot.id)
        .where(lot.remaining != total)
        .order_by(lot.id)
        .limit(limit)
    )
    for lot_id, remaining, entries_total in conn.execute(wrong):
        yield f"lot {lot_id}: remaining is {remaining}; its credit entries sum to {entries_total}"


def _lot_ranges(conn: Connection, limit: int) -> Iterator[str]:
    wrong = (
        select(lot.id, lot.remaining, lot.original)
        .where(or_(lot.remaining < 0, lot.remaining > lot.original))
        .order_by(lot.id)
        .limit(limit)
    )
    for lot_id, remaining, original in conn.execute(wrong):
        yield f"lot {lot_id}: remaining {remaining} is outside 0..{original} (its original)"


def _closed_lots_empty(conn: Connection, limit: int) -> Iterator[str]:
    wrong = (
        select(lot.id, lot.status, lot.remaining)
        .where(lot.status != LotStatus.ACTIVE.value, lot.remaining != 0)
        .order_by(lot.id)
        .limit(limit)
    )
    for lot_id, status, remaining in conn.execute(wrong):
        yield f"lot {lot_id} is {status} but still has {remaining} remaining"


def _balances_not_negative(conn: Connection, limit: int) -> Iterator[str]:
    wrong = (
        select(a.id, a.cash_available, a.cash_held, a.debt)
        .where(or_(a.cash_available < 0, a.cash_held < 0, a.debt < 0))
        .order_by(a.id)
        .limit(limit)
    )
    for account_id, cash, held, debt in conn.execute(wrong):
        negative = [
            f"{name} is {value}"
            for name, value in (("cash_available", cash), ("cash_held", held), ("debt", debt))
            if value < 0
        ]
        yield f"account {account_id}: " + ", ".join(negative)


def _held_matches_refunds(conn: Connection, limit: int) -> Iterator[str]:
    holding = (
        select(refunds.c.account_id, func.sum(refunds.c.amount).label("total"))
        .where(refunds.c.status.in_(sorted(s.value for s in HOLDING)))
        .group_by(refunds.c.account_id)
        .subquery()
    )
    total = func.coalesce(holding.c.total, 0)
    wrong = (
        select(a.id, a.cash_held, total.label("total"))
        .outerjoin(holding, holding.c.account_id == a.id)
        .where(a.cash_held != total)
        .order_by(a.id)
        .limit(limit)
    )
    for account_id, held, refunds_total in conn.execute(wrong):
        yield (
            f"account {account_id}: cash_held is {held} but its pending and approved refunds "
            f"come to {refunds_total}"
        )


def _promotion_counters(conn: Connection, limit: int) -> Iterator[str]:
    """Each promotion's counters agree with its redemptions and the credit it granted."""
    r = redemptions.c
    counted = (
        select(
            r.promotion_id,
            func.count().label("n"),
            func.coalesce(func.sum(r.reserved), 0).label("reserved"),
        )
        .group_by(r.promotion_id)
        .subquery()
    )
    granted = (
        select(lot.promotion_id, func.sum(lot.original).label("granted"))
        .where(lot.promotion_id.is_not(None))
        .group_by(lot.promotion_id)
        .subquery()
    )
    p = promotions.c
    n = func.coalesce(counted.c.n, 0)
    committed = func.coalesce(counted.c.reserved, 0) + func.coalesce(granted.c.granted, 0)
    wrong = (
        select(
            p.id,
            p.redemptions_count,
            n.label("n"),
            p.budget_committed,
            committed.label("committed"),
        )
        .outerjoin(counted, counted.c.promotion_id == p.id)
        .outerjoin(granted, granted.c.promotion_id == p.id)
        .where(or_(p.redemptions_count != n, p.budget_committed != committed))
        .order_by(p.id)
        .limit(limit)
    )
    for promotion_id, count, real_n, budget_committed, real_committed in conn.execute(wrong):
        if count != real_n:
            yield f"promotion {promotion_id}: redemptions_count is {count} but it has {real_n}"
        if budget_committed != real_committed:
            yield (
                f"promotion {promotion_id}: budget_committed is {budget_committed} but its lots "
                f"and reservations come to {real_committed}"
            )


CHECKS: tuple[Check, ...] = (
    Check(
        "transactions_balanced",
        "every transaction has 2+ entries summing to zero",
        _transactions_balanced,
    ),
    Check(
        "entries_belong",
        "every entry is on its transaction's account and its lot's",
        _entries_belong,
    ),
    Check(
        "transaction_summaries",
        "transactions' cash_delta and credit_delta match their entries",
        _transaction_summaries,
    ),
    Check(
        "transaction_currency",
        "every transaction is in its account's currency",
        _transaction_currency,
    ),
    Check(
        "account_balances",
        "accounts' cash, held and debt equal the sums of their entries",
        _account_balances,
    ),
    Check("lot_balances", "lots' remaining equals the sum of their credit entries", _lot_balances),
    Check("lot_ranges", "0 <= remaining <= original for every lot", _lot_ranges),
    Check(
        "closed_lots_empty",
        "used, expired, voided and forfeited lots have nothing remaining",
        _closed_lots_empty,
    ),
    Check(
        "balances_not_negative",
        "no account's cash, held or debt is negative",
        _balances_not_negative,
    ),
    Check(
        "held_matches_refunds",
        "cash_held equals the account's pending and approved refunds",
        _held_matches_refunds,
    ),
    Check(
        "audit_chain",
        "the audit trail's records follow one another, unaltered and unbroken",
        audit.chain_breaks,
    ),
    Check(
        "promotion_counters",
        "promotions' redemption counts and committed budget match their redemptions and lots",
        _promotion_counters,
    ),
)


def run_check(uow: UnitOfWork, check: Check, *, limit: int = MAX_LISTED) -> list[Violation]:
    """The violations of one check: at most `limit` listed, then a note if there are more."""
    messages = list(islice(check.find(uow.conn, limit + 1), limit + 1))
    found = [Violation(check.name, m) for m in messages[:limit]]
    if len(messages) > limit:
        note = f"more than {limit} violations; only the first {limit} are listed"
        found.append(Violation(check.name, note))
    return found


def verify_ledger(
    uow: UnitOfWork,
    *,
    checks: Sequence[Check] = CHECKS,
    limit: int = MAX_LISTED,
    on_check: Callable[[Check, list[Violation]], None] | None = None,
) -> list[Violation]:
    """Run `checks` in order; every violation found (empty means the ledger verifies).

    `on_check(check, violations)` is called after each check, e.g. to drive a progress display.
    """
    found: list[Violation] = []
    for check in checks:
        violations = run_check(uow, check, limit=limit)
        if on_check is not None:
            on_check(check, violations)
        found.extend(violations)
    return found
