"""Promotional credit lots: grant, list, void."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from adledger.http.deps import READERS, STAFF, get_db, require
from adledger.http.respond import read, respond
from adledger.http.schemas import (
    LIST_REFUSALS,
    MINOR_UNITS,
    AccountId,
    Amount,
    Cursor,
    Input,
    Limit,
    LotId,
    Page,
    Ref,
    Text,
    Time,
    example_id,
    problems,
)
from adledger.service import credits
from adledger.service.keys import Principal
from adledger.service.uow import Database

router = APIRouter(prefix="/v1", tags=["credits"])

LotStatus = Literal["active", "used", "expired", "voided", "forfeited"]
LotSource = Literal["manual", "coupon", "spend_threshold", "deposit_bonus"]


class CreditIn(Input):
    amount: Amount = Field(description=f"Credit to grant, in {MINOR_UNITS}", examples=[5000])
    expires_at: Time = Field(
        description="The lot funds no spend that occurred at or after this; at this instant the "
        "expiry run takes its remainder (breakage). Must be after `effective_at`"
    )
    effective_at: Time | None = Field(
        None,
        description="The lot funds only spend that occurred at or after this; default now. "
        "Must be before `expires_at`",
    )
    priority: int = Field(
        50, ge=0, le=100, strict=True, description="0–100, default 50: lower is used first"
    )
    campaign_id: Ref | None = Field(
        None, description="If set, the lot funds only this campaign's spend (and funds it first)"
    )
    reason: Text = Field(
        description="Why it is granted, for the history (1–500 characters)",
        examples=["Goodwill for the outage on 1 December"],
    )


class LotOut(BaseModel):
    """A lot of promotional credit: it pays only for ads, in its own time window."""

    id: str = Field(description="The lot's id (`lot_…`)", examples=[example_id("lot")])
    account_id: str = Field(description="The account it belongs to (`acct_…`)")
    source: LotSource = Field(
        description="How it was granted: `manual` (staff), or by a promotion: `coupon`, "
        "`spend_threshold` (spend X get Y), `deposit_bonus`"
    )
    original: int = Field(description=f"What was granted, in {MINOR_UNITS}")
    remaining: int = Field(
        description=f"What is left to spend, in {MINOR_UNITS}; 0 once it is no longer active"
    )
    effective_at: datetime = Field(description="It funds spend that occurred from this instant")
    expires_at: datetime = Field(description="…until (not including) this one")
    priority: int = Field(description="0–100: lower is used first")
    campaign_id: str | None = Field(description="If set, it funds only this campaign's spend")
    status: LotStatus = Field(
        description="`active`; `used` (spent to 0); `expired` (its remainder went to breakage); "
        "`voided` (by staff); `forfeited` (clawed back, or the account was closed)"
    )
    created_at: datetime = Field(description="When it was granted (UTC)")


class VoidIn(Input):
    reason: Text = Field(
        description="Why it is voided, for the history (1–500 characters)",
        examples=["Granted by mistake"],
    )


@router.post(
    "/accounts/{account_id}/credits",
    status_code=201,
    response_model=LotOut,
    responses=problems("account_not_found", "account_closed", "invalid_time"),
    summary="Grant a lot of promotional credit (source `manual`)",
)
def grant_credit(
    account_id: AccountId,
    body: CreditIn,
    request: Request,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    """Credit is spent before cash, lot by lot (the funding order: lots of the event's campaign
    first, then by `priority`, then the soonest `expires_at`, then the oldest). It can't be
    withdrawn, refunded or turned into cash, and what is left at `expires_at` is gone.
    `expires_at` not after `effective_at` → 422 `invalid_time`; a closed account → 409
    `account_closed`."""
    return respond(
        request,
        db,
        who,
        credits.grant_credit,
        account_id,
        body=body,
        status=201,
        **body.model_dump(),
    )


@router.get(
    "/accounts/{account_id}/credits",
    response_model=Page[LotOut],
    responses=problems("account_not_found", *LIST_REFUSALS),
    summary="List an account's credit lots, newest first",
)
def list_credits(
    account_id: AccountId,
    status: LotStatus | None = Query(None, description="Only lots in this status"),
    limit: Limit = 50,
    starting_after: Cursor = None,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*READERS)),
) -> Response:
    """Every lot the account was ever granted (or those of one `status`). The active ones, and
    what they add up to now, are also in the balance."""
    return read(
        db,
        credits.list_credits,
        account_id,
        status=status,
        business_id=who.scope,
        limit=limit,
        starting_after=starting_after,
    )


@router.post(
    "/credits/{lot_id}/void",
    response_model=LotOut,
    responses=problems("lot_not_found", "lot_not_active", 422),
    summary="Void a lot: its unspent remainder is gone, irreversibly",
)
def void_credit(
    lot_id: LotId,
    body: VoidIn,
    request: Request,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    """The lot becomes `voided` with `remaining` 0 (a `void` transaction); what was already
    spent of it stays spent. Only an active lot can be voided: else 409 `lot_not_active`."""
    return respond(request, db, who, credits.void_credit, lot_id, body=body, reason=body.reason)
