"""An account's balance, explained, and withdrawal requests (always refused with 409)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from adledger.http.deps import READERS, get_db, require
from adledger.http.respond import read, respond
from adledger.http.routers.credits import LotOut
from adledger.http.schemas import MINOR_UNITS, AccountId, Amount, Input, Problem, problems
from adledger.service import balance
from adledger.service.keys import Principal
from adledger.service.uow import Database

router = APIRouter(prefix="/v1", tags=["balance"])


class CashOut(BaseModel):
    """Prepaid funds: the advertiser's own money."""

    available: int = Field(description=f"Prepaid funds that can pay for ads, in {MINOR_UNITS}")
    held: int = Field(
        description=f"Prepaid funds held for pending or approved refunds, in {MINOR_UNITS}"
    )
    debt: int = Field(
        description=f"What the advertiser owes after a reversed deposit, in {MINOR_UNITS}; the "
        "next deposit pays it first"
    )


class BalanceLot(LotOut):
    """An active credit lot."""

    status: Literal["active"] = Field(description="Always `active` here")


class CreditOut(BaseModel):
    """Promotional credit: granted by the platform, it only pays for ads."""

    available: int = Field(
        description=f"Remaining credit of the active lots whose window contains now, in "
        f"{MINOR_UNITS}"
    )
    lots: list[BalanceLot] = Field(
        description="Every active lot (also those not effective yet), soonest expiry first"
    )


class BalanceOut(BaseModel):
    account_id: str = Field(description="The account (`acct_…`)")
    currency: str = Field(description="ISO 4217 code of every amount here")
    as_of: datetime = Field(description="The moment the balance describes (UTC)")
    cash: CashOut = Field(description="Prepaid funds")
    credit: CreditOut = Field(description="Promotional credit")
    spendable: int = Field(description=f"cash.available + credit.available, in {MINOR_UNITS}")
    refundable: int = Field(
        description=f"Cash a refund request could take now, in {MINOR_UNITS}: 0 while the "
        "account is closed, suspended, in debt, or within the quiet period after spend"
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
    amount: Amount = Field(description=f"What the advertiser asked for, in {MINOR_UNITS}")


class WithdrawalRefused(Problem):
    """The answer to every withdrawal request (`code` is `withdrawal_not_supported`)."""

    refundable: int = Field(
        description=f"Prepaid funds a refund request could take now, in {MINOR_UNITS}"
    )
    credit_available: int = Field(
        description=f"Promotional credit, which is never paid out, in {MINOR_UNITS}"
    )


_WITHDRAWAL_REFUSED: dict[int | str, dict[str, Any]] = {
    409: {
        "model": WithdrawalRefused,
        "description": "Always",
        "x-problem-codes": ["withdrawal_not_supported"],
    }
}


@router.get(
    "/accounts/{account_id}/balance",
    response_model=BalanceOut,
    responses=problems("account_not_found"),
    summary="Read an account's balance, with a plain-English explanation",
)
def get_balance(
    account_id: AccountId,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*READERS)),
) -> Response:
    """Cash (prepaid funds) and credit (promotional, by lot), what is spendable and refundable
    now, and whether the account is `depleted` (the ad server's signal to stop delivery).
    `withdrawable` is always 0: prepaid funds come back only by a refund, credit never.
    Balances are stored, so this read costs the same however long the account's history."""
    return read(db, balance.get_balance, account_id, business_id=who.scope)


@router.post(
    "/accounts/{account_id}/withdrawals",
    status_code=409,
    response_model=None,
    responses={**problems("account_not_found", 422), **_WITHDRAWAL_REFUSED},
    summary="Ask to withdraw: always refused (409 `withdrawal_not_supported`)",
)
def request_withdrawal(
    account_id: AccountId,
    body: WithdrawalIn,
    request: Request,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*READERS)),
) -> Response:
    """Nothing is ever paid out of an ad account except an approved refund of prepaid funds
    (`POST /v1/accounts/{account_id}/refunds`). Promotional credit can't be withdrawn, refunded
    or turned into cash. The answer is always 409 `withdrawal_not_supported`: its `detail`
    explains with the account's numbers, and it carries `refundable` and `credit_available`.
    Nothing changes."""
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
