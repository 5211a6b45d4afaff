"""Credit lots and the funding order of one spend event.

A lot is one grant of promotional credit. It can fund spend that occurred inside its window
(`effective_at ≤ occurred_at < expires_at`) and, if it names a campaign, only that campaign's spend.

The funding order for one event is: eligible lots scoped to the event's campaign first, then by
`priority` (lower first), then the soonest `expires_at`, then the oldest lot; then cash; whatever is
left is `unfunded` (overdelivery the platform writes off, never advertiser debt).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

SOURCES = ("manual", "coupon", "spend_threshold", "deposit_bonus")


class LotStatus(StrEnum):
    ACTIVE = "active"
    USED = "used"
    EXPIRED = "expired"
    VOIDED = "voided"
    FORFEITED = "forfeited"


@dataclass(slots=True)
class LotBalance:
    """The part of a lot the funding order needs. `remaining` is the working balance in a batch."""

    id: str
    remaining: int
    effective_at: datetime
    expires_at: datetime
    priority: int = 50
    campaign_id: str | None = None
    created_at: datetime | None = None

    def can_fund(self, occurred_at: datetime, campaign_id: str | None) -> bool:
        """Whether this lot may pay for spend of `campaign_id` that occurred at `occurred_at`."""
        return (
            self.remaining > 0
            and self.effective_at <= occurred_at < self.expires_at
            and (self.campaign_id is None or self.campaign_id == campaign_id)
        )


@dataclass(frozen=True, slots=True)
class Funding:
    """How one spend event is paid: lot draws in order, then cash, then the unfunded rest."""

    lots: tuple[tuple[str, int], ...] = ()
    cash_used: int = 0
    unfunded: int = 0
    credit_used: int = field(default=0)

    @property
    def total(self) -> int:
        return self.credit_used + self.cash_used + self.unfunded


def draw_key(lot: LotBalance) -> tuple[int, int, datetime, datetime, str]:
    """Where a lot stands in the funding order, among the lots eligible for an event: scoped to
    a campaign first, then lower `priority`, sooner `expires_at`, older, and the id to break ties.
    It does not depend on the event, so a batch sorts an account's lots once."""
    return (
        0 if lot.campaign_id is not None else 1,
        lot.priority,
        lot.expires_at,
        lot.created_at or lot.effective_at,
        lot.id,
    )


def in_draw_order(lots: Iterable[LotBalance]) -> list[LotBalance]:
    return sorted(lots, key=draw_key)


def funding_order(
    lots: Iterable[LotBalance], occurred_at: datetime, campaign_id: str | None
) -> list[LotBalance]:
    """The eligible lots for one event, in the order they are drawn down."""
    return [lot for lot in in_draw_order(lots) if lot.can_fund(occurred_at, campaign_id)]


def fund(
    amount: int,
    occurred_at: datetime,
    campaign_id: str | None,
    lots: Iterable[LotBalance],
    cash: int,
    *,
    ordered: bool = False,
) -> Funding:
    """Decide how `amount` of spend is paid. Pure: the caller applies the result.

    Credit is used before cash; cash is never drawn below zero; the rest is unfunded.
    `ordered`: `lots` are already `in_draw_order` (a batch sorts each account's lots once).
    """
    need = amount
    draws: list[tuple[str, int]] = []
    for lot in lots if ordered else in_draw_order(lots):
        if need == 0:
            break
        # `LotBalance.can_fund`, inlined: this loop runs for every event of every batch.
        if (
            lot.remaining > 0
            and lot.effective_at <= occurred_at < lot.expires_at
            and (lot.campaign_id is None or lot.campaign_id == campaign_id)
        ):
            take = need if need < lot.remaining else lot.remaining
            draws.append((lot.id, take))
            need -= take
    cash_used = min(need, max(cash, 0))
    need -= cash_used
    credit = amount - cash_used - need
    return Funding(lots=tuple(draws), cash_used=cash_used, unfunded=need, credit_used=credit)


def apply_funding(funding: Funding, lots_by_id: dict[str, LotBalance]) -> None:
    """Draw a decided funding down from the working lot balances of a batch."""
    for lot_id, take in funding.lots:
        lots_by_id[lot_id].remaining -= take
