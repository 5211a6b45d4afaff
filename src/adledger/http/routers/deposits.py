"""Deposits of prepaid funds (the payment service's confirmation of a captured payment)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from adledger.http.deps import STAFF, get_db, require
from adledger.http.respond import respond
from adledger.http.schemas import Amount, Input, OptionalAmount, Ref, problems
from adledger.service import deposits
from adledger.service.keys import Principal
from adledger.service.uow import Database

router = APIRouter(prefix="/v1", tags=["deposits"])


class DepositIn(Input):
    amount: Amount
    tax: OptionalAmount = Field(
        0, description="Tax paid with the deposit: recorded, never spendable or refunded"
    )
    payment_reference: Ref = Field(description="The payment service's reference for the capture")
    payment_fingerprint: Ref | None = Field(None, description="Identifies the payment method")


class DepositOut(BaseModel):
    id: str
    account_id: str
    amount: int
    tax: int
    payment_reference: str
    created_at: datetime


@router.post(
    "/accounts/{account_id}/deposits",
    status_code=201,
    response_model=DepositOut,
    responses=problems(404, 409, 422),
    summary="Record a deposit: cash grows by `amount` (refused on a closed account)",
)
def create_deposit(
    account_id: str,
    body: DepositIn,
    request: Request,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    return respond(
        request,
        db,
        who,
        deposits.create_deposit,
        account_id,
        body=body,
        status=201,
        **body.model_dump(),
    )
