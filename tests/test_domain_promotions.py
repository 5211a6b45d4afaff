"""The pure rules of promotions (`adledger.domain.promotions`): codes, rewards, terms, who may
redeem, and the windows. No database: these run in milliseconds."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adledger.domain.errors import (
    AlreadyRedeemed,
    InvalidAmount,
    InvalidInput,
    NotEligible,
    PromotionExhausted,
    PromotionNotActive,
    RedemptionRefused,
)
from adledger.domain.promotions import (
    CODE_ALPHABET,
    CODE_LENGTH,
    DEFAULT_NEW_ACCOUNT_DAYS,
    DEFAULT_WINDOW_DAYS,
    MAX_DAYS,
    Eligibility,
    PromotionKind,
    PromotionState,
    PromotionTerms,
    RedeemingAccount,
    Reward,
    code_bits,
    code_digest,
    counts_toward_threshold,
    is_open,
    lot_expiry,
    new_code,
    normalize_code,
    promotion_status,
    redemption_refusal,
    window_end,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
US = timedelta(microseconds=1)
CODE_SHAPE = re.compile(
    r"^[23456789ABCDEFGHJKMNPQRSTVWXYZ]{4}(-[23456789ABCDEFGHJKMNPQRSTVWXYZ]{4}){3}$"
)

codes_st = st.text(alphabet=CODE_ALPHABET, min_size=CODE_LENGTH, max_size=CODE_LENGTH)


# --- codes ------------------------------------------------------------------------------------


def test_the_alphabet_has_thirty_characters_and_no_look_alikes():
    assert len(CODE_ALPHABET) == 30 == len(set(CODE_ALPHABET))
    assert CODE_ALPHABET.upper() == CODE_ALPHABET
    for look_alike in "0O1ILU":
        assert look_alike not in CODE_ALPHABET
    assert set(CODE_ALPHABET) <= set("23456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def test_a_code_is_sixteen_characters_grouped_in_fours():
    for _ in range(200):
        code = new_code()
        assert CODE_SHAPE.match(code), code
        assert len(normalize_code(code)) == CODE_LENGTH == 16


def test_a_code_carries_at_least_60_bits_of_randomness():
    assert code_bits() >= 60
    assert code_bits() == pytest.approx(16 * 4.9069, abs=0.01)  # log2(30) ≈ 4.907: ≈ 78.5 bits


def test_new_code_draws_every_character_from_the_randbelow_it_is_given():
    asked: list[int] = []
    picks = iter([0, 1, 2, 3, 29, 28, 27, 26, 10, 11, 12, 13, 5, 5, 5, 5])

    def randbelow(n: int) -> int:
        asked.append(n)
        return next(picks)

    assert new_code(randbelow) == "2345-ZYXW-CDEF-7777"
    assert asked == [30] * 16


def test_new_code_covers_the_whole_alphabet():
    assert new_code(lambda n: 0) == "2222-2222-2222-2222"
    assert new_code(lambda n: n - 1) == "ZZZZ-ZZZZ-ZZZZ-ZZZZ"


def test_fresh_codes_do_not_repeat():
    made = [new_code() for _ in range(5_000)]
    assert len(set(made)) == len(made)


def test_normalize_ignores_case_dashes_and_spaces():
    assert normalize_code("abcd-efgh-jkmn-pqrs") == "ABCDEFGHJKMNPQRS"
    assert normalize_code(" AbCd EFGH\tjkmn--pqrs ") == "ABCDEFGHJKMNPQRS"
    assert normalize_code("ABCDEFGHJKMNPQRS") == "ABCDEFGHJKMNPQRS"


@st.composite
def retyped(draw: st.DrawFn, code: str) -> str:
    """`code` as a person might type it: any casing, dashes and spaces anywhere."""
    out = []
    for ch in code:
        out.append(draw(st.sampled_from(["", "-", " ", "\t", "--", " - "])))
        out.append(ch.lower() if draw(st.booleans()) else ch)
    out.append(draw(st.sampled_from(["", "-", " "])))
    return "".join(out)


@given(st.data(), codes_st)
def test_any_casing_or_dashing_of_a_code_normalises_and_digests_to_the_code(data, raw):
    code = "-".join(raw[i : i + 4] for i in range(0, 16, 4))
    typed = data.draw(retyped(code))
    assert normalize_code(typed) == normalize_code(code) == raw
    assert code_digest(typed) == code_digest(code)


def test_the_digest_is_sha256_of_the_normalised_code():
    code = new_code()
    digest = code_digest(code)
    assert digest == hashlib.sha256(normalize_code(code).encode()).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert normalize_code(code) not in digest.upper()


@given(codes_st, codes_st)
def test_different_codes_have_different_digests(a, b):
    if a != b:
        assert code_digest(a) != code_digest(b)


# --- rewards ----------------------------------------------------------------------------------


def test_a_fixed_reward_is_its_amount_whatever_the_deposit():
    reward = Reward(amount=1_500)
    assert reward.most == 1_500
    assert reward.for_deposit(1) == reward.for_deposit(10**12) == 1_500


def test_a_percent_reward_reserves_its_cap():
    assert Reward(percent=10, max_amount=5_000).most == 5_000


def test_a_percent_bonus_is_rounded_down_to_the_minor_unit():
    reward = Reward(percent=10, max_amount=5_000)
    assert reward.for_deposit(25_555) == 2_555  # 2,555.5 → 2,555
    assert reward.for_deposit(9) == 0
    assert Reward(percent=33, max_amount=10**6).for_deposit(100) == 33
    assert Reward(percent=33, max_amount=10**6).for_deposit(303) == 99  # 99.99 → 99


def test_a_percent_bonus_is_capped_at_max_amount():
    reward = Reward(percent=10, max_amount=5_000)
    assert reward.for_deposit(50_000) == 5_000
    assert reward.for_deposit(50_010) == 5_000
    assert reward.for_deposit(1_000_000) == 5_000
    assert reward.for_deposit(49_990) == 4_999


@given(
    st.integers(min_value=1, max_value=100),
    st.integers(min_value=1, max_value=10**15),
    st.integers(min_value=1, max_value=10**15),
)
def test_a_percent_bonus_never_exceeds_the_cap_nor_the_percent_of_the_deposit(
    percent, cap, deposit
):
    bonus = Reward(percent=percent, max_amount=cap).for_deposit(deposit)
    assert 0 <= bonus <= cap
    assert bonus * 100 <= deposit * percent  # ≤ percent of the deposit, exactly
    assert bonus == cap or (bonus + 1) * 100 > deposit * percent  # and only rounded down


# --- terms ------------------------------------------------------------------------------------


def terms(kind: str = "coupon", **overrides: object) -> PromotionTerms:
    base: dict[str, object] = {
        "kind": PromotionKind(kind),
        "currency": "USD",
        "reward": Reward(amount=1_000),
        "credit_valid_days": 30,
        "starts_at": NOW - timedelta(days=1),
        "ends_at": NOW + timedelta(days=30),
    }
    if kind == "spend_threshold":
        base["threshold"] = 10_000
    if kind == "deposit_bonus":
        base["min_deposit"] = 5_000
    base.update(overrides)
    return PromotionTerms(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "made",
    [
        terms("coupon"),
        terms("spend_threshold"),
        terms("deposit_bonus"),
        terms("deposit_bonus", reward=Reward(percent=10, max_amount=5_000)),
        terms("deposit_bonus", reward=Reward(percent=100, max_amount=1)),
        terms("coupon", budget=1_000, max_redemptions=1, credit_valid_days=MAX_DAYS),
        terms("coupon", window_days=1, credit_valid_days=1),
        terms("coupon", eligibility=Eligibility(True, MAX_DAYS, False)),
        terms("coupon", ends_at=NOW - timedelta(days=1) + US),
    ],
)
def test_coherent_terms_pass_the_check_unchanged(made):
    assert made.check() is made


def test_the_defaults_are_a_60_day_window_and_any_account_once_per_business():
    made = terms()
    assert made.window_days == DEFAULT_WINDOW_DAYS == 60
    assert made.eligibility == Eligibility(False, DEFAULT_NEW_ACCOUNT_DAYS, True)
    assert DEFAULT_NEW_ACCOUNT_DAYS == 30


@pytest.mark.parametrize("amount", [0, -1, 10**15 + 1, 10.0, "1000", True])
def test_a_reward_amount_must_be_a_valid_amount(amount):
    with pytest.raises(InvalidAmount):
        terms(reward=Reward(amount=amount)).check()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "reward", [Reward(amount=1_000, percent=10), Reward(amount=1_000, max_amount=5_000)]
)
def test_a_reward_is_either_an_amount_or_a_percent(reward):
    with pytest.raises(InvalidInput, match="either `amount`"):
        terms("deposit_bonus", reward=reward).check()


@pytest.mark.parametrize("kind", ["coupon", "spend_threshold"])
@pytest.mark.parametrize(
    "reward", [Reward(), Reward(percent=10, max_amount=5_000), Reward(max_amount=5_000)]
)
def test_a_coupon_or_threshold_reward_needs_an_amount(kind, reward):
    with pytest.raises(InvalidInput, match="needs `amount`"):
        terms(kind, reward=reward).check()


@pytest.mark.parametrize("reward", [Reward(), Reward(percent=10), Reward(max_amount=5_000)])
def test_a_deposit_bonus_is_an_amount_or_a_percent_with_max_amount(reward):
    with pytest.raises(InvalidInput, match="percent` with `max_amount"):
        terms("deposit_bonus", reward=reward).check()


@pytest.mark.parametrize("percent", [0, -5, 101, 1_000])
def test_a_percent_is_a_whole_percentage_from_1_to_100(percent):
    with pytest.raises(InvalidInput, match="1 to 100"):
        terms("deposit_bonus", reward=Reward(percent=percent, max_amount=5_000)).check()


@pytest.mark.parametrize("cap", [0, -1, 10**15 + 1, 50.0])
def test_a_percent_cap_must_be_a_valid_amount(cap):
    with pytest.raises(InvalidAmount):
        terms("deposit_bonus", reward=Reward(percent=10, max_amount=cap)).check()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "field, make",
    [
        ("credit_valid_days", lambda d: {"credit_valid_days": d}),
        ("window_days", lambda d: {"window_days": d}),
        (
            "eligibility.new_account_days",
            lambda d: {"eligibility": Eligibility(new_accounts_only=True, new_account_days=d)},
        ),
    ],
)
@pytest.mark.parametrize("days", [0, -1, MAX_DAYS + 1])
def test_every_day_count_is_from_1_to_3660(field, make, days):
    with pytest.raises(InvalidInput, match=re.escape(f"{field} must be from 1 to {MAX_DAYS}")):
        terms(**make(days)).check()
    assert terms(**make(1)).check() and terms(**make(MAX_DAYS)).check()


@pytest.mark.parametrize("ends", [NOW - timedelta(days=1), NOW - timedelta(days=2)])
def test_a_promotion_must_end_after_it_starts(ends):
    with pytest.raises(InvalidInput) as refused:
        terms(ends_at=ends).check()
    assert refused.value.code == "invalid_time"


@pytest.mark.parametrize("n", [0, -1, 10**15 + 1])
def test_max_redemptions_is_at_least_one(n):
    with pytest.raises(InvalidInput, match="max_redemptions"):
        terms(max_redemptions=n).check()


@pytest.mark.parametrize("budget", [0, -1, 10**15 + 1, 5_000.0])
def test_a_budget_must_be_a_valid_amount(budget):
    with pytest.raises(InvalidAmount):
        terms(budget=budget).check()


def test_a_budget_smaller_than_one_reward_is_refused():
    with pytest.raises(InvalidInput, match="smaller than a single reward"):
        terms(reward=Reward(amount=1_000), budget=999).check()
    assert terms(reward=Reward(amount=1_000), budget=1_000).check()


def test_a_percent_bonus_budget_must_hold_one_capped_bonus():
    bonus = Reward(percent=10, max_amount=5_000)
    with pytest.raises(InvalidInput, match="smaller than a single reward"):
        terms("deposit_bonus", reward=bonus, budget=4_999).check()
    assert terms("deposit_bonus", reward=bonus, budget=5_000).check()


def test_a_spend_threshold_promotion_needs_a_threshold():
    with pytest.raises(InvalidInput, match="needs `threshold`"):
        terms("spend_threshold", threshold=None).check()


@pytest.mark.parametrize("threshold", [0, -1, 10**15 + 1, 100.0])
def test_a_threshold_must_be_a_valid_amount(threshold):
    with pytest.raises(InvalidAmount):
        terms("spend_threshold", threshold=threshold).check()


@pytest.mark.parametrize("kind", ["coupon", "deposit_bonus"])
def test_only_a_spend_threshold_promotion_has_a_threshold(kind):
    with pytest.raises(InvalidInput, match="`threshold` belongs to spend_threshold"):
        terms(kind, threshold=10_000).check()


def test_a_deposit_bonus_promotion_needs_a_min_deposit():
    with pytest.raises(InvalidInput, match="needs `min_deposit`"):
        terms("deposit_bonus", min_deposit=None).check()


@pytest.mark.parametrize("minimum", [0, -1, 10**15 + 1, 100.0])
def test_a_min_deposit_must_be_a_valid_amount(minimum):
    with pytest.raises(InvalidAmount):
        terms("deposit_bonus", min_deposit=minimum).check()


@pytest.mark.parametrize("kind", ["coupon", "spend_threshold"])
def test_only_a_deposit_bonus_promotion_has_a_min_deposit(kind):
    with pytest.raises(InvalidInput, match="`min_deposit` belongs to deposit_bonus"):
        terms(kind, min_deposit=5_000).check()


# --- open, status -----------------------------------------------------------------------------


def test_a_promotion_is_open_from_starts_at_inclusive_to_ends_at_exclusive():
    starts, ends = NOW, NOW + timedelta(days=1)
    assert not is_open(starts, ends, starts - US)
    assert is_open(starts, ends, starts)
    assert is_open(starts, ends, ends - US)
    assert not is_open(starts, ends, ends)
    assert [promotion_status(starts, ends, t) for t in (starts - US, starts, ends - US, ends)] == [
        "scheduled",
        "active",
        "active",
        "ended",
    ]


# --- who may redeem ---------------------------------------------------------------------------


def state(made: PromotionTerms | None = None, redemptions: int = 0, reserved: int = 0):
    return PromotionState(made or terms(), redemptions, reserved)


def account(**overrides: object) -> RedeemingAccount:
    base: dict[str, object] = {
        "currency": "USD",
        "status": "active",
        "created_at": NOW - timedelta(days=1),
        "has_spend": False,
        "debt": 0,
    }
    base.update(overrides)
    return RedeemingAccount(**base)  # type: ignore[arg-type]


def refusal(
    promo: PromotionState | None = None,
    acct: RedeemingAccount | None = None,
    *,
    now: datetime = NOW,
    account_redeemed: bool = False,
    business_redeemed: bool = False,
) -> RedemptionRefused | None:
    return redemption_refusal(
        promo or state(),
        acct or account(),
        now=now,
        account_redeemed=account_redeemed,
        business_redeemed=business_redeemed,
    )


def code_of(found: RedemptionRefused | None) -> str | None:
    return None if found is None else found.code


def test_an_eligible_account_may_redeem_an_open_promotion():
    assert refusal() is None


def test_the_window_opens_at_starts_at_inclusive():
    promo = state(terms(starts_at=NOW, ends_at=NOW + timedelta(days=1)))
    before = refusal(promo, now=NOW - US)
    assert isinstance(before, PromotionNotActive) and "has not started" in before.detail
    assert refusal(promo, now=NOW) is None


def test_the_window_closes_at_ends_at_exclusive():
    promo = state(terms(starts_at=NOW - timedelta(days=1), ends_at=NOW))
    assert refusal(promo, now=NOW - US) is None
    after = refusal(promo, now=NOW)
    assert isinstance(after, PromotionNotActive) and "has ended" in after.detail


def test_one_account_never_redeems_one_promotion_twice_even_without_once_per_business():
    for once in (True, False):
        promo = state(terms(eligibility=Eligibility(once_per_business=once)))
        assert isinstance(refusal(promo, account_redeemed=True), AlreadyRedeemed)


def test_once_per_business_refuses_a_second_account_of_the_business():
    found = refusal(business_redeemed=True)
    assert isinstance(found, AlreadyRedeemed) and "another account" in found.detail


def test_without_once_per_business_another_account_of_the_business_may_redeem():
    promo = state(terms(eligibility=Eligibility(once_per_business=False)))
    assert refusal(promo, business_redeemed=True) is None


def test_an_account_in_another_currency_is_not_eligible():
    found = refusal(acct=account(currency="EUR"))
    assert isinstance(found, NotEligible)
    assert "USD" in found.detail and "EUR" in found.detail


@pytest.mark.parametrize("status", ["suspended", "closed"])
def test_an_account_not_active_is_not_eligible(status):
    assert isinstance(refusal(acct=account(status=status)), NotEligible)


def test_an_account_in_debt_is_not_eligible():
    assert isinstance(refusal(acct=account(debt=1)), NotEligible)


def test_new_accounts_only_admits_an_account_exactly_new_account_days_old():
    promo = state(terms(eligibility=Eligibility(new_accounts_only=True, new_account_days=30)))
    assert refusal(promo, account(created_at=NOW - timedelta(days=30))) is None
    older = refusal(promo, account(created_at=NOW - timedelta(days=30) - US))
    assert isinstance(older, NotEligible) and "within 30 days" in older.detail


def test_new_account_days_sets_how_new_an_account_must_be():
    promo = state(terms(eligibility=Eligibility(new_accounts_only=True, new_account_days=7)))
    assert refusal(promo, account(created_at=NOW - timedelta(days=7))) is None
    assert isinstance(refusal(promo, account(created_at=NOW - timedelta(days=8))), NotEligible)


def test_new_accounts_only_refuses_an_account_that_has_spent():
    promo = state(terms(eligibility=Eligibility(new_accounts_only=True)))
    found = refusal(promo, account(created_at=NOW, has_spend=True))
    assert isinstance(found, NotEligible) and "not spent" in found.detail


def test_without_new_accounts_only_an_old_account_that_has_spent_may_redeem():
    assert refusal(acct=account(created_at=NOW - timedelta(days=3000), has_spend=True)) is None


def test_max_redemptions_is_never_exceeded():
    made = terms(max_redemptions=3)
    assert refusal(state(made, redemptions=2)) is None
    found = refusal(state(made, redemptions=3))
    assert isinstance(found, PromotionExhausted) and "fully redeemed" in found.detail


def test_a_redemption_must_fit_the_rest_of_the_budget():
    made = terms(reward=Reward(amount=1_000), budget=3_000)
    assert refusal(state(made, reserved=2_000)) is None
    found = refusal(state(made, reserved=2_001))
    assert isinstance(found, PromotionExhausted) and "budget" in found.detail


def test_a_percent_bonus_must_fit_its_cap_in_the_budget():
    made = terms("deposit_bonus", reward=Reward(percent=10, max_amount=5_000), budget=12_000)
    assert refusal(state(made, reserved=7_000)) is None
    assert isinstance(refusal(state(made, reserved=7_001)), PromotionExhausted)


def test_refusals_come_in_the_documented_order():
    """not active, then already redeemed, then not eligible, then exhausted."""
    made = terms(
        starts_at=NOW + timedelta(days=1),
        ends_at=NOW + timedelta(days=2),
        max_redemptions=1,
        eligibility=Eligibility(new_accounts_only=True),
    )
    promo = state(made, redemptions=1)
    bad = account(currency="EUR", status="suspended", has_spend=True)
    seen = [code_of(refusal(promo, bad, account_redeemed=True, business_redeemed=True))]
    promo = state(dataclasses.replace(made, starts_at=NOW - timedelta(days=1)), redemptions=1)
    seen.append(code_of(refusal(promo, bad, account_redeemed=True, business_redeemed=True)))
    seen.append(code_of(refusal(promo, bad, business_redeemed=True)))
    seen.append(code_of(refusal(promo, bad)))
    seen.append(code_of(refusal(promo, dataclasses.replace(bad, currency="USD"))))
    seen.append(code_of(refusal(promo, account(has_spend=True))))
    seen.append(code_of(refusal(promo, account())))
    seen.append(code_of(refusal(state(promo.terms), account())))
    assert seen == [
        "promotion_not_active",
        "already_redeemed",
        "already_redeemed",
        "not_eligible",
        "not_eligible",
        "not_eligible",
        "promotion_exhausted",
        None,
    ]


def test_an_exhausted_budget_is_told_after_eligibility():
    made = terms(budget=1_000)
    found = refusal(state(made, reserved=1_000), account(currency="JPY"))
    assert isinstance(found, NotEligible)


def test_every_refusal_is_a_redemption_refusal_with_its_code():
    cases = {
        "promotion_not_active": refusal(now=NOW + timedelta(days=365)),
        "already_redeemed": refusal(account_redeemed=True),
        "not_eligible": refusal(acct=account(status="suspended")),
        "promotion_exhausted": refusal(state(terms(max_redemptions=1), redemptions=1)),
    }
    for code, found in cases.items():
        assert isinstance(found, RedemptionRefused)
        assert found.code == code


# --- windows ----------------------------------------------------------------------------------


def test_the_window_ends_window_days_after_the_redemption():
    assert window_end(NOW, 60) == NOW + timedelta(days=60)
    assert window_end(NOW, 1) == datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def test_spend_counts_only_strictly_after_the_redemption_and_before_the_deadline():
    deadline = window_end(NOW, 60)
    assert not counts_toward_threshold(NOW - US, NOW, deadline)
    assert not counts_toward_threshold(NOW, NOW, deadline)
    assert counts_toward_threshold(NOW + US, NOW, deadline)
    assert counts_toward_threshold(deadline - US, NOW, deadline)
    assert not counts_toward_threshold(deadline, NOW, deadline)
    assert not counts_toward_threshold(deadline + timedelta(days=1), NOW, deadline)


def test_a_granted_lot_expires_credit_valid_days_after_it_is_granted():
    assert lot_expiry(NOW, 30) == datetime(2026, 12, 31, 12, 0, tzinfo=UTC)
    assert lot_expiry(NOW + US, 1) == NOW + timedelta(days=1) + US
