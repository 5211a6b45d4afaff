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
    CURSOR_DOC,
    LIMIT_DOC,
    Amount,
    Input,
    Page,
    Ref,
    Text,
    Time,
    problems,
)
from adledger.service import credits
from adledger.service.keys import Principal
from adledger.service.uow import Database

router = APIRouter(prefix="/v1", tags=["credits"])

LotStatus = Literal["active", "used", "expired", "voided", "forfeited"]


class CreditIn(Input):
    amount: Amount
    expires_at: Time = Field(description="The lot funds no spend that occurred at or after this")
    effective_at: Time | None = Field(None, description="Default: now. Must be before expires_at")
    priority: int = Field(50, ge=0, le=100, strict=True, description="Lower is used first")
    campaign_id: Ref | None = Field(None, description="If set, only this campaign's spend")
    reason: Text


class LotOut(BaseModel):
    id: str
    account_id: str
    source: Literal["manual", "coupon", "spend_threshold", "deposit_bonus"]
    original: int
    remaining: int
    effective_at: datetime
    expires_at: datetime
    priority: int
    campaign_id: str | None
    status: LotStatus
    created_at: datetime


class VoidIn(Input):
    reason: Text


@router.post(
    "/accounts/{account_id}/credits",
    status_code=201,
    response_model=LotOut,
    responses=problems(404, 409, 422),
    summary="Grant a lot of promotional credit (source `manual`)",
)
def grant_credit(
    account_id: str,
    body: CreditIn,
    request: Request,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
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
    responses=problems(404, 422),
    summary="List an account's credit lots, newest first",
)
def list_credits(
    account_id: str,
    status: LotStatus | None = None,
    limit: int = Query(50, description=LIMIT_DOC),
    starting_after: str | None = Query(None, description=CURSOR_DOC),
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*READERS)),
) -> Response:
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
    responses=problems(404, 409, 422),
    summary="Void a lot: its unspent remainder is gone, irreversibly",
)
def void_credit(
    lot_id: str,
    body: VoidIn,
    request: Request,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    return respond(request, db, who, credits.void_credit, lot_id, body=body, reason=body.reason)
