"""The refund lifecycle and the balance explanation, as pure functions (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adledger.domain.errors import InvalidRefundTransition, SelfApproval
from adledger.domain.explain import (
    BalanceFacts,
    LotFacts,
    RefundBlock,
    explain_balance,
    explain_withdrawal_refusal,
    format_duration,
    format_time,
)
from adledger.domain.refunds import (
    HOLDING,
    RELEASES,
    TRANSITIONS,
    RefundAction,
    RefundStatus,
    next_status,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

# --- the lifecycle ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "current, action, expected",
    [
        ("pending", RefundAction.APPROVE, RefundStatus.APPROVED),
        ("pending", RefundAction.REJECT, RefundStatus.REJECTED),
        ("pending", RefundAction.CANCEL, RefundStatus.CANCELED),
        ("approved", RefundAction.SETTLE, RefundStatus.PAID),
        ("approved", RefundAction.FAIL, RefundStatus.FAILED),
    ],
)
def test_each_allowed_step_of_the_lifecycle_leads_where_the_contract_says(
    current, action, expected
):
    assert next_status(current, action, actor_key="key_b", requester_key="key_a") is expected


def test_every_other_step_is_refused_as_an_invalid_transition():
    refused = [
        (status, action)
        for status in RefundStatus
        for action in RefundAction
        if (status, action) not in TRANSITIONS
    ]
    assert len(refused) == len(RefundStatus) * len(RefundAction) - 5
    for status, action in refused:
        with pytest.raises(InvalidRefundTransition) as caught:
            next_status(status.value, action, actor_key="key_b", requester_key="key_a")
        assert caught.value.code == "invalid_refund_transition"
        assert status.value in caught.value.detail


def test_paid_rejected_canceled_and_failed_refunds_are_final():
    for final in (RefundStatus.PAID, *RELEASES):
        assert not any(status is final for status, _ in TRANSITIONS)


def test_a_refund_cannot_be_approved_with_the_key_that_requested_it():
    with pytest.raises(SelfApproval) as caught:
        next_status("pending", RefundAction.APPROVE, actor_key="key_a", requester_key="key_a")
    assert caught.value.code == "self_approval_forbidden"


@pytest.mark.parametrize("action", [RefundAction.REJECT, RefundAction.CANCEL])
def test_the_requester_may_still_reject_or_cancel_its_own_refund(action):
    assert next_status("pending", action, actor_key="key_a", requester_key="key_a") in RELEASES


def test_the_lifecycle_is_checked_before_the_four_eyes_rule():
    with pytest.raises(InvalidRefundTransition):
        next_status("paid", RefundAction.APPROVE, actor_key="key_a", requester_key="key_a")


def test_only_pending_and_approved_refunds_hold_cash():
    assert frozenset({RefundStatus.PENDING, RefundStatus.APPROVED}) == HOLDING
    assert HOLDING.isdisjoint(RELEASES)


# --- formatting -------------------------------------------------------------------------------


def test_times_are_written_in_the_accounts_own_time_zone():
    assert format_time(NOW, "UTC") == "1 Dec 2026 at 12:00 UTC"
    assert format_time(NOW, "America/New_York") == "1 Dec 2026 at 07:00 EST"
    assert format_time(NOW, "Asia/Tokyo") == "1 Dec 2026 at 21:00 JST"
    assert format_time(NOW, "Asia/Dubai") == "1 Dec 2026 at 16:00 UTC+04"


@pytest.mark.parametrize(
    "seconds, text",
    [
        (10_800, "3 hours"),
        (3_600, "1 hour"),
        (5_400, "1 hour 30 minutes"),
        (90, "90 seconds"),
        (600, "10 minutes"),
        (0, "0 seconds"),
    ],
)
def test_durations_read_as_people_say_them(seconds, text):
    assert format_duration(seconds) == text


# --- the balance explanation ------------------------------------------------------------------


def facts(**overrides) -> BalanceFacts:  # type: ignore[no-untyped-def]
    values = {
        "currency": "USD",
        "timezone": "UTC",
        "as_of": NOW,
        "status": "active",
        "cash_available": 12_000,
        "cash_held": 0,
        "credit_available": 0,
        "refundable": 12_000,
    }
    return BalanceFacts(**(values | overrides))


def test_the_explanation_says_what_can_be_refunded_with_the_accounts_money():
    text = explain_balance(facts())
    assert "Prepaid funds: $120.00 available." in text
    assert "refund of up to $120.00 now" in text
    assert "There is no promotional credit." in text
    assert "Nothing can be withdrawn" in text


def test_the_explanation_writes_amounts_in_the_accounts_currency():
    jpy = explain_balance(facts(currency="JPY", cash_available=5_000, refundable=5_000))
    assert "¥5,000 available" in jpy
    kwd = explain_balance(facts(currency="KWD", cash_available=1_500, refundable=1_500))
    assert "KWD 1.500" in kwd


def test_the_explanation_says_why_held_cash_is_not_refundable_again():
    text = explain_balance(
        facts(cash_available=7_000, refundable=7_000, cash_held=5_000, refunds_in_progress=2)
    )
    assert "$50.00 is held for 2 refunds in progress" in text
    assert "can't be spent or refunded again" in text
    assert "up to $70.00" in text


def test_the_explanation_names_each_lot_and_when_it_expires_in_local_time():
    lots = (
        LotFacts(2_000, NOW - timedelta(days=1), datetime(2026, 12, 15, 5, 0, tzinfo=UTC)),
        LotFacts(
            3_000,
            NOW + timedelta(days=2),
            datetime(2027, 1, 31, 5, 0, tzinfo=UTC),
            campaign_id="cmp_9",
        ),
    )
    text = explain_balance(facts(timezone="America/New_York", credit_available=2_000, lots=lots))
    assert "Promotional credit: $20.00 usable now" in text
    assert "$20.00 expires on 15 Dec 2026 at 00:00 EST" in text
    assert "$30.00 becomes usable on 3 Dec 2026 at 07:00 EST" in text
    assert "expires on 31 Jan 2027 at 00:00 EST (only for campaign cmp_9)" in text
    assert "can't be withdrawn, refunded or turned into cash" in text


def test_the_explanation_lists_the_next_lots_and_sums_up_the_rest():
    lots = tuple(
        LotFacts(100 * (i + 1), NOW - timedelta(days=1), NOW + timedelta(days=i + 1))
        for i in range(8)
    )
    text = explain_balance(facts(credit_available=3_600, lots=lots))
    assert "$1.00 expires on 2 Dec 2026" in text
    assert "$5.00 expires on 6 Dec 2026" in text
    assert "$6.00" not in text
    assert "3 more lots worth $21.00 expire by 9 Dec 2026 at 12:00 UTC" in text


def test_a_lot_past_its_expiry_is_called_expired_until_the_expiry_run_takes_it():
    lots = (LotFacts(900, NOW - timedelta(days=30), NOW - timedelta(hours=1)),)
    text = explain_balance(facts(lots=lots))
    assert "$9.00 expired on 1 Dec 2026 at 11:00 UTC and can't be used" in text


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (
            {"status": "closed", "block": RefundBlock.CLOSED},
            "No refund can be requested on a closed account.",
        ),
        (
            {"status": "suspended", "block": RefundBlock.NOT_IN_GOOD_STANDING},
            "No refund can be requested while the account is suspended.",
        ),
        (
            {"debt": 2_500, "block": RefundBlock.NOT_IN_GOOD_STANDING},
            "owes $25.00 after a reversed payment",
        ),
        (
            {
                "block": RefundBlock.RECENT_SPEND,
                "last_spend_at": NOW,
                "refunds_open_at": NOW + timedelta(hours=3),
            },
            "Refunds open again at 1 Dec 2026 at 15:00 UTC: spend was recorded at 1 Dec 2026 "
            "at 12:00 UTC",
        ),
    ],
)
def test_the_explanation_says_why_nothing_can_be_refunded_now(overrides, expected):
    text = explain_balance(facts(refundable=0, **overrides))
    assert expected in text
    assert "refund of up to" not in text


def test_a_depleted_account_is_told_that_delivery_stops():
    text = explain_balance(facts(cash_available=0, refundable=0))
    assert "depleted" in text
    assert "There are no prepaid funds to refund." in text


def test_a_withdrawal_refusal_explains_with_the_accounts_numbers():
    lots = (LotFacts(4_000, NOW - timedelta(days=1), NOW + timedelta(days=9)),)
    text = explain_withdrawal_refusal(facts(credit_available=4_000, lots=lots), requested=16_000)
    assert text.startswith("You asked to withdraw $160.00, but withdrawals are not supported")
    assert "$120.00 of prepaid funds available" in text
    assert "refund of up to $120.00" in text
    assert "Its $40.00 of promotional credit pays for ads only" in text


def test_a_withdrawal_refusal_without_credit_still_says_credit_is_never_cash():
    text = explain_withdrawal_refusal(facts(cash_available=0, refundable=0))
    assert text.startswith("Withdrawals are not supported")
    assert "can't be withdrawn or turned into cash" in text


def test_one_lot_beyond_the_named_ones_is_named_too_rather_than_summed_up():
    lots = tuple(
        LotFacts(100, NOW - timedelta(days=1), NOW + timedelta(days=i + 1)) for i in range(6)
    )
    text = explain_balance(facts(credit_available=600, lots=lots))
    assert "$1.00 expires on 7 Dec 2026" in text
    assert "more lot" not in text


def test_the_explanation_warns_that_a_refund_takes_back_part_of_a_deposit_bonus():
    lots = (
        LotFacts(1_000, NOW - timedelta(days=1), NOW + timedelta(days=9), source="deposit_bonus"),
        LotFacts(500, NOW - timedelta(days=1), NOW + timedelta(days=9), source="coupon"),
    )
    text = explain_balance(facts(credit_available=1_500, lots=lots))
    assert "forfeits a matching share of the $10.00 of deposit-bonus credit" in text


def test_the_explanation_warns_when_a_paid_refund_closes_the_account():
    assert "closes the account" not in explain_balance(facts())
    text = explain_balance(facts(refund_closes_account=True))
    assert "A paid refund also closes the account and forfeits all of its credit." in text
