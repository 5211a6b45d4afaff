"""The funding order of one spend event: which lots pay, in what order, then cash, then unfunded.

Pure domain tests of `adledger.domain.lots`: no database, every instant named.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from adledger.domain.lots import Funding, LotBalance, apply_funding, fund, funding_order

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)

_lot_numbers = iter(range(1, 10**9))


def make_lot(**overrides: Any) -> LotBalance:
    """An active lot, in force from a day before T0 to thirty days after, for any campaign."""
    fields: dict[str, Any] = {
        "id": f"lot_{next(_lot_numbers):04d}",
        "remaining": 1_000,
        "effective_at": T0 - timedelta(days=1),
        "expires_at": T0 + timedelta(days=30),
        "priority": 50,
        "campaign_id": None,
        "created_at": T0 - timedelta(days=1),
    }
    fields.update(overrides)
    return LotBalance(**fields)


def make_spend(
    lots: Iterable[LotBalance] = (),
    *,
    amount: int = 100,
    occurred_at: datetime = T0,
    campaign_id: str | None = None,
    cash: int = 0,
) -> Funding:
    return fund(amount, occurred_at, campaign_id, list(lots), cash)


def order_of(
    lots: Iterable[LotBalance], *, occurred_at: datetime = T0, campaign_id: str | None = None
) -> list[str]:
    return [lot.id for lot in funding_order(lots, occurred_at, campaign_id)]


# --- credit before cash -------------------------------------------------------------------------


def test_credit_is_spent_before_cash() -> None:
    lot = make_lot(remaining=1_000)
    funding = make_spend([lot], amount=300, cash=5_000)
    assert funding.lots == ((lot.id, 300),)
    assert (funding.credit_used, funding.cash_used, funding.unfunded) == (300, 0, 0)


def test_cash_pays_what_credit_cannot() -> None:
    lot = make_lot(remaining=200)
    funding = make_spend([lot], amount=500, cash=5_000)
    assert funding.lots == ((lot.id, 200),)
    assert (funding.credit_used, funding.cash_used, funding.unfunded) == (200, 300, 0)


def test_spend_without_credit_is_paid_from_cash() -> None:
    funding = make_spend(amount=500, cash=5_000)
    assert funding == Funding(lots=(), cash_used=500, unfunded=0, credit_used=0)


def test_what_no_funds_cover_is_left_unfunded() -> None:
    lot = make_lot(remaining=100)
    funding = make_spend([lot], amount=1_000, cash=250)
    assert (funding.credit_used, funding.cash_used, funding.unfunded) == (100, 250, 650)
    assert funding.total == 1_000


def test_cash_is_never_drawn_below_zero() -> None:
    assert make_spend(amount=100, cash=40).cash_used == 40
    assert make_spend(amount=100, cash=0).cash_used == 0


def test_an_account_in_debt_pays_nothing_from_cash() -> None:
    funding = make_spend(amount=100, cash=-500)
    assert (funding.cash_used, funding.unfunded) == (0, 100)


def test_one_event_can_draw_on_several_lots() -> None:
    first = make_lot(remaining=100, priority=1)
    second = make_lot(remaining=100, priority=2)
    third = make_lot(remaining=100, priority=3)
    funding = make_spend([third, first, second], amount=250, cash=1_000)
    assert funding.lots == ((first.id, 100), (second.id, 100), (third.id, 50))
    assert (funding.credit_used, funding.cash_used) == (250, 0)


def test_a_lot_that_covers_the_spend_stops_the_draws() -> None:
    first = make_lot(remaining=500, priority=1)
    second = make_lot(remaining=500, priority=2)
    funding = make_spend([first, second], amount=500)
    assert funding.lots == ((first.id, 500),)


def test_an_empty_lot_is_skipped() -> None:
    empty = make_lot(remaining=0, priority=0)
    full = make_lot(remaining=100, priority=99)
    assert make_spend([empty, full], amount=50).lots == ((full.id, 50),)


def test_deciding_a_funding_does_not_touch_the_lots() -> None:
    lot = make_lot(remaining=100)
    make_spend([lot], amount=60)
    assert lot.remaining == 100


def test_applying_a_funding_draws_the_lots_down() -> None:
    a = make_lot(remaining=100, priority=1)
    b = make_lot(remaining=100, priority=2)
    funding = make_spend([a, b], amount=150)
    apply_funding(funding, {a.id: a, b.id: b})
    assert (a.remaining, b.remaining) == (0, 50)


def test_consecutive_events_in_a_batch_see_the_lots_drawn_by_earlier_ones() -> None:
    lot = make_lot(remaining=100)
    lots = {lot.id: lot}
    first = make_spend(lots.values(), amount=70, cash=1_000)
    apply_funding(first, lots)
    second = make_spend(lots.values(), amount=70, cash=1_000)
    assert second.lots == ((lot.id, 30),)
    assert second.cash_used == 40


# --- the order of lots --------------------------------------------------------------------------


def test_lots_scoped_to_the_events_campaign_are_used_first() -> None:
    general = make_lot(priority=0, expires_at=T0 + timedelta(days=1))
    scoped = make_lot(priority=100, expires_at=T0 + timedelta(days=90), campaign_id="cmp_1")
    assert order_of([general, scoped], campaign_id="cmp_1") == [scoped.id, general.id]


def test_a_lot_scoped_to_another_campaign_is_never_used() -> None:
    other = make_lot(campaign_id="cmp_2", priority=0)
    funding = make_spend([other], amount=100, campaign_id="cmp_1", cash=1_000)
    assert funding.lots == ()
    assert funding.cash_used == 100


def test_a_campaign_scoped_lot_cannot_fund_spend_without_a_campaign() -> None:
    scoped = make_lot(campaign_id="cmp_1")
    assert order_of([scoped], campaign_id=None) == []


def test_a_lot_without_a_campaign_funds_any_campaign() -> None:
    general = make_lot(campaign_id=None)
    assert order_of([general], campaign_id="cmp_1") == [general.id]
    assert order_of([general], campaign_id=None) == [general.id]


def test_lower_priority_number_is_used_first() -> None:
    later = make_lot(priority=60)
    sooner = make_lot(priority=10)
    assert order_of([later, sooner]) == [sooner.id, later.id]


def test_priority_decides_before_expiry() -> None:
    expires_soon = make_lot(priority=80, expires_at=T0 + timedelta(hours=1))
    preferred = make_lot(priority=20, expires_at=T0 + timedelta(days=300))
    assert order_of([expires_soon, preferred]) == [preferred.id, expires_soon.id]


def test_among_equal_priority_the_soonest_to_expire_is_used_first() -> None:
    late = make_lot(expires_at=T0 + timedelta(days=60))
    soon = make_lot(expires_at=T0 + timedelta(days=2))
    assert order_of([late, soon]) == [soon.id, late.id]


def test_expiry_decides_before_age() -> None:
    old = make_lot(created_at=T0 - timedelta(days=100), expires_at=T0 + timedelta(days=60))
    young = make_lot(created_at=T0 - timedelta(hours=1), expires_at=T0 + timedelta(days=2))
    assert order_of([old, young]) == [young.id, old.id]


def test_among_equal_priority_and_expiry_the_oldest_lot_is_used_first() -> None:
    young = make_lot(created_at=T0 - timedelta(hours=1))
    old = make_lot(created_at=T0 - timedelta(days=10))
    assert order_of([young, old]) == [old.id, young.id]


def test_among_scoped_lots_priority_still_applies() -> None:
    scoped_low = make_lot(campaign_id="cmp_1", priority=5)
    scoped_high = make_lot(campaign_id="cmp_1", priority=90)
    general = make_lot(priority=0)
    assert order_of([general, scoped_high, scoped_low], campaign_id="cmp_1") == [
        scoped_low.id,
        scoped_high.id,
        general.id,
    ]


def test_the_order_does_not_depend_on_the_order_lots_are_given_in() -> None:
    lots = [make_lot(priority=p % 3, expires_at=T0 + timedelta(days=1 + p % 2)) for p in range(6)]
    assert order_of(lots) == order_of(list(reversed(lots)))


def test_expiry_instants_in_different_offsets_compare_as_instants() -> None:
    tokyo = timezone(timedelta(hours=9))
    # 20:00 in Tokyo is 11:00 UTC, an hour before the UTC lot expires at 12:00 + 1 day.
    earlier = make_lot(expires_at=(T0 + timedelta(days=1, hours=-1)).astimezone(tokyo))
    later = make_lot(expires_at=T0 + timedelta(days=1))
    assert order_of([later, earlier]) == [earlier.id, later.id]


# --- the lot's window ---------------------------------------------------------------------------


def test_a_lot_not_yet_effective_is_not_used() -> None:
    future = make_lot(effective_at=T0 + timedelta(hours=1))
    funding = make_spend([future], amount=100, cash=1_000)
    assert funding.lots == ()
    assert funding.cash_used == 100


def test_a_lot_funds_spend_at_its_effective_instant() -> None:
    lot = make_lot(effective_at=T0)
    assert make_spend([lot], amount=100, occurred_at=T0).lots == ((lot.id, 100),)


def test_a_lot_cannot_fund_spend_a_microsecond_before_it_is_effective() -> None:
    lot = make_lot(effective_at=T0)
    assert make_spend([lot], amount=100, occurred_at=T0 - MICROSECOND).lots == ()


def test_credit_funds_spend_a_microsecond_before_its_expiry_instant() -> None:
    lot = make_lot(expires_at=T0)
    assert make_spend([lot], amount=100, occurred_at=T0 - MICROSECOND).lots == ((lot.id, 100),)


def test_expired_credit_cannot_fund_spend_at_its_expiry_instant() -> None:
    lot = make_lot(expires_at=T0)
    funding = make_spend([lot], amount=100, occurred_at=T0, cash=1_000)
    assert funding.lots == ()
    assert funding.cash_used == 100


def test_expired_credit_cannot_fund_later_spend() -> None:
    lot = make_lot(expires_at=T0 - timedelta(days=1))
    assert make_spend([lot], amount=100, occurred_at=T0).lots == ()


def test_spend_that_occurred_before_expiry_is_funded_even_if_reported_later() -> None:
    # The window is judged at occurred_at, not at the time the ad server reports it.
    lot = make_lot(expires_at=T0)
    occurred = T0 - timedelta(minutes=10)
    assert make_spend([lot], amount=100, occurred_at=occurred).lots == ((lot.id, 100),)


# --- properties ---------------------------------------------------------------------------------

CAMPAIGNS = (None, "cmp_1", "cmp_2")
# Offsets in microseconds around T0, dense near zero so the window boundaries are hit often.
offsets = st.one_of(
    st.integers(min_value=-3, max_value=3),
    st.integers(min_value=-(10**9), max_value=10**9),
)


@st.composite
def lot_sets(draw: st.DrawFn) -> list[LotBalance]:
    count = draw(st.integers(min_value=0, max_value=8))
    lots = []
    for n in range(count):
        start = draw(offsets)
        length = draw(st.integers(min_value=1, max_value=2 * 10**9))
        lots.append(
            LotBalance(
                id=f"lot_{n:02d}",
                remaining=draw(st.integers(min_value=0, max_value=2_000)),
                effective_at=T0 + timedelta(microseconds=start),
                expires_at=T0 + timedelta(microseconds=start + length),
                priority=draw(st.integers(min_value=0, max_value=100)),
                campaign_id=draw(st.sampled_from(CAMPAIGNS)),
                created_at=draw(
                    st.none() | offsets.map(lambda us: T0 + timedelta(microseconds=us))
                ),
            )
        )
    return lots


spend_cases = st.fixed_dictionaries(
    {
        "lots": lot_sets(),
        "amount": st.integers(min_value=1, max_value=10_000),
        "occurred_at": offsets.map(lambda us: T0 + timedelta(microseconds=us)),
        "campaign_id": st.sampled_from(CAMPAIGNS),
        "cash": st.integers(min_value=-1_000, max_value=10_000),
    }
)


def _eligible(lot: LotBalance, occurred_at: datetime, campaign_id: str | None) -> bool:
    # Written out again from the contract, independently of LotBalance.can_fund.
    return (
        lot.remaining > 0
        and lot.effective_at <= occurred_at
        and occurred_at < lot.expires_at
        and lot.campaign_id in (None, campaign_id)
    )


@given(spend_cases)
def test_every_unit_of_spend_is_credit_cash_or_unfunded(case: dict[str, Any]) -> None:
    funding = fund(**case)
    assert funding.credit_used + funding.cash_used + funding.unfunded == case["amount"]
    assert funding.total == case["amount"]
    assert funding.credit_used == sum(take for _, take in funding.lots)
    assert min(funding.credit_used, funding.cash_used, funding.unfunded) >= 0


@given(spend_cases)
def test_no_draw_exceeds_what_an_eligible_lot_has_left(case: dict[str, Any]) -> None:
    funding = fund(**case)
    by_id = {lot.id: lot for lot in case["lots"]}
    drawn = [lot_id for lot_id, _ in funding.lots]
    assert len(drawn) == len(set(drawn))
    for lot_id, take in funding.lots:
        lot = by_id[lot_id]
        assert 0 < take <= lot.remaining
        assert _eligible(lot, case["occurred_at"], case["campaign_id"])


@given(spend_cases)
def test_cash_used_never_exceeds_the_cash_available(case: dict[str, Any]) -> None:
    funding = fund(**case)
    assert 0 <= funding.cash_used <= max(case["cash"], 0)


@given(spend_cases)
def test_spend_is_unfunded_only_once_every_eligible_lot_and_cash_are_exhausted(
    case: dict[str, Any],
) -> None:
    funding = fund(**case)
    lots = {lot.id: lot for lot in case["lots"]}
    apply_funding(funding, lots)
    eligible_left = sum(
        lot.remaining
        for lot in lots.values()
        if lot.effective_at <= case["occurred_at"] < lot.expires_at
        and lot.campaign_id in (None, case["campaign_id"])
        and lot.remaining > 0
    )
    if funding.unfunded > 0:
        assert eligible_left == 0
        assert funding.cash_used == max(case["cash"], 0)
    if funding.cash_used > 0:
        assert eligible_left == 0


@given(spend_cases)
def test_lots_are_drawn_whole_in_funding_order_until_the_spend_is_covered(
    case: dict[str, Any],
) -> None:
    funding = fund(**case)
    order = funding_order(case["lots"], case["occurred_at"], case["campaign_id"])
    drawn = [lot_id for lot_id, _ in funding.lots]
    assert drawn == [lot.id for lot in order][: len(drawn)]
    # Every draw but the last empties its lot.
    for (lot_id, take), lot in zip(funding.lots[:-1], order, strict=False):
        assert lot.id == lot_id and take == lot.remaining


@given(spend_cases)
def test_funding_order_is_sorted_by_the_contracts_keys(case: dict[str, Any]) -> None:
    order = funding_order(case["lots"], case["occurred_at"], case["campaign_id"])
    expected_ids = {
        lot.id for lot in case["lots"] if _eligible(lot, case["occurred_at"], case["campaign_id"])
    }
    assert {lot.id for lot in order} == expected_ids
    keys = [
        (
            lot.campaign_id is None,
            lot.priority,
            lot.expires_at,
            lot.created_at or lot.effective_at,
        )
        for lot in order
    ]
    assert keys == sorted(keys)


@given(spend_cases)
def test_applying_a_funding_never_leaves_a_lot_negative(case: dict[str, Any]) -> None:
    funding = fund(**case)
    lots = {lot.id: lot for lot in case["lots"]}
    before = sum(lot.remaining for lot in lots.values())
    apply_funding(funding, lots)
    assert all(lot.remaining >= 0 for lot in lots.values())
    assert before - sum(lot.remaining for lot in lots.values()) == funding.credit_used
