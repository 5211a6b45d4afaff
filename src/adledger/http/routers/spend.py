"""Spend ingestion from the ad server: 1–10,000 events a call, each idempotent by event_id."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, StringConstraints
from starlette.responses import Response

from adledger.http.deps import get_db, require
from adledger.http.respond import respond
from adledger.http.schemas import (
    MINOR_UNITS,
    NO_NUL,
    Amount,
    Currency,
    Input,
    Ref,
    Time,
    example_id,
    problems,
)
from adledger.service import spend
from adledger.service.keys import Principal
from adledger.service.uow import Database, UnitOfWork

router = APIRouter(prefix="/v1", tags=["spend"])

EventId = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NO_NUL)]
Rejection = Literal[
    "account_not_found",
    "account_closed",
    "currency_mismatch",
    "occurred_in_future",
    "event_id_conflict",
]
REJECTION_DOC = (
    "Why the event was rejected (absent unless `status` is `rejected`): `account_not_found`; "
    "`account_closed`; `currency_mismatch` (the event names another currency than its "
    "account's); `occurred_in_future` (more than 5 minutes ahead of the server's clock); "
    "`event_id_conflict` (the `event_id` was used before with other fields)"
)


class SpendEventIn(Input):
    event_id: EventId = Field(
        description="The ad server's id for this delivery, unique forever (1–200 characters): a "
        "repeat with the same fields is a `duplicate`, with other fields `event_id_conflict`",
        examples=["imp-2026-12-01T12:00:00Z-000042"],
    )
    account_id: Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=NO_NUL)] = (
        Field(description="The ad account charged (`acct_…`)", examples=[example_id("acct")])
    )
    amount: Amount = Field(description=f"What the delivery cost, in {MINOR_UNITS}", examples=[125])
    occurred_at: Time = Field(
        description="When the delivery happened (RFC 3339 with an offset): it chooses the lots "
        "whose window can fund it; at most 5 minutes ahead of the server's clock"
    )
    campaign_id: Ref | None = Field(
        None,
        description="The campaign, if any: lots scoped to it fund it first, and only its spend",
    )
    currency: Currency | None = Field(
        None, description="If given, must be the account's currency (else `currency_mismatch`)"
    )


class SpendIn(Input):
    events: list[SpendEventIn] = Field(
        min_length=1,
        max_length=spend.MAX_EVENTS,
        description=f"1–{spend.MAX_EVENTS:,} events, funded in the order sent",
    )


class LotDraw(BaseModel):
    lot_id: str = Field(description="A credit lot the event drew on (`lot_…`)")
    amount: int = Field(description=f"What it drew from that lot, in {MINOR_UNITS}")


class SpendResult(BaseModel):
    event_id: str = Field(description="The event's `event_id`")
    status: Literal["applied", "duplicate", "rejected"] = Field(
        description="`applied`: recorded now; `duplicate`: recorded before with the same fields "
        "(the amounts are the first result's); `rejected`: nothing changed (see `code`)"
    )
    code: Rejection | None = Field(None, description=REJECTION_DOC)
    credit_used: int = Field(description=f"Paid by promotional credit, in {MINOR_UNITS}")
    cash_used: int = Field(description=f"Paid by prepaid funds, in {MINOR_UNITS}")
    unfunded: int = Field(
        description=f"Delivery no funds covered, in {MINOR_UNITS}: written off by the platform "
        "as overdelivery, never owed by the advertiser"
    )
    lots: list[LotDraw] = Field(description="The lots drawn on, in the order used")


class SpendOut(BaseModel):
    results: list[SpendResult] = Field(description="One result per event, in the order sent")


@router.post(
    "/spend",
    response_model=SpendOut,
    responses=problems(422),
    summary="Post ad spend: credit first (funding order), then cash, the rest unfunded",
)
def post_spend(
    body: SpendIn,
    request: Request,
    db: Database = Depends(get_db),
    who: Principal = Depends(require("ingest")),
) -> Response:
    """The ad server reports what delivery cost. Each event is funded by credit first: the
    `active` lots with `effective_at ≤ occurred_at < expires_at` whose campaign is empty or the
    event's; lots of the event's campaign first, then by `priority`, then the soonest
    `expires_at`, then the oldest. Then cash. What is left is `unfunded` (overdelivery, written
    off). No ad is ever charged beyond what the account holds.

    Results come in the order sent, one per event. A rejected event changes nothing and does
    not stop the others; its `event_id` stays free, so it can be sent again once fixed. Spend on
    a suspended account is recorded; on a closed one it is rejected. The whole call is refused
    (422) only when the request itself is malformed."""
    events = [
        spend.SpendEvent(
            event_id=e.event_id,
            account_id=e.account_id,
            amount=e.amount,
            occurred_at=e.occurred_at,
            campaign_id=e.campaign_id,
            currency=e.currency,
        )
        for e in body.events
    ]
    return respond(request, db, who, _post, events, body=body)


def _post(uow: UnitOfWork, events: list[spend.SpendEvent]) -> dict[str, Any]:
    return {"results": spend.post_spend(uow, events)}
