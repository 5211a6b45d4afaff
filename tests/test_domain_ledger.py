"""The double-entry ledger: transactions refuse unbalanced legs, and every builder balances.

Pure domain tests of `adledger.domain.ledger`: no database.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adledger.domain import ledger
from adledger.domain.errors import InvalidInput, UnbalancedTransaction
from adledger.domain.ledger import ADVERTISER_BOOKS, Book, Kind, Leg, Transaction
from adledger.domain.lots import Funding, LotBalance, fund

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
MAX_AMOUNT = 10**15


def make_leg(**overrides: Any) -> Leg:
    fields: dict[str, Any] = {"book": Book.CASH, "amount": 100, "lot_id": None}
    fields.update(overrides)
    return Leg(**fields)


def make_transaction(*legs: Leg, **overrides: Any) -> Transaction:
    fields: dict[str, Any] = {
        "kind": Kind.DEPOSIT,
        "legs": legs or (make_leg(amount=100), make_leg(book=Book.PAYMENTS, amount=-100)),
        "description": "test",
    }
    fields.update(overrides)
    return Transaction(**fields)


def make_funding(**overrides: Any) -> Funding:
    """A consistent funding: `credit_used` is the sum of the lot draws unless overridden."""
    fields: dict[str, Any] = {"lots": (("lot_1", 300),), "cash_used": 200, "unfunded": 0}
    fields.update(overrides)
    fields.setdefault("credit_used", sum(take for _, take in fields["lots"]))
    return Funding(**fields)


def legs_sum(txn: Transaction) -> int:
    return sum(leg.amount for leg in txn.legs)


# --- Transaction ---------------------------------------------------------------------------------


def test_a_balanced_transaction_is_accepted() -> None:
    txn = make_transaction()
    assert legs_sum(txn) == 0
    assert len(txn.legs) == 2


def test_an_unbalanced_transaction_is_refused() -> None:
    with pytest.raises(UnbalancedTransaction):
        make_transaction(make_leg(amount=100), make_leg(book=Book.PAYMENTS, amount=-99))


def test_a_transaction_of_one_leg_is_refused() -> None:
    with pytest.raises(UnbalancedTransaction):
        make_transaction(make_leg(amount=100))


def test_a_transaction_of_only_zero_legs_is_refused() -> None:
    with pytest.raises(UnbalancedTransaction):
        make_transaction(make_leg(amount=0), make_leg(book=Book.PAYMENTS, amount=0))


def test_zero_legs_are_dropped_from_a_transaction() -> None:
    txn = make_transaction(
        make_leg(amount=100),
        make_leg(book=Book.TAX, amount=0),
        make_leg(book=Book.PAYMENTS, amount=-100),
    )
    assert [leg.book for leg in txn.legs] == [Book.CASH, Book.PAYMENTS]


def test_unbalanced_transaction_is_an_invalid_input_with_a_stable_code() -> None:
    with pytest.raises(InvalidInput) as caught:
        make_transaction(make_leg(amount=1), make_leg(book=Book.PAYMENTS, amount=1))
    assert caught.value.code == "unbalanced_transaction"


def test_a_transaction_is_immutable() -> None:
    txn = make_transaction()
    with pytest.raises(AttributeError):
        txn.legs = ()  # type: ignore[misc]


def test_a_transaction_reports_its_cash_and_credit_deltas() -> None:
    txn = make_transaction(
        make_leg(book=Book.CREDIT, amount=-30, lot_id="lot_1"),
        make_leg(book=Book.CASH, amount=-70),
        make_leg(book=Book.REVENUE, amount=100),
        kind=Kind.SPEND,
    )
    assert (txn.cash_delta, txn.credit_delta) == (-70, -30)


def test_a_transaction_names_its_lot_only_when_it_touched_exactly_one() -> None:
    one = make_transaction(
        make_leg(book=Book.CREDIT, amount=50, lot_id="lot_1"),
        make_leg(book=Book.PROMOTION, amount=-50),
    )
    two = make_transaction(
        make_leg(book=Book.CREDIT, amount=-20, lot_id="lot_1"),
        make_leg(book=Book.CREDIT, amount=-30, lot_id="lot_2"),
        make_leg(book=Book.REVENUE, amount=50),
    )
    assert one.lot_id == "lot_1"
    assert two.lot_id is None
    assert make_transaction().lot_id is None


def test_advertiser_books_are_the_ones_an_advertiser_sees() -> None:
    assert {Book.CASH, Book.HELD, Book.DEBT, Book.CREDIT} == ADVERTISER_BOOKS
    assert all(book.value.startswith("platform:") for book in set(Book) - ADVERTISER_BOOKS)


books = st.sampled_from(list(Book))
leg_amounts = st.integers(min_value=-MAX_AMOUNT, max_value=MAX_AMOUNT)
legs = st.builds(
    Leg, book=books, amount=leg_amounts, lot_id=st.none() | st.sampled_from(["lot_1", "lot_2"])
)


@given(st.lists(legs, min_size=1, max_size=8), books)
def test_any_legs_closed_by_a_balancing_leg_make_a_transaction_that_sums_to_zero(
    some_legs: list[Leg], closing_book: Book
) -> None:
    closing = Leg(closing_book, -sum(leg.amount for leg in some_legs))
    all_legs = (*some_legs, closing)
    if sum(1 for leg in all_legs if leg.amount != 0) < 2:
        with pytest.raises(UnbalancedTransaction):
            Transaction(Kind.DEPOSIT, all_legs, "x")
        return
    txn = Transaction(Kind.DEPOSIT, all_legs, "x")
    assert legs_sum(txn) == 0
    assert all(leg.amount != 0 for leg in txn.legs)


@given(st.lists(legs, min_size=0, max_size=8), st.integers(min_value=1, max_value=MAX_AMOUNT))
def test_legs_that_do_not_sum_to_zero_are_always_refused(
    some_legs: list[Leg], imbalance: int
) -> None:
    closing = Leg(Book.PAYMENTS, imbalance - sum(leg.amount for leg in some_legs))
    with pytest.raises(UnbalancedTransaction):
        Transaction(Kind.DEPOSIT, (*some_legs, closing), "x")


# --- builders ------------------------------------------------------------------------------------


def test_a_deposit_puts_the_amount_in_cash_and_records_the_tax_beside_it() -> None:
    txn = ledger.deposit(10_000, 800, "pay_1")
    assert txn.kind is Kind.DEPOSIT
    assert txn.cash_delta == 10_000
    assert {leg.book: leg.amount for leg in txn.legs} == {
        Book.CASH: 10_000,
        Book.PAYMENTS: -10_800,
        Book.TAX: 800,
    }


def test_a_deposit_without_tax_has_no_tax_leg() -> None:
    txn = ledger.deposit(10_000, 0, "pay_1")
    assert Book.TAX not in {leg.book for leg in txn.legs}


def test_a_credit_grant_fills_the_lot_as_a_promotion_expense() -> None:
    txn = ledger.credit_grant("lot_1", 5_000, "welcome coupon")
    assert (txn.credit_delta, txn.cash_delta, txn.lot_id) == (5_000, 0, "lot_1")
    assert Leg(Book.PROMOTION, -5_000) in txn.legs


@pytest.mark.parametrize(
    ("kind", "book"),
    [
        (Kind.EXPIRY, Book.BREAKAGE),
        (Kind.VOID, Book.VOIDED),
        (Kind.FORFEIT, Book.FORFEITED),
        (Kind.CLAWBACK, Book.FORFEITED),
    ],
)
def test_closing_a_lot_moves_its_remainder_to_the_matching_platform_book(
    kind: Kind, book: Book
) -> None:
    txn = ledger.lot_closing(kind, "lot_1", 700, "closed")
    assert txn.kind is kind
    assert (txn.credit_delta, txn.lot_id) == (-700, "lot_1")
    assert Leg(book, 700) in txn.legs


def test_a_refund_hold_moves_cash_to_held() -> None:
    txn = ledger.refund_hold(2_500, "rf_1")
    assert {leg.book: leg.amount for leg in txn.legs} == {Book.CASH: -2_500, Book.HELD: 2_500}


def test_a_refund_release_gives_held_cash_back() -> None:
    txn = ledger.refund_release(2_500, "rf_1", "rejected")
    assert {leg.book: leg.amount for leg in txn.legs} == {Book.HELD: -2_500, Book.CASH: 2_500}


def test_a_refund_payout_pays_held_cash_out_to_the_payment_method() -> None:
    txn = ledger.refund_payout(2_500, "rf_1")
    assert {leg.book: leg.amount for leg in txn.legs} == {Book.HELD: -2_500, Book.PAYMENTS: 2_500}
    assert txn.cash_delta == 0


positive = st.integers(min_value=1, max_value=MAX_AMOUNT)


@given(
    amount=positive,
    tax=st.integers(min_value=0, max_value=MAX_AMOUNT),
    kind=st.sampled_from([Kind.EXPIRY, Kind.VOID, Kind.FORFEIT, Kind.CLAWBACK]),
)
def test_every_builder_balances_for_any_amount(amount: int, tax: int, kind: Kind) -> None:
    for txn in (
        ledger.deposit(amount, tax, "pay_1"),
        ledger.credit_grant("lot_1", amount, "grant"),
        ledger.lot_closing(kind, "lot_1", amount, "close"),
        ledger.refund_hold(amount, "rf_1"),
        ledger.refund_release(amount, "rf_1", "canceled"),
        ledger.refund_payout(amount, "rf_1"),
    ):
        assert legs_sum(txn) == 0


# --- spend ---------------------------------------------------------------------------------------


def test_spend_draws_credit_and_cash_and_recognises_revenue() -> None:
    funding = make_funding(lots=(("lot_1", 300), ("lot_2", 100)), cash_used=200, unfunded=0)
    txn = ledger.spend(funding, "evt_1")
    assert txn.kind is Kind.SPEND
    assert (txn.credit_delta, txn.cash_delta) == (-400, -200)
    assert Leg(Book.CREDIT, -300, "lot_1") in txn.legs
    assert Leg(Book.CREDIT, -100, "lot_2") in txn.legs
    assert Leg(Book.REVENUE, 600) in txn.legs
    assert Book.OVERDELIVERY not in {leg.book for leg in txn.legs}


def test_spend_no_funds_cover_is_written_off_as_overdelivery_not_debt() -> None:
    funding = make_funding(lots=(), cash_used=0, unfunded=900)
    txn = ledger.spend(funding, "evt_1")
    assert {leg.book: leg.amount for leg in txn.legs} == {
        Book.OVERDELIVERY: -900,
        Book.REVENUE: 900,
    }
    assert Book.DEBT not in {leg.book for leg in txn.legs}


def test_spend_refuses_a_funding_whose_credit_does_not_match_its_lot_draws() -> None:
    with pytest.raises(UnbalancedTransaction):
        ledger.spend(make_funding(lots=(("lot_1", 300),), credit_used=299), "evt_1")


@st.composite
def consistent_fundings(draw: st.DrawFn) -> Funding:
    takes = draw(st.lists(st.integers(min_value=1, max_value=10**12), max_size=6))
    funding = make_funding(
        lots=tuple((f"lot_{n}", take) for n, take in enumerate(takes)),
        cash_used=draw(st.integers(min_value=0, max_value=10**12)),
        unfunded=draw(st.integers(min_value=0, max_value=10**12)),
    )
    if funding.total == 0:
        return make_funding(lots=(), cash_used=0, unfunded=1)
    return funding


@given(consistent_fundings())
def test_the_spend_builder_balances_for_any_consistent_funding(funding: Funding) -> None:
    txn = ledger.spend(funding, "evt_1")
    assert legs_sum(txn) == 0
    assert txn.credit_delta == -funding.credit_used
    assert txn.cash_delta == -funding.cash_used
    assert sum(leg.amount for leg in txn.legs if leg.book is Book.REVENUE) == funding.total


@given(
    amount=st.integers(min_value=1, max_value=10_000),
    remainders=st.lists(st.integers(min_value=0, max_value=3_000), max_size=5),
    cash=st.integers(min_value=-1_000, max_value=10_000),
)
def test_the_spend_builder_balances_for_any_funding_the_funding_order_decides(
    amount: int, remainders: list[int], cash: int
) -> None:
    lots = [
        LotBalance(
            id=f"lot_{n}",
            remaining=remaining,
            effective_at=T0 - timedelta(days=1),
            expires_at=T0 + timedelta(days=1),
        )
        for n, remaining in enumerate(remainders)
    ]
    funding = fund(amount, T0, None, lots, cash)
    txn = ledger.spend(funding, "evt_1")
    assert legs_sum(txn) == 0
    assert sum(leg.amount for leg in txn.legs if leg.book is Book.REVENUE) == amount
    assert -txn.credit_delta - txn.cash_delta + funding.unfunded == amount
