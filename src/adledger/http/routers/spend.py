"""Spend ingestion from the ad server: 1–10,000 events a call, each idempotent by event_id."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, StringConstraints
from starlette.responses import Response

from adledger.http.deps import get_db, require
from adledger.http.respond import respond
from adledger.http.schemas import Amount, Currency, Input, Time, problems
from adledger.service import spend
from adledger.service.keys import Principal
from adledger.service.uow import Database, UnitOfWork

router = APIRouter(prefix="/v1", tags=["spend"])

EventId = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class SpendEventIn(Input):
    event_id: EventId = Field(description="Unique forever; a repeat is a duplicate or a conflict")
    account_id: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    amount: Amount
    occurred_at: Time
    campaign_id: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    currency: Currency | None = Field(
        None, description="If given, must be the account's currency (else `currency_mismatch`)"
    )


class SpendIn(Input):
    events: list[SpendEventIn] = Field(min_length=1, max_length=spend.MAX_EVENTS)


class LotDraw(BaseModel):
    lot_id: str
    amount: int


class SpendResult(BaseModel):
    event_id: str
    status: Literal["applied", "duplicate", "rejected"]
    code: str | None = Field(
        None,
        description="Why an event was rejected: account_not_found, account_closed, "
        "currency_mismatch, occurred_in_future, event_id_conflict",
    )
    credit_used: int
    cash_used: int
    unfunded: int = Field(description="Delivery no funds covered: written off as overdelivery")
    lots: list[LotDraw]


class SpendOut(BaseModel):
    results: list[SpendResult]


@router.post(
    "/spend",
    response_model=SpendOut,
    responses=problems(422),
    summary="Post ad spend: credit first (funding order), then cash, the rest unfunded",
    description="Results come in the order sent. A rejected event changes nothing and does not "
    "stop the others. The whole call is refused (422) only when the request itself is malformed.",
)
def post_spend(
    body: SpendIn,
    request: Request,
    db: Database = Depends(get_db),
    who: Principal = Depends(require("ingest")),
) -> Response:
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
