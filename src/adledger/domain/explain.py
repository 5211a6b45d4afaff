"""Plain-English explanations of a balance and of a refused withdrawal, with the account's numbers.

Pure functions over `BalanceFacts`: amounts are written for the account's currency
(`format_money`) and times in the account's own time zone, so an advertiser reads "$120.00" and
"15 Dec 2026 at 18:00 EST", never minor units or UTC instants.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from adledger.domain.money import format_money

MAX_LOTS_NAMED = 5


class RefundBlock(StrEnum):
    """Why no refund can be requested right now (the same codes a refund request would get)."""

    CLOSED = "account_closed"
    NOT_IN_GOOD_STANDING = "account_not_in_good_standing"
    RECENT_SPEND = "recent_spend"


@dataclass(frozen=True, slots=True)
class LotFacts:
    """One active credit lot, as the explanation needs it."""

    remaining: int
    effective_at: datetime
    expires_at: datetime
    campaign_id: str | None = None
    source: str = "manual"


@dataclass(frozen=True, slots=True)
class BalanceFacts:
    """Everything the explanation says, computed by the caller from stored balances."""

    currency: str
    timezone: str
    as_of: datetime
    status: str
    cash_available: int
    cash_held: int
    credit_available: int
    refundable: int
    debt: int = 0
    lots: tuple[LotFacts, ...] = ()
    refunds_in_progress: int = 0
    block: RefundBlock | None = None
    last_spend_at: datetime | None = None
    refunds_open_at: datetime | None = None
    refund_closes_account: bool = False

    @property
    def spendable(self) -> int:
        return self.cash_available + self.credit_available


# --- formatting -------------------------------------------------------------------------------


def format_time(value: datetime, timezone: str) -> str:
    """`15 Dec 2026 at 18:00 EST`: the instant in the account's zone, with the zone's abbreviation.

    Zones without a lettered abbreviation are written as an offset: `UTC+04`.
    """
    local = value.astimezone(ZoneInfo(timezone))
    abbreviation = local.tzname() or timezone
    if abbreviation[:1] in "+-":
        abbreviation = f"UTC{abbreviation}"
    return f"{local.day} {local:%b %Y} at {local:%H:%M} {abbreviation}"


def format_duration(seconds: int) -> str:
    """`3 hours`, `90 minutes`, `1 hour 30 minutes`, `45 seconds`."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if secs or not (hours or minutes):
        return _plural(seconds, "second")
    if hours and minutes:
        return f"{_plural(hours, 'hour')} {_plural(minutes, 'minute')}"
    return _plural(hours, "hour") if hours else _plural(minutes, "minute")


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


# --- the balance ------------------------------------------------------------------------------


def explain_balance(facts: BalanceFacts) -> str:
    """What can be spent and refunded now, what is credit and when it expires, and why none of
    it can be withdrawn — in a few sentences with this account's numbers and dates."""
    money = _money(facts.currency)
    parts: list[str] = []
    if facts.status == "closed":
        parts.append("This account is closed: it takes no deposits, credit or spend.")
    elif facts.spendable == 0:
        parts.append(
            "Nothing is left to spend (the account is depleted), so ads stop delivering until "
            "funds are added."
        )
    parts.append(f"Prepaid funds: {money(facts.cash_available)} available.")
    if facts.cash_held:
        parts.append(_held_sentence(facts))
    parts.append(refund_sentence(facts))
    parts.extend(_credit_sentences(facts))
    parts.append(
        f"Nothing can be withdrawn (withdrawable is {money(0)}): prepaid funds come back only as "
        "an approved refund to the original payment method, and credit never becomes cash."
    )
    return " ".join(parts)


