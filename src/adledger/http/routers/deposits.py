"""Deposits of prepaid funds (the payment service's confirmation of a captured payment), and
their reversal (a chargeback or failed payment)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Request
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
    DepositId,
    Input,
    Limit,
    OptionalAmount,
    Page,
    Ref,
    Text,
    example_id,
    problems,
)
from adledger.service import deposits
from adledger.service.keys import Principal
from adledger.service.uow import Database

router = APIRouter(prefix="/v1", tags=["deposits"])


class DepositIn(Input):
    amount: Amount = Field(
        description=f"The captured payment, without tax, in {MINOR_UNITS}: cash grows by this",
        examples=[10000],
    )
    tax: OptionalAmount = Field(
        0,
        description=f"Tax paid with the deposit, in {MINOR_UNITS}: recorded, never spendable "
        "or refunded; default 0",
    )
    payment_reference: Ref = Field(
        description="The payment service's reference for the capture (1–200 characters)",
        examples=["pay_3NfX1r2eZvKYlo2C"],
    )
    payment_fingerprint: Ref | None = Field(
        None, description="Identifies the payment method (1–200 characters), if known"
    )


class DepositOut(BaseModel):
    id: str = Field(description="The deposit's id (`dep_…`)", examples=[example_id("dep")])
    account_id: str = Field(description="The account it was paid into (`acct_…`)")
    amount: int = Field(description=f"What it added to cash, in {MINOR_UNITS}")
    tax: int = Field(description=f"Tax paid with it, in {MINOR_UNITS} (never in the balance)")
    payment_reference: str = Field(description="The payment service's reference")
    created_at: datetime = Field(description="When it was recorded (UTC)")
    reversed_at: datetime | None = Field(description="When it was reversed, if it was")
    reversal_reason: str | None = Field(description="Why it was reversed, if it was")


class ReverseIn(Input):
    reason: Text = Field(
        description="Why: a chargeback, a failed payment… (1–500 characters)",
        examples=["chargeback"],
    )


@router.post(
    "/accounts/{account_id}/deposits",
    status_code=201,
    response_model=DepositOut,
    responses=problems("account_not_found", "account_closed", 422),
    summary="Record a deposit: cash grows by `amount` (refused on a closed account)",
)
def create_deposit(
    account_id: AccountId,
    body: DepositIn,
    request: Request,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    """Stands for the payment service's confirmation of a captured payment. Cash grows by
    `amount`, after paying off any debt left by a reversed deposit (an account suspended for
    that debt becomes active again once nothing is owed). `tax` is recorded beside it and never
    enters the balance. A deposit of at least `min_deposit` by an account with an earning deposit
    bonus grants the bonus. A closed account → 409 `account_closed`."""
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
    responses=problems("account_not_found", *LIST_REFUSALS),
    summary="List an account's deposits, newest first",
)
def list_deposits(
    account_id: AccountId,
    limit: Limit = 50,
    starting_after: Cursor = None,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*READERS)),
) -> Response:
    """Every deposit of the account, reversed ones included (`reversed_at` is set)."""
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
    responses=problems("deposit_not_found"),
    summary="Read a deposit",
)
def get_deposit(
    deposit_id: DepositId,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*READERS)),
) -> Response:
    """One deposit, and whether it was reversed."""
    return read(db, deposits.get_deposit, deposit_id, business_id=who.scope)


@router.post(
    "/deposits/{deposit_id}/reverse",
    response_model=DepositOut,
    responses=problems("deposit_not_found", "deposit_already_reversed", 422),
    summary="Reverse a deposit (chargeback or failed payment)",
)
def reverse_deposit(
    deposit_id: DepositId,
    body: ReverseIn,
    request: Request,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    """Cash falls by the deposit's amount (its tax goes back too; held cash is not touched). If
    cash can't cover it, the rest becomes `debt` and the account is suspended until a deposit
    covers the debt. The unspent remainder of the deposit bonus the deposit earned is clawed
    back (`clawback`, the lot `forfeited`); what was spent of it stays spent. A deposit is
    reversed once: again → 409 `deposit_already_reversed`."""
    return respond(
        request, db, who, deposits.reverse_deposit, deposit_id, body=body, reason=body.reason
    )
