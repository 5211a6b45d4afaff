"""Money in integer minor units, with ISO 4217 currency exponents.

Amounts are never floats: a `Money` holds an `int` count of the currency's minor unit (cents for
USD, yen for JPY, fils for KWD) and refuses to be mixed with another currency.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from adledger.domain.errors import CurrencyMismatch, InvalidAmount, UnknownCurrency

MAX_AMOUNT = 10**15

# ISO 4217 active codes and the number of digits of their minor unit.
_ZERO = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_THREE = "BHD IQD JOD KWD LYD OMR TND"
_FOUR = "CLF UYW"
_TWO = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN "
    "BWP BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN ETB "
    "EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR "
    "KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR "
    "MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK "
    "SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN "
    "UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG ZWL"
)

EXPONENTS: dict[str, int] = {
    **{code: 0 for code in _ZERO.split()},
    **{code: 2 for code in _TWO.split()},
    **{code: 3 for code in _THREE.split()},
    **{code: 4 for code in _FOUR.split()},
}

# Digits with optional thousands separators in groups of three, and an optional fraction.
_AMOUNT_TEXT = re.compile(r"(?P<whole>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<frac>\d+))?", re.ASCII)

_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "KRW": "₩"}


def currency_exponent(code: str) -> int:
    """Digits of the minor unit of an ISO 4217 code; `UnknownCurrency` if it is not one."""
    try:
        return EXPONENTS[code]
    except KeyError:
        raise UnknownCurrency(f"{code!r} is not an ISO 4217 currency code") from None


def check_currency(code: object) -> str:
    """Return `code` if it is a known ISO 4217 code (upper case), else raise `UnknownCurrency`."""
    if not isinstance(code, str) or code not in EXPONENTS:
        raise UnknownCurrency(f"{code!r} is not an ISO 4217 currency code")
    return code


def check_amount(value: object, *, allow_zero: bool = False) -> int:
    """Return `value` if it is an integer amount in (0, 10^15]; refuse floats, bools and strings."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidAmount("amounts are integers in the currency's minor units")
    low = 0 if allow_zero else 1
    if not low <= value <= MAX_AMOUNT:
        raise InvalidAmount(f"amount must be between {low} and {MAX_AMOUNT}")
    return value


@dataclass(frozen=True, slots=True)
class Money:
    """An amount of one currency in integer minor units."""

    amount: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise InvalidAmount("Money holds an integer count of minor units, never a float")
        check_currency(self.currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __bool__(self) -> bool:
        return self.amount != 0

    def __str__(self) -> str:
        return format_money(self.amount, self.currency)


def format_money(amount: int, currency: str) -> str:
    """Format minor units for people: `format_money(123456, "USD") == "$1,234.56"`.

    Currencies without a common symbol are written with their code: `"KWD 1.500"`.
    """
    exp = currency_exponent(currency)
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**exp)
    number = f"{whole:,}" + (f".{frac:0{exp}d}" if exp else "")
    symbol = _SYMBOLS.get(currency)
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{currency} {number}"


def parse_money(text: str, currency: str) -> int:
    """Parse a major-unit decimal string ("12.34", "$1,000", "-5") into minor units of `currency`.

    Exact integer arithmetic; refuses more decimal places than the currency has ("1.234" is not
    a USD amount), misplaced thousands separators ("12,34") and anything beyond 10^15 units.
    """
    exp = currency_exponent(currency)
    body = text.strip()
    sign = 1
    if body.startswith("-"):
        sign, body = -1, body[1:].lstrip()
    for sym in (_SYMBOLS.get(currency, ""), currency):
        if sym and body.startswith(sym):
            body = body[len(sym) :].strip()
            break
    if sign == 1 and body.startswith("-"):  # "$-12.34"
        sign, body = -1, body[1:].lstrip()
    match = _AMOUNT_TEXT.fullmatch(body)
    if match is None:
        raise InvalidAmount(f"{text!r} is not an amount")
    whole, frac = match.group("whole").replace(",", ""), match.group("frac") or ""
    if len(frac.rstrip("0")) > exp:
        raise InvalidAmount(f"{currency} has {exp} decimal places; {text!r} has more")
    frac = frac[:exp].ljust(exp, "0")
    if len(whole) > 20:
        raise InvalidAmount(f"{text!r} is beyond the largest amount")
    minor: int = int(whole) * 10**exp + (int(frac) if frac else 0)
    if minor > MAX_AMOUNT:
        raise InvalidAmount(f"{text!r} is beyond the largest amount ({MAX_AMOUNT} minor units)")
    return sign * minor
