"""The double-entry ledger: books, legs and balanced transactions.

Every movement of value is one `Transaction` of two or more `Leg`s that sum to zero. Amounts are
signed with one convention for every book: what the platform owes (advertiser cash, held cash,
credit lots, revenue) grows positive; what it holds or spends (payments received, promotion
expense, overdelivery written off, debt owed to it) grows negative.

Advertiser books, one per ad account (and one per credit lot):
    cash     prepaid funds available to spend or refund
    held     prepaid funds held for pending or approved refunds
    debt     what the advertiser owes after a reversed deposit (stored as a negative balance)
    credit   one promotional credit lot (legs carry the lot id)

Platform books, one per currency:
    platform:payments      money received from (positive out, negative in) the payment service
    platform:tax           tax collected with deposits, owed to tax authorities
    platform:revenue       ad delivery recognised
    platform:promotion     promotional credit granted (an expense)
    platform:breakage      credit that expired unspent
    platform:voided        credit voided by staff
    platform:forfeited     credit forfeited (account closed, clawed back)
    platform:overdelivery  delivery no funds covered, written off
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from adledger.domain.errors import UnbalancedTransaction
from adledger.domain.lots import Funding


class Book(StrEnum):
    CASH = "cash"
    HELD = "held"
    DEBT = "debt"
    CREDIT = "credit"
    PAYMENTS = "platform:payments"
    TAX = "platform:tax"
    REVENUE = "platform:revenue"
    PROMOTION = "platform:promotion"
    BREAKAGE = "platform:breakage"
    VOIDED = "platform:voided"
    FORFEITED = "platform:forfeited"
    OVERDELIVERY = "platform:overdelivery"


ADVERTISER_BOOKS = frozenset({Book.CASH, Book.HELD, Book.DEBT, Book.CREDIT})


class Kind(StrEnum):
    DEPOSIT = "deposit"
    CREDIT_GRANT = "credit_grant"
    SPEND = "spend"
    EXPIRY = "expiry"
    VOID = "void"
    FORFEIT = "forfeit"
    CLAWBACK = "clawback"
    REFUND_HOLD = "refund_hold"
    REFUND_RELEASE = "refund_release"
    REFUND_PAYOUT = "refund_payout"
    DEPOSIT_REVERSAL = "deposit_reversal"
    LAPSE = "lapse"


# Kinds of record that belong in an account's history but move no value: they have no legs.
MEMO_KINDS = frozenset({Kind.LAPSE})


class Leg(NamedTuple):
    """One side of a transaction: an amount into (positive) or out of (negative) a book, and the
    lot, for credit. A tuple: immutable, and cheap to make by the million on the spend path."""

    book: Book
    amount: int
    lot_id: str | None = None


_CASH, _CREDIT = Book.CASH, Book.CREDIT


class _TransactionFields(NamedTuple):
    kind: Kind
    legs: tuple[Leg, ...]
    description: str
    cash_delta: int
    credit_delta: int
    lot_id: str | None


class Transaction(_TransactionFields):
    """A balanced set of legs. Construction refuses anything that does not sum to zero.

    Made as `Transaction(kind, legs, description)`. Zero legs are dropped. `cash_delta`,
    `credit_delta` (what the transaction moves in the account's cash and credit books) and
    `lot_id` (the lot it touched, when exactly one) are worked out once, here.

    An immutable tuple, validated in `__new__`: one is made for every spend event, and a
    frozen dataclass cost three times as much to make.
    """

    __slots__ = ()

    def __new__(cls, kind: Kind, legs: tuple[Leg, ...], description: str) -> Transaction:
        if kind in MEMO_KINDS:
            raise UnbalancedTransaction(f"{kind} moves no value: it is a Memo")
        total = cash = credit = count = 0
        lot_id: str | None = None
        several_lots = False
        for book, amount, leg_lot in legs:  # one pass: this runs for every spend event
            if amount == 0:
                continue
            count += 1
            total += amount
            if book is _CASH:
                cash += amount
            elif book is _CREDIT:
                credit += amount
            if leg_lot:
                if lot_id is None:
                    lot_id = leg_lot
                elif leg_lot != lot_id:
                    several_lots = True
        if count < 2:
            raise UnbalancedTransaction(f"{kind} needs at least two non-zero legs")
        if total != 0:
            raise UnbalancedTransaction(f"{kind} legs sum to {total}")
        kept = tuple(legs)
        if count != len(kept):
            kept = tuple(leg for leg in kept if leg.amount != 0)
        return super().__new__(
            cls, kind, kept, description, cash, credit, None if several_lots else lot_id
        )

    def with_description(self, description: str) -> Transaction:
        return self._replace(description=description)


@dataclass(frozen=True, slots=True)
class Memo:
    """A record in an account's history that moves no value (a promotion lapsing): no legs."""

    kind: Kind
    description: str
    legs: tuple[Leg, ...] = ()
    cash_delta: int = 0
    credit_delta: int = 0
    lot_id: str | None = None

    def with_description(self, description: str) -> Memo:
        return dataclasses.replace(self, description=description)

    def __post_init__(self) -> None:
        if self.kind not in MEMO_KINDS or self.legs:
            raise UnbalancedTransaction(f"{self.kind} is not a memo: it needs balanced legs")


def lapse(promotion_name: str, deadline_text: str, progress_text: str | None) -> Memo:
    why = f"Promotion {promotion_name!r} lapsed unearned: its window ended {deadline_text}"
    return Memo(Kind.LAPSE, why + (f" ({progress_text})" if progress_text else ""))


def deposit(amount: int, tax: int, reference: str, *, debt: int = 0) -> Transaction:
    """Prepaid funds in; tax beside them. What the account owes (`debt`) is paid off first."""
    payoff = min(debt, amount)
    legs = [
        Leg(Book.CASH, amount - payoff),
        Leg(Book.DEBT, payoff),
        Leg(Book.PAYMENTS, -(amount + tax)),
        Leg(Book.TAX, tax),
    ]
    why = f"Deposit {reference}" + (" (pays off the debt first)" if payoff else "")
    return Transaction(Kind.DEPOSIT, tuple(legs), why)


def deposit_reversal(
    amount: int, tax: int, cash_available: int, reference: str, reason: str
) -> Transaction:
    """A chargeback or failed payment: the deposit (and its tax) goes back to the payment service.

    Cash falls by the amount; what cash can't cover becomes debt the advertiser owes.
    """
    from_cash = min(amount, max(cash_available, 0))
    legs = [
        Leg(Book.CASH, -from_cash),
        Leg(Book.DEBT, -(amount - from_cash)),
        Leg(Book.TAX, -tax),
        Leg(Book.PAYMENTS, amount + tax),
    ]
    return Transaction(
        Kind.DEPOSIT_REVERSAL, tuple(legs), f"Deposit {reference} reversed: {reason}"
    )


def credit_grant(lot_id: str, amount: int, reason: str) -> Transaction:
    return Transaction(
        Kind.CREDIT_GRANT,
        (Leg(Book.CREDIT, amount, lot_id), Leg(Book.PROMOTION, -amount)),
        f"Credit granted: {reason}",
    )


def spend(funding: Funding, event_id: str) -> Transaction:
    """Ad delivery: credit and cash drawn down, revenue recognised, overdelivery written off."""
    legs = [Leg(Book.CREDIT, -take, lot_id) for lot_id, take in funding.lots]
    if funding.cash_used:  # (zero legs would be dropped anyway: skip making them, hot path)
        legs.append(Leg(Book.CASH, -funding.cash_used))
    if funding.unfunded:
        legs.append(Leg(Book.OVERDELIVERY, -funding.unfunded))
    legs.append(Leg(Book.REVENUE, funding.total))
    return Transaction(Kind.SPEND, tuple(legs), f"Ad spend {event_id}")


def lot_closing(kind: Kind, lot_id: str, amount: int, description: str) -> Transaction:
    """The remainder of a lot leaves: expiry (breakage), void, forfeit or clawback."""
    book = {
        Kind.EXPIRY: Book.BREAKAGE,
        Kind.VOID: Book.VOIDED,
        Kind.FORFEIT: Book.FORFEITED,
        Kind.CLAWBACK: Book.FORFEITED,
    }[kind]
    return Transaction(kind, (Leg(Book.CREDIT, -amount, lot_id), Leg(book, amount)), description)


def refund_hold(amount: int, refund_id: str) -> Transaction:
    return Transaction(
        Kind.REFUND_HOLD,
        (Leg(Book.CASH, -amount), Leg(Book.HELD, amount)),
        f"Held for refund {refund_id}",
    )


def refund_release(amount: int, refund_id: str, why: str) -> Transaction:
    return Transaction(
        Kind.REFUND_RELEASE,
        (Leg(Book.HELD, -amount), Leg(Book.CASH, amount)),
        f"Refund {refund_id} {why}: hold released",
    )


def refund_payout(amount: int, refund_id: str) -> Transaction:
    return Transaction(
        Kind.REFUND_PAYOUT,
        (Leg(Book.HELD, -amount), Leg(Book.PAYMENTS, amount)),
        f"Refund {refund_id} paid to the original payment method",
    )