def refund_sentence(facts: BalanceFacts) -> str:
    """How much a refund request could take now, or why it could take nothing."""
    money = _money(facts.currency)
    if facts.block is RefundBlock.CLOSED:
        return "No refund can be requested on a closed account."
    if facts.block is RefundBlock.NOT_IN_GOOD_STANDING:
        if facts.debt:
            return (
                f"No refund can be requested while the account owes {money(facts.debt)} after a "
                "reversed payment; a deposit must cover that first."
            )
        return "No refund can be requested while the account is suspended."
    if facts.block is RefundBlock.RECENT_SPEND:
        tz = facts.timezone
        spent = f" at {format_time(facts.last_spend_at, tz)}" if facts.last_spend_at else ""
        opens = f"at {format_time(facts.refunds_open_at, tz)}" if facts.refunds_open_at else "later"
        return (
            f"Refunds open again {opens}: spend was recorded{spent}, and a refund waits for the "
            "quiet period after the latest spend so that delivery can settle first. Until then "
            f"{money(0)} can be refunded."
        )
    if facts.refundable == 0:
        return "There are no prepaid funds to refund."
    text = (
        f"You can ask for a refund of up to {money(facts.refundable)} now; once approved it goes "
        "back to the original payment method."
    )
    bonus = sum(lot.remaining for lot in facts.lots if lot.source == "deposit_bonus")
    if bonus:
        text += (
            f" Paying a refund forfeits a matching share of the {money(bonus)} of deposit-bonus "
            "credit that recent deposits earned."
        )
    if facts.refund_closes_account:
        text += " A paid refund also closes the account and forfeits all of its credit."
    return text


def _held_sentence(facts: BalanceFacts) -> str:
    money = _money(facts.currency)
    n = facts.refunds_in_progress
    what = f"{_plural(n, 'refund')} in progress" if n else "refunds in progress"
    return (
        f"Another {money(facts.cash_held)} is held for {what}: it can't be spent or refunded "
        "again, and it comes back if a refund is rejected, canceled or fails."
    )


def _credit_sentences(facts: BalanceFacts) -> list[str]:
    money = _money(facts.currency)
    if not facts.lots:
        return ["There is no promotional credit."]
    tz = facts.timezone
    lots = sorted(facts.lots, key=lambda lot: (lot.expires_at, lot.effective_at))
    described = []
    named = lots if len(lots) <= MAX_LOTS_NAMED + 1 else lots[:MAX_LOTS_NAMED]
    for lot in named:
        amount = money(lot.remaining)
        if lot.expires_at <= facts.as_of:
            text = f"{amount} expired on {format_time(lot.expires_at, tz)} and can't be used"
        elif lot.effective_at > facts.as_of:
            text = (
                f"{amount} becomes usable on {format_time(lot.effective_at, tz)} and expires on "
                f"{format_time(lot.expires_at, tz)}"
            )
        else:
            text = f"{amount} expires on {format_time(lot.expires_at, tz)}"
        if lot.campaign_id:
            text += f" (only for campaign {lot.campaign_id})"
        described.append(text)
    rest = lots[len(named) :]
    if rest:
        described.append(
            f"{_plural(len(rest), 'more lot')} worth {money(sum(lot.remaining for lot in rest))} "
            f"expire by {format_time(rest[-1].expires_at, tz)}"
        )
    return [
        f"Promotional credit: {money(facts.credit_available)} usable now, spent before prepaid "
        f"funds. {'; '.join(described)}.",
        "Credit pays for ads only: it can't be withdrawn, refunded or turned into cash, and "
        "credit that expires is gone.",
    ]


# --- withdrawals ------------------------------------------------------------------------------


def explain_withdrawal_refusal(facts: BalanceFacts, requested: int | None = None) -> str:
    """The `detail` of the refusal every withdrawal request gets, with this account's numbers."""
    money = _money(facts.currency)
    asked = f"You asked to withdraw {money(requested)}, but w" if requested else "W"
    parts = [
        f"{asked}ithdrawals are not supported: nothing is ever paid out of an ad account except "
        "an approved refund of prepaid funds.",
        f"This account has {money(facts.cash_available)} of prepaid funds available.",
        refund_sentence(facts),
    ]
    if facts.credit_available or facts.lots:
        parts.append(
            f"Its {money(facts.credit_available)} of promotional credit pays for ads only and "
            "can't be withdrawn, refunded or turned into cash."
        )
    else:
        parts.append("Promotional credit, when granted, can't be withdrawn or turned into cash.")
    return " ".join(parts)


def _money(currency: str) -> Callable[[int], str]:
    return lambda amount: format_money(amount, currency)
