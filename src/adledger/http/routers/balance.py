"""An account's balance, explained, and withdrawal requests (always refused with 409)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from adledger.http.deps import READERS, get_db, require
from adledger.http.respond import read, respond
from adledger.http.schemas import Amount, Input, Problem, problems
from adledger.service import balance
from adledger.service.keys import Principal
from adledger.service.uow import Database

router = APIRouter(prefix="/v1", tags=["balance"])


class CashOut(BaseModel):
    available: int = Field(description="Prepaid funds that can pay for ads (minor units)")
    held: int = Field(description="Prepaid funds held for pending or approved refunds")
    debt: int = Field(
        description="What the advertiser owes after a reversed deposit; a deposit pays it first"
    )


class BalanceLot(BaseModel):
    """An active credit lot."""

    id: str
    account_id: str
    source: Literal["manual", "coupon", "spend_threshold", "deposit_bonus"]
    original: int
    remaining: int
    effective_at: datetime
    expires_at: datetime
    priority: int
    campaign_id: str | None
    status: Literal["active"]
    created_at: datetime


class CreditOut(BaseModel):
    available: int = Field(
        description="Remaining credit of the active lots whose window contains now"
    )
    lots: list[BalanceLot] = Field(description="Every active lot, soonest expiry first")


class BalanceOut(BaseModel):
    account_id: str
    currency: str
    as_of: datetime
    cash: CashOut
    credit: CreditOut
    spendable: int = Field(description="cash.available + credit.available")
    refundable: int = Field(
        description="Cash a refund request could take now: 0 while the account is closed, "
        "suspended, in debt, or within the quiet period after spend"
    )
    withdrawable: Literal[0] = Field(description="Always 0: nothing is ever withdrawn")
    depleted: bool = Field(
        description="spendable is 0: the signal for the ad server to stop delivery"
    )
    explanation: str = Field(
        description="In plain words, with this account's numbers and dates: what can be "
        "refunded, what is credit and when it expires, and that credit can't be withdrawn"
    )


class WithdrawalIn(Input):
    amount: Amount


class WithdrawalRefused(Problem):
    """The answer to every withdrawal request (`code` is `withdrawal_not_supported`)."""

    refundable: int = Field(description="Prepaid funds a refund request could take now")
    credit_available: int = Field(description="Promotional credit, which is never paid out")


_WITHDRAWAL_REFUSED: dict[int | str, dict[str, Any]] = {
    409: {
        "model": WithdrawalRefused,
        "description": "Always: withdrawals are not supported (`withdrawal_not_supported`); "
        "`detail` explains with the account's numbers",
        "content": {"application/problem+json": {}},
    }
}


@router.get(
    "/accounts/{account_id}/balance",
    response_model=BalanceOut,
    responses=problems(404),
    summary="Read an account's balance, with a plain-English explanation",
    description="Cash (prepaid funds) and credit (promotional, by lot), what is spendable and "
    "refundable now, and whether the account is depleted. Balances are stored, so this read "
    "costs the same however long the account's history.",
)
def get_balance(
    account_id: str,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*READERS)),
) -> Response:
    return read(db, balance.get_balance, account_id, business_id=who.scope)


@router.post(
    "/accounts/{account_id}/withdrawals",
    status_code=409,
    response_model=None,
    responses={**problems(404, 422), **_WITHDRAWAL_REFUSED},
    summary="Ask to withdraw: always refused (409 `withdrawal_not_supported`)",
    description="Nothing is ever paid out of an ad account except an approved refund of "
    "prepaid funds (`POST /v1/accounts/{id}/refunds`). Promotional credit can't be withdrawn, "
    "refunded or turned into cash. The refusal carries `refundable` and `credit_available`; "
    "nothing changes.",
)
def request_withdrawal(
    account_id: str,
    body: WithdrawalIn,
    request: Request,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*READERS)),
) -> Response:
    return respond(
        request,
        db,
        who,
        balance.request_withdrawal,
        account_id,
        body=body,
        amount=body.amount,
        business_id=who.scope,
    )
