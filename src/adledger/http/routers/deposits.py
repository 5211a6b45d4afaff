"""Deposits of prepaid funds (the payment service's confirmation of a captured payment), and
their reversal (a chargeback or failed payment)."""

from __future__ import annotations

from datetime import datetime

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
    OptionalAmount,
    Page,
    Ref,
    Text,
    problems,
)
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
    reversed_at: datetime | None = Field(description="When it was reversed, if it was")
    reversal_reason: str | None


class ReverseIn(Input):
    reason: Text = Field(description="Why: a chargeback, a failed payment…")


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


@router.get(
    "/accounts/{account_id}/deposits",
    response_model=Page[DepositOut],
    responses=problems(404, 422),
    summary="List an account's deposits, newest first",
)
def list_deposits(
    account_id: str,
    limit: int = Query(50, description=LIMIT_DOC),
    starting_after: str | None = Query(None, description=CURSOR_DOC),
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*READERS)),
) -> Response:
    return read(
        db,
        deposits.list_deposits,
        account_id,
        business_id=who.scope,
        limit=limit,
        starting_after=starting_after,
    )


@router.get(
    "/deposits/{deposit_id}",
    response_model=DepositOut,
    responses=problems(404),
    summary="One deposit",
)
def get_deposit(
    deposit_id: str,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*READERS)),
) -> Response:
    return read(db, deposits.get_deposit, deposit_id, business_id=who.scope)


@router.post(
    "/deposits/{deposit_id}/reverse",
    response_model=DepositOut,
    responses=problems(404, 409, 422),
    summary="Reverse a deposit (chargeback or failed payment)",
    description="Cash falls by the deposit's amount (its tax goes back too). If cash can't cover "
    "it, the rest becomes debt and the account is suspended until a deposit covers the debt. "
    "The unspent remainder of the deposit bonus the deposit earned is clawed back. A deposit "
    "is reversed once: again → 409 `deposit_already_reversed`.",
)
def reverse_deposit(
    deposit_id: str,
    body: ReverseIn,
    request: Request,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    return respond(
        request, db, who, deposits.reverse_deposit, deposit_id, body=body, reason=body.reason
    )
