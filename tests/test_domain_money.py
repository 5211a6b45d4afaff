"""Money in integer minor units: formatting, parsing, amount and currency checks, `Money` values.

Pure domain tests: no database, no clock.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adledger.domain.errors import CurrencyMismatch, InvalidAmount, InvalidInput, UnknownCurrency
from adledger.domain.money import (
    EXPONENTS,
    MAX_AMOUNT,
    Money,
    check_amount,
    check_currency,
    currency_exponent,
    format_money,
    parse_money,
)


def make_money(**overrides: Any) -> Money:
    fields: dict[str, Any] = {"amount": 1_000, "currency": "USD"}
    fields.update(overrides)
    return Money(**fields)


currencies = st.sampled_from(sorted(EXPONENTS))
amounts = st.integers(min_value=-MAX_AMOUNT, max_value=MAX_AMOUNT)


# --- currencies ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "exponent"),
    [("USD", 2), ("EUR", 2), ("JPY", 0), ("KRW", 0), ("KWD", 3), ("BHD", 3), ("CLF", 4)],
)
def test_currency_exponent_follows_iso_4217(currency: str, exponent: int) -> None:
    assert currency_exponent(currency) == exponent


@pytest.mark.parametrize("code", ["ABC", "XXX", "usd", "Usd", "US", "USDX", "", " USD", "U$D"])
def test_unknown_currency_codes_are_refused(code: str) -> None:
    with pytest.raises(UnknownCurrency):
        check_currency(code)
    with pytest.raises(UnknownCurrency):
        currency_exponent(code)


@pytest.mark.parametrize("code", [None, 840, b"USD", ["USD"]])
def test_a_currency_that_is_not_a_string_is_refused(code: object) -> None:
    with pytest.raises(UnknownCurrency):
        check_currency(code)


def test_a_known_currency_code_is_returned_unchanged() -> None:
    assert check_currency("KWD") == "KWD"


def test_every_listed_currency_code_is_three_upper_case_letters_with_a_sane_exponent() -> None:
    for code, exponent in EXPONENTS.items():
        assert len(code) == 3 and code.isascii() and code.isalpha() and code.isupper(), code
        assert exponent in (0, 2, 3, 4), code


def test_the_names_of_the_exponent_groups_are_not_currencies() -> None:
    assert {"ZERO", "TWO", "THREE", "FOUR"}.isdisjoint(EXPONENTS)


def test_unknown_currency_is_an_invalid_input_with_a_stable_code() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_currency("ABC")
    assert caught.value.code == "unknown_currency"


# --- check_amount -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [1, 250, MAX_AMOUNT])
def test_an_integer_amount_in_range_is_accepted(value: int) -> None:
    assert check_amount(value) == value


@pytest.mark.parametrize("value", [0, -1, -MAX_AMOUNT, MAX_AMOUNT + 1, 10**30])
def test_an_amount_outside_one_to_ten_to_the_fifteen_is_refused(value: int) -> None:
    with pytest.raises(InvalidAmount):
        check_amount(value)


@pytest.mark.parametrize(
    "value",
    [1.0, 1.5, float("nan"), float("inf"), True, False, "100", "1e3", None, Decimal("100"), [1]],
)
def test_an_amount_that_is_not_a_plain_integer_is_refused(value: object) -> None:
    with pytest.raises(InvalidAmount):
        check_amount(value)


def test_zero_is_accepted_only_when_allowed() -> None:
    assert check_amount(0, allow_zero=True) == 0
    with pytest.raises(InvalidAmount):
        check_amount(-1, allow_zero=True)


def test_invalid_amount_carries_its_stable_code() -> None:
    with pytest.raises(InvalidAmount) as caught:
        check_amount(0)
    assert caught.value.code == "invalid_amount"


@given(st.integers())
def test_check_amount_accepts_exactly_the_contract_range(value: int) -> None:
    if 0 < value <= MAX_AMOUNT:
        assert check_amount(value) == value
    else:
        with pytest.raises(InvalidAmount):
            check_amount(value)


# --- format_money -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (123456, "USD", "$1,234.56"),
        (5, "USD", "$0.05"),
        (0, "USD", "$0.00"),
        (100_000_000_00, "USD", "$100,000,000.00"),
        (-123456, "USD", "-$1,234.56"),
        (1234567, "JPY", "¥1,234,567"),
        (-500, "JPY", "-¥500"),
        (1500, "KWD", "KWD 1.500"),
        (1_234_567, "KWD", "KWD 1,234.567"),
        (-7, "KWD", "-KWD 0.007"),
        (12345, "EUR", "€123.45"),
        (12345, "CHF", "CHF 123.45"),
        (12345, "CLF", "CLF 1.2345"),
    ],
)
def test_format_money_writes_major_units_with_thousands_separators(
    amount: int, currency: str, text: str
) -> None:
    assert format_money(amount, currency) == text


def test_format_money_refuses_an_unknown_currency() -> None:
    with pytest.raises(UnknownCurrency):
        format_money(100, "ABC")


# --- parse_money --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("12.34", "USD", 1234),
        ("12", "USD", 1200),
        ("0.05", "USD", 5),
        ("1,234.56", "USD", 123456),
        ("1,000,000", "USD", 100_000_000),
        ("$1,234.56", "USD", 123456),
        ("  7.10 ", "USD", 710),
        ("USD 7.10", "USD", 710),
        ("-12.34", "USD", -1234),
        ("-$1,234.56", "USD", -123456),
        ("-KWD 1.500", "KWD", -1500),
        ("$-12.34", "USD", -1234),
        ("1.230", "USD", 123),
        ("1000", "JPY", 1000),
        ("¥1,000", "JPY", 1000),
        ("-500", "JPY", -500),
        ("1.5", "KWD", 1500),
        ("1.234", "KWD", 1234),
        ("KWD 1,234.567", "KWD", 1_234_567),
        ("-0.007", "KWD", -7),
    ],
)
def test_parse_money_reads_major_units_into_minor_units(
    text: str, currency: str, minor: int
) -> None:
    assert parse_money(text, currency) == minor


@pytest.mark.parametrize(
    ("text", "currency"),
    [
        ("1.234", "USD"),
        ("0.001", "USD"),
        ("-1.001", "USD"),
        ("100.5", "JPY"),
        ("0.1", "JPY"),
        ("1.2345", "KWD"),
    ],
)
def test_parse_money_refuses_more_decimals_than_the_currency_has(text: str, currency: str) -> None:
    with pytest.raises(InvalidAmount):
        parse_money(text, currency)


@pytest.mark.parametrize(
    "text",
    ["", "   ", "abc", "12.3.4", "1 000", "0x10", "$", "twelve", "12$", "1..2", "--1"],
)
def test_parse_money_refuses_what_is_not_a_number(text: str) -> None:
    with pytest.raises(InvalidAmount):
        parse_money(text, "USD")


@pytest.mark.parametrize(
    "text", ["NaN", "nan", "sNaN", "-NaN", "Infinity", "-Infinity", "inf", "$Infinity"]
)
def test_parse_money_refuses_nan_and_infinity(text: str) -> None:
    with pytest.raises(InvalidAmount):
        parse_money(text, "USD")


def test_parse_money_refuses_an_unknown_currency() -> None:
    with pytest.raises(UnknownCurrency):
        parse_money("1.00", "ABC")


@given(currency=currencies, amount=amounts)
def test_parse_money_reads_back_what_format_money_wrote(currency: str, amount: int) -> None:
    assert parse_money(format_money(amount, currency), currency) == amount


@pytest.mark.parametrize(("amount", "currency"), [(-1234, "USD"), (-500, "JPY"), (-1500, "KWD")])
def test_parse_money_reads_back_a_negative_amount_format_money_wrote(
    amount: int, currency: str
) -> None:
    assert parse_money(format_money(amount, currency), currency) == amount


@pytest.mark.parametrize("text", ["1e3", "1E-2", "1e999999999"])
def test_parse_money_refuses_exponent_notation(text: str) -> None:
    with pytest.raises(InvalidAmount):
        parse_money(text, "USD")


@pytest.mark.parametrize(("text", "currency"), [("--$5", "USD"), ("--KWD 1.500", "KWD")])
def test_parse_money_refuses_a_doubled_sign(text: str, currency: str) -> None:
    with pytest.raises(InvalidAmount):
        parse_money(text, currency)


def test_parse_money_never_rounds_a_long_number_silently() -> None:
    with pytest.raises(InvalidAmount):
        parse_money("9" * 30 + ".001", "USD")


@pytest.mark.parametrize("text", ["12,34", "1,2,3", "1,0000.00", ",100", "1,000,00"])
def test_parse_money_refuses_a_misplaced_thousands_separator(text: str) -> None:
    with pytest.raises(InvalidAmount):
        parse_money(text, "USD")


# --- Money --------------------------------------------------------------------------------------


def test_money_adds_and_subtracts_in_one_currency() -> None:
    total = make_money(amount=1_000) + make_money(amount=250)
    assert total == make_money(amount=1_250)
    assert total - make_money(amount=1_250) == make_money(amount=0)


def test_money_negates_and_compares_in_one_currency() -> None:
    small, large = make_money(amount=1), make_money(amount=2)
    assert -small == make_money(amount=-1)
    assert small < large and small <= large and small <= small
    assert large > small and large >= small


def test_money_is_truthy_only_when_non_zero() -> None:
    assert make_money(amount=1)
    assert not make_money(amount=0)


def test_money_prints_in_the_advertisers_terms() -> None:
    assert str(make_money(amount=123456)) == "$1,234.56"
    assert str(make_money(amount=1500, currency="KWD")) == "KWD 1.500"
    assert str(make_money(amount=1500, currency="JPY")) == "¥1,500"


@pytest.mark.parametrize("amount", [1.0, 0.1, float("nan"), True, "100", Decimal("1"), None])
def test_money_refuses_anything_but_an_integer_amount(amount: object) -> None:
    with pytest.raises(InvalidAmount):
        make_money(amount=amount)


@pytest.mark.parametrize("currency", ["ABC", "usd", "", None])
def test_money_refuses_an_unknown_currency(currency: object) -> None:
    with pytest.raises(UnknownCurrency):
        make_money(currency=currency)


@pytest.mark.parametrize(
    "combine",
    [operator.add, operator.sub, operator.lt, operator.le, operator.gt, operator.ge],
    ids=["add", "sub", "lt", "le", "gt", "ge"],
)
def test_money_refuses_to_mix_currencies(combine: Callable[[Money, Money], object]) -> None:
    with pytest.raises(CurrencyMismatch):
        combine(make_money(currency="USD"), make_money(currency="EUR"))


def test_money_of_different_currencies_is_never_equal() -> None:
    assert make_money(amount=100, currency="USD") != make_money(amount=100, currency="EUR")


def test_money_is_immutable() -> None:
    money = make_money()
    with pytest.raises(AttributeError):
        money.amount = 5  # type: ignore[misc]


@given(currency=currencies, a=amounts, b=amounts)
def test_money_arithmetic_is_integer_exact(currency: str, a: int, b: int) -> None:
    x, y = Money(a, currency), Money(b, currency)
    assert (x + y).amount == a + b
    assert (x + y - y) == x
    assert (-x).amount == -a and -x + x == Money(0, currency)
    assert (x < y) == (a < b)
    assert isinstance((x + y).amount, int)
