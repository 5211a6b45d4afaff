"""Promotions: the pure rules of coupons, "spend X get Y" and deposit bonuses.

A promotion is redeemed with a single-use code. What a redemption earns depends on its kind:

    coupon            the reward is granted at once                   → granted
    spend_threshold   cash-funded spend after the redemption, inside  → earning → granted | lapsed
                      `window_days`, accumulates until `threshold`
    deposit_bonus     the first deposit of at least `min_deposit`     → earning → granted | lapsed
                      inside `window_days` earns the bonus

Every granted lot expires `credit_valid_days` after it is granted. `max_redemptions` and `budget`
are never exceeded: a redemption *reserves* the most it can ever grant (`Reward.most`) from the
budget when it is made; a grant turns the reservation into credit (a percent bonus may release
part of it) and a lapse releases it.

Codes: 16 characters from an alphabet without look-alikes (no 0/O, 1/I/L, U), about 78 bits of
randomness, shown as `XXXX-XXXX-XXXX-XXXX`; matching ignores case, spaces and dashes. Only a
SHA-256 digest of the normalised code is ever stored: at 78 bits, a dump of digests is no help.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from adledger.domain.errors import (
    AlreadyRedeemed,
    InvalidInput,
    NotEligible,
    PromotionExhausted,
    PromotionNotActive,
    RedemptionRefused,
)
from adledger.domain.money import MAX_AMOUNT, check_amount

CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 16
CODE_GROUP = 4
DEFAULT_WINDOW_DAYS = 60
DEFAULT_NEW_ACCOUNT_DAYS = 30
MAX_DAYS = 3660
FAILED_ATTEMPTS_LIMIT = 10
FAILED_ATTEMPTS_WINDOW = timedelta(hours=1)


class PromotionKind(StrEnum):
    COUPON = "coupon"
    SPEND_THRESHOLD = "spend_threshold"
    DEPOSIT_BONUS = "deposit_bonus"


class RedemptionStatus(StrEnum):
    GRANTED = "granted"
    EARNING = "earning"
    LAPSED = "lapsed"


# --- codes ------------------------------------------------------------------------------------


def code_bits() -> float:
    """Bits of randomness in one code."""
    return CODE_LENGTH * math.log2(len(CODE_ALPHABET))


def new_code(randbelow: Callable[[int], int] = secrets.randbelow) -> str:
    """A fresh code, grouped for reading aloud: `"7KQM-X2RT-9HPD-4WNB"`."""
    chars = "".join(CODE_ALPHABET[randbelow(len(CODE_ALPHABET))] for _ in range(CODE_LENGTH))
    return "-".join(chars[i : i + CODE_GROUP] for i in range(0, CODE_LENGTH, CODE_GROUP))


def normalize_code(text: str) -> str:
    """What a person typed, as the code it stands for: upper case, no dashes or spaces."""
    return "".join(ch for ch in text.upper() if ch not in "- \t")


def code_digest(text: str) -> str:
    """The only form in which a code is stored."""
    return hashlib.sha256(normalize_code(text).encode()).hexdigest()


# --- the promotion ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reward:
    """A fixed `amount`, or `percent` of a deposit capped at `max_amount` (deposit bonus only)."""

    amount: int | None = None
    percent: int | None = None
    max_amount: int | None = None

    @property
    def most(self) -> int:
        """The most one redemption can ever be granted: what it reserves from the budget."""
        if self.amount is not None:
            return self.amount
        assert self.max_amount is not None
        return self.max_amount

    def for_deposit(self, deposit_amount: int) -> int:
        """The bonus a qualifying deposit earns; a percent is rounded down to the minor unit."""
        if self.amount is not None:
            return self.amount
        assert self.percent is not None and self.max_amount is not None
        return min(deposit_amount * self.percent // 100, self.max_amount)


@dataclass(frozen=True, slots=True)
class Eligibility:
    new_accounts_only: bool = False
    new_account_days: int = DEFAULT_NEW_ACCOUNT_DAYS
    once_per_business: bool = True


@dataclass(frozen=True, slots=True)
class PromotionTerms:
    """What finance sets when it creates a promotion; `check()` refuses what makes no sense."""

    kind: PromotionKind
    currency: str
    reward: Reward
    credit_valid_days: int
    starts_at: datetime
    ends_at: datetime
    max_redemptions: int | None = None
    budget: int | None = None
    eligibility: Eligibility = Eligibility()
    threshold: int | None = None
    window_days: int = DEFAULT_WINDOW_DAYS
    min_deposit: int | None = None

    def check(self) -> PromotionTerms:
        """Return the terms if they are coherent, else raise `InvalidInput` naming the field."""
        kind, reward = self.kind, self.reward
        if reward.amount is not None:
            check_amount(reward.amount)
            if reward.percent is not None or reward.max_amount is not None:
                raise InvalidInput("reward is either `amount`, or `percent` with `max_amount`")
        elif kind is not PromotionKind.DEPOSIT_BONUS:
            raise InvalidInput(f"a {kind} promotion's reward needs `amount`")
        elif reward.percent is None or reward.max_amount is None:
            raise InvalidInput("a deposit bonus is `reward.amount`, or `percent` with `max_amount`")
        else:
            if not 1 <= reward.percent <= 100:
                raise InvalidInput("reward.percent is a whole percentage from 1 to 100")
            check_amount(reward.max_amount)
        for name, days in (
            ("credit_valid_days", self.credit_valid_days),
            ("window_days", self.window_days),
            ("eligibility.new_account_days", self.eligibility.new_account_days),
        ):
            if not 1 <= days <= MAX_DAYS:
                raise InvalidInput(f"{name} must be from 1 to {MAX_DAYS}")
        if self.ends_at <= self.starts_at:
            raise InvalidInput("ends_at must be after starts_at", code="invalid_time")
        if self.max_redemptions is not None and not 1 <= self.max_redemptions <= MAX_AMOUNT:
            raise InvalidInput("max_redemptions must be at least 1")
        if self.budget is not None:
            check_amount(self.budget)
            if self.budget < reward.most:
                raise InvalidInput("budget is smaller than a single reward")
        if kind is PromotionKind.SPEND_THRESHOLD:
            if self.threshold is None:
                raise InvalidInput("a spend_threshold promotion needs `threshold`")
            check_amount(self.threshold)
        elif self.threshold is not None:
            raise InvalidInput("`threshold` belongs to spend_threshold promotions only")
        if kind is PromotionKind.DEPOSIT_BONUS:
            if self.min_deposit is None:
                raise InvalidInput("a deposit_bonus promotion needs `min_deposit`")
            check_amount(self.min_deposit)
            if reward.for_deposit(self.min_deposit) == 0:
                raise InvalidInput(
                    "reward.percent of min_deposit rounds down to nothing; raise min_deposit"
                )
        elif self.min_deposit is not None:
            raise InvalidInput("`min_deposit` belongs to deposit_bonus promotions only")
        return self


def is_open(starts_at: datetime, ends_at: datetime, now: datetime) -> bool:
    """Whether codes can be redeemed now: `starts_at ≤ now < ends_at`."""
    return starts_at <= now < ends_at


def promotion_status(starts_at: datetime, ends_at: datetime, now: datetime) -> str:
    """`ended` once `ends_at` has passed (ending a scheduled promotion early ends it too)."""
    if now >= ends_at:
        return "ended"
    return "scheduled" if now < starts_at else "active"


# --- redeeming ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RedeemingAccount:
    """What eligibility needs to know about the account that redeems."""

    currency: str
    status: str
    created_at: datetime
    has_spend: bool
    debt: int = 0


@dataclass(frozen=True, slots=True)
class PromotionState:
    """The promotion as the redemption sees it, under its lock."""

    terms: PromotionTerms
    redemptions: int
    reserved: int


def redemption_refusal(
    promo: PromotionState,
    account: RedeemingAccount,
    *,
    now: datetime,
    account_redeemed: bool,
    business_redeemed: bool,
) -> RedemptionRefused | None:
    """Why this account may not redeem the promotion now, or None if it may.

    Checked in this order (the code itself was found and unused before): the redemption window
    (`promotion_not_active`); one per account and, with `once_per_business`, one per business
    (`already_redeemed`); eligibility — same currency, in good standing, and for
    `new_accounts_only` young enough with no spend (`not_eligible`); then `max_redemptions` and
    `budget` (`promotion_exhausted`).
    """
    terms = promo.terms
    if not is_open(terms.starts_at, terms.ends_at, now):
        when = "has ended" if now >= terms.ends_at else "has not started"
        return PromotionNotActive(f"this promotion {when}")
    if account_redeemed:
        return AlreadyRedeemed("this account has already redeemed this promotion")
    if business_redeemed and terms.eligibility.once_per_business:
        return AlreadyRedeemed("another account of this business has already redeemed it")
    if account.currency != terms.currency:
        return NotEligible(
            f"this promotion is for {terms.currency} accounts; this account is in "
            f"{account.currency}"
        )
    if account.status != "active" or account.debt > 0:
        return NotEligible("only an account in good standing can redeem a promotion")
    rules = terms.eligibility
    if rules.new_accounts_only:
        if now - account.created_at > timedelta(days=rules.new_account_days):
            return NotEligible(
                f"this promotion is for accounts opened within {rules.new_account_days} days"
            )
        if account.has_spend:
            return NotEligible("this promotion is for new accounts that have not spent yet")
    if terms.max_redemptions is not None and promo.redemptions >= terms.max_redemptions:
        return PromotionExhausted("this promotion has been fully redeemed")
    if terms.budget is not None and promo.reserved + terms.reward.most > terms.budget:
        return PromotionExhausted("this promotion's budget is spent")
    return None


def window_end(redeemed_at: datetime, window_days: int) -> datetime:
    """The end of a redemption's window: an earning redemption lapses then (its deadline)."""
    return redeemed_at + timedelta(days=window_days)


def counts_toward_threshold(
    occurred_at: datetime, redeemed_at: datetime, deadline: datetime
) -> bool:
    """Spend counts when it occurred after the redemption and before its deadline."""
    return redeemed_at < occurred_at < deadline


def lot_expiry(granted_at: datetime, credit_valid_days: int) -> datetime:
    return granted_at + timedelta(days=credit_valid_days)
